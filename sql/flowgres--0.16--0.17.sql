-- flowgres 0.16 → 0.17: the catalogue caches' generation (README "Performance"). Runtime
-- admission keeps workspaces, apps with their policies, versions and plan limits in per-backend
-- caches; every committed write to a table they are built from moves a counter in shared
-- memory, and a cache older than the counter is dropped before its next use.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.17'" to load this file. \quit

create function catalog_changed() returns trigger
language c security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_catalog_changed';
comment on function catalog_changed() is
    'Statement trigger on the cached catalogue tables: the transaction''s commit moves the caches'' generation.';
revoke execute on function catalog_changed() from public;

create trigger catalog_changed after insert or update or delete or truncate on workspaces
    for each statement execute function catalog_changed();
create trigger catalog_changed after insert or update or delete or truncate on apps
    for each statement execute function catalog_changed();
create trigger catalog_changed after insert or update or delete or truncate on app_access_policies
    for each statement execute function catalog_changed();
create trigger catalog_changed after insert or update or delete or truncate on billing_plans
    for each statement execute function catalog_changed();
create trigger catalog_changed after insert or update or delete or truncate on workspace_quotas
    for each statement execute function catalog_changed();
create trigger catalog_changed after insert or update or delete or truncate on budgets
    for each statement execute function catalog_changed();

-- Finished runs recorded in batches: one call, one transaction for many runs.
create function executions_record(runs jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_executions_record';
comment on function executions_record(jsonb) is
    'Service only: records up to 200 finished runs ([{execution_id, status, outputs, error, prompt_tokens, completion_tokens, events, logs, model_calls, release_tokens, view}]); answers {runs: [{execution_id, execution} | {execution_id, error}]} in order, one run''s problem being its own.';
revoke execute on function executions_record(jsonb) from public;
grant execute on function executions_record(jsonb) to flowgres_service;
