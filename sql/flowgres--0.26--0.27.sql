-- flowgres 0.26 → 0.27: a visitor's run keeps its execution_finished in its trail.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.27'" to load this file. \quit

-- executions_record writes a run that had no row while it ran (a visitor's synchronous run)
-- with one statement; its execution_finished now goes into its trail, last, instead of an
-- execution_events row of its own: one row and two index entries fewer per run (README
-- "Performance"). execution_events reads trails and rows alike, so a reader sees the same
-- events. Retention empties a trail's node events and keeps its execution_finished, as it
-- keeps that row of other runs; a trail is prunable while it holds any other event.
drop index execution_trails_prunable_idx;
create index execution_trails_prunable_idx on execution_trails (created_at)
    where events @? '$[*] ? (@.event != "execution_finished")';

create or replace function execution_events_prune(retention_days integer, batch_size integer default 10000) returns integer
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
    removed integer;
    emptied integer;
begin
    if retention_days is null or retention_days < 1 then
        raise exception 'retention_days: must be at least 1' using errcode = 'FG001',
            detail = '{"error_code": "VALIDATION_FAILED", "details": [{"field": "retention_days", "message": "must be at least 1"}]}';
    end if;
    if batch_size is null or batch_size < 1 or batch_size > 1000000 then
        raise exception 'batch_size: must be from 1 to 1000000' using errcode = 'FG001',
            detail = '{"error_code": "VALIDATION_FAILED", "details": [{"field": "batch_size", "message": "must be from 1 to 1000000"}]}';
    end if;
    delete from flowgres.execution_events e
    where e.ctid = any (array(
        select ev.ctid
        from flowgres.execution_events ev
        join flowgres.executions x on x.id = ev.execution_id
        where ev.created_at < now() - make_interval(days => retention_days)
          and ev.event <> 'execution_finished'
          and x.finished_at < now() - make_interval(days => retention_days)
        limit batch_size));
    get diagnostics removed = row_count;
    -- Trails: their node events go the same way, their execution_finished stays (the node logs
    -- stay too, as node_logs rows do). A trail is written when its run ends, so an old trail
    -- is an old run's.
    update flowgres.execution_trails t
    set events = coalesce((select jsonb_agg(entry order by position)
                           from jsonb_array_elements(t.events) with ordinality as kept(entry, position)
                           where entry ->> 'event' = 'execution_finished'), '[]')
    where t.execution_id = any (array(
        select tr.execution_id
        from flowgres.execution_trails tr
        join flowgres.executions x on x.id = tr.execution_id
        where tr.created_at < now() - make_interval(days => retention_days)
          and tr.events @? '$[*] ? (@.event != "execution_finished")'
          and x.finished_at < now() - make_interval(days => retention_days)
        limit greatest(batch_size - removed, 0)));
    get diagnostics emptied = row_count;
    return removed + emptied;
end
$$;

comment on function executions_record(json) is
    'Service only: records up to 200 finished runs ([{execution_id, status, outputs, error, prompt_tokens, completion_tokens, events, logs, model_calls, release_tokens, view, fold, admitted}], as json text); answers {runs: [{execution_id, execution} | {execution_id, error}]} in order, one run''s problem being its own. fold: the run stored no events or node logs while it ran, so they are kept as one execution_trails row. admitted: a run admitted without its row (runtime_admit''s execution with "deferred": true): its row, usage rows, trail (execution_finished last) and model calls are written here by one statement, ended; its events and logs are always kept as a trail.';
