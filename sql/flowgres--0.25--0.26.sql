-- flowgres 0.25 → 0.26: the documents every run writes are compressed with lz4 instead of
-- pglz.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.26'" to load this file. \quit

-- A run's trail (its events and node logs, about 3 kB for three steps) passed the 2 kB at
-- which PostgreSQL compresses a row: pglz then cost about 7% of the server's CPU per visitor
-- run (README "Performance"), lz4 a small fraction of that for about the same size. Values
-- already stored keep their compression; both are read alike.
alter table executions alter column inputs set compression lz4,
                       alter column outputs set compression lz4,
                       alter column error set compression lz4;
alter table execution_trails alter column events set compression lz4,
                             alter column node_logs set compression lz4;
alter table execution_events alter column data set compression lz4;
alter table node_logs alter column input set compression lz4,
                      alter column output set compression lz4,
                      alter column error set compression lz4,
                      alter column variables set compression lz4;

-- model_usage no longer references workspaces, as executions, usage_events and the trails never
-- did: the check of each model call's row locked its workspace's row (FOR KEY SHARE), so every
-- record of a visitor's run wrote to that one row, and two daemons' records at once made it a
-- MultiXact. Its workspace_id comes from the run's row, and workspaces are never deleted
-- (workspace_delete marks them).
alter table model_usage drop constraint model_usage_workspace_id_fkey;
