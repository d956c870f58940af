-- flowgres 0.23 → 0.24: a visitor's run the caller waits for is admitted without its row. Its
-- request is held in shared memory (the usage ledger's holds) and its execution row and usage
-- row are written once, when executions_record records it ended (its item's `admitted`), or
-- by execution_store_admitted when it outlives its first heartbeat or its caller is answered
-- 202 before it ends.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.24'" to load this file. \quit

create function execution_store_admitted(admitted json) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_execution_store_admitted';
comment on function execution_store_admitted(json) is
    'Service only: stores a run admitted without its row (runtime_admit''s execution with "deferred": true) as running, with its request''s usage row; the request''s hold settles with the commit. {stored: false} when the row is there already.';
revoke execute on function execution_store_admitted(json) from public;
grant execute on function execution_store_admitted(json) to flowgres_service;

-- The daemon's door to admission and recording speaks json: the request is read as the text it
-- came as and the answer returned as the text it was built as. A jsonb argument or result would
-- be parsed into jsonb and written out again on every request, for nothing.
create function runtime_admit_json(request json) returns json
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_runtime_admit_json';
comment on function runtime_admit_json(json) is
    'Service only: runtime_admit(jsonb) over json, for a caller that holds the request as text (the daemon). A run the caller waits for may be deferred ("defer": true): see execution_store_admitted.';
revoke execute on function runtime_admit_json(json) from public;
grant execute on function runtime_admit_json(json) to flowgres_service;

drop function executions_record(json);
create function executions_record(runs json) returns json
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_executions_record';
comment on function executions_record(json) is
    'Service only: records up to 200 finished runs ([{execution_id, status, outputs, error, prompt_tokens, completion_tokens, events, logs, model_calls, release_tokens, view, fold, admitted}]); answers {runs: [{execution_id, execution} | {execution_id, error}]} in order, one run''s problem being its own. fold: the run stored no events or node logs while it ran, so they are kept as one execution_trails row. admitted: a run admitted without its row (runtime_admit''s execution with "deferred": true), whose row and request usage row are written here, ended.';
revoke execute on function executions_record(json) from public;
grant execute on function executions_record(json) to flowgres_service;

-- The cap on a workspace's runs at once (flowgres.max_concurrent_runs_per_workspace) is counted
-- in shared memory: execution_create reserves before it writes the row, and a run that stops
-- being pending or running (or is deleted while it is) is noted by these triggers, before its
-- row changes. Creating a run no longer locks the workspace's row.
create function run_cap_noted(workspace_id uuid) returns void
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_run_cap_noted';
comment on function run_cap_noted(uuid) is
    'From the executions triggers only: one of the workspace''s runs (outside the runtime) ends with this transaction.';
revoke execute on function run_cap_noted(uuid) from public;

create function executions_run_ended() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
    perform flowgres.run_cap_noted(old.workspace_id);
    if tg_op = 'DELETE' then
        return old;
    end if;
    return new;
end
$$;
comment on function executions_run_ended() is
    'Trigger: a run outside the runtime leaves pending/running (or is deleted in it): the workspace''s count of runs at once goes down when the transaction commits.';
revoke execute on function executions_run_ended() from public;

create trigger run_cap_ended before update of status on executions
    for each row
    when (old.status in ('pending', 'running') and new.status not in ('pending', 'running') and old.trigger <> 'runtime')
    execute function executions_run_ended();
create trigger run_cap_deleted before delete on executions
    for each row
    when (old.status in ('pending', 'running') and old.trigger <> 'runtime')
    execute function executions_run_ended();
-- Also for changes made in replica mode (a restore, logical replication): the count must follow.
alter table executions enable always trigger run_cap_ended;
alter table executions enable always trigger run_cap_deleted;
