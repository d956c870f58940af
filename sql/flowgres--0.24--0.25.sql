-- flowgres 0.24 → 0.25: the cap on a workspace's runs at once outside the public runtime is
-- counted in shared memory (run_cap.cpp) instead of under a lock on the workspace's row.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.25'" to load this file. \quit

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
