-- flowgres 0.22 → 0.23: the retention sweep finds old trails through an index, as it finds old
-- node events (execution_events_prunable_idx), instead of reading every trail each pass. A
-- trail leaves the index once its events are emptied.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.23'" to load this file. \quit

create index execution_trails_prunable_idx on execution_trails (created_at) where events <> '[]';

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
    -- Trails: their events go the same way (the node logs stay, as node_logs rows do). A trail
    -- is written when its run ends, so an old trail is an old run's.
    update flowgres.execution_trails t set events = '[]'
    where t.execution_id = any (array(
        select tr.execution_id
        from flowgres.execution_trails tr
        join flowgres.executions x on x.id = tr.execution_id
        where tr.created_at < now() - make_interval(days => retention_days) and tr.events <> '[]'
          and x.finished_at < now() - make_interval(days => retention_days)
        limit greatest(batch_size - removed, 0)));
    get diagnostics emptied = row_count;
    return removed + emptied;
end
$$;
