-- flowgres 0.19 → 0.20: admitted executes and visitors' run outcomes are counted, not written
-- as a row each (README "Runtime admission (service)", "Performance"). runtime.execute and
-- runtime.execute_succeeded / _failed / _cancelled are counted in shared memory when their
-- transaction commits and written by the maintenance worker as one summary event per app,
-- kind and minute (details.count), as refusals past their budget already were.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.20'" to load this file. \quit

create function runtime_outcome_count(workspace_id uuid, app_id uuid, status text) returns void
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_runtime_outcome_count';
comment on function runtime_outcome_count(uuid, uuid, text) is
    'From the executions trigger: a visitor''s run ended (completed, failed, cancelled); counted when the transaction commits.';
revoke execute on function runtime_outcome_count(uuid, uuid, text) from public;

create or replace function execution_finished_event() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp
as $$
begin
    insert into flowgres.execution_events (workspace_id, execution_id, sequence, event, data)
    values (new.workspace_id, new.id,
            coalesce((select max(sequence) from flowgres.execution_events
                      where workspace_id = new.workspace_id and execution_id = new.id), 0) + 1,
            'execution_finished',
            jsonb_strip_nulls(jsonb_build_object('status', new.status, 'outputs', new.outputs, 'error', new.error,
                                                 'finished_at', new.finished_at)));
    if new.trigger = 'runtime' then
        perform flowgres.runtime_outcome_count(new.workspace_id, new.app_id, new.status);
    end if;
    perform pg_notify('flowgres_execution_events', new.id::text);
    return null;
end
$$;
