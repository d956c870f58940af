-- flowgres 0.8 → 0.9: retention of execution events (the SSE stream's rows).
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.9'" to load this file. \quit

-- The node_started / node_finished events of executions that ended more than retention_days
-- ago, at most batch_size of them per call; execution_finished stays, so a late reader of
-- the stream still learns how the run ended. The maintenance worker calls it hourly, and
-- again at once while a call still finds a full batch. Returns how many rows went.
-- What a prune looks for, and nothing else: rows leave this index as they are deleted.
create index execution_events_prunable_idx on execution_events (created_at) where event <> 'execution_finished';

create function execution_events_prune(retention_days integer, batch_size integer default 10000) returns integer
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
    removed integer;
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
    return removed;
end
$$;
comment on function execution_events_prune(integer, integer) is
    'Deletes node events of executions that ended more than retention_days ago (at most batch_size); keeps execution_finished. Run by the maintenance worker.';
revoke execute on function execution_events_prune(integer, integer) from public;
