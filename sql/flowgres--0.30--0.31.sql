-- flowgres 0.30 → 0.31: a TRUNCATE of executions counted by the cap on runs at once.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.31'" to load this file. \quit

-- Each workspace's runs pending or running outside the public runtime are counted in shared
-- memory (flowgres.max_concurrent_runs_per_workspace). Row triggers note the runs that end or
-- are deleted; a TRUNCATE fires none, so the counts kept the truncated runs and the
-- workspaces stayed at their cap until the server restarted. This statement trigger makes the
-- TRUNCATE's commit count this database's workspaces again. Enabled always, as a TRUNCATE in
-- replica mode removes runs too.
create function run_cap_truncated() returns trigger
language c security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_run_cap_truncated';
comment on function run_cap_truncated() is
    'Statement trigger after TRUNCATE on executions: its commit counts the runs at once of this database''s workspaces again.';
revoke execute on function run_cap_truncated() from public;

create trigger run_cap_truncated after truncate on executions
    for each statement execute function run_cap_truncated();
alter table executions enable always trigger run_cap_truncated;
