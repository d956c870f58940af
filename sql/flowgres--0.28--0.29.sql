-- flowgres 0.28 → 0.29: a trail's execution_finished in columns of its own.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.29'" to load this file. \quit

-- A run that stored no events while it ran (a visitor's synchronous run; a run that ended
-- before its first flush) keeps its events and node logs as one execution_trails row, and its
-- execution_finished with them rather than as an execution_events row. It was the last entry
-- of the events array (0.27): appending it made PostgreSQL decode and encode the whole array
-- again, and its number needed a scan of the array. Now its number (computed where the events
-- are checked) and its data are two columns; execution_events reads them as the event.
-- Trails written by 0.27 and 0.28 keep the entry in their array and read the same.
alter table execution_trails add column finished_sequence integer,
                             add column finished_data jsonb;
alter table execution_trails alter column finished_data set compression lz4;
comment on column execution_trails.finished_sequence is
    'The run''s execution_finished event: its sequence (after the trail''s events), with finished_data; null when the event is a row of execution_events or an entry of events.';
comment on column execution_trails.finished_data is
    'The data of the run''s execution_finished event (status, outputs or error, finished_at).';
