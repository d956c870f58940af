-- flowgres 0.27 → 0.28: a trial run the daemon runs at once is created running.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.28'" to load this file. \quit

-- A synchronous trial run was created pending (as the caller) and then started (as the
-- service) in the same transaction: the start updated the row it had just inserted, and since
-- that update changes indexed columns (status, heartbeat_at) it wrote a new row version and an
-- entry in each of its indexes again. Now the daemon creates it running in one insert.
create function execution_create_running(app_id uuid, inputs jsonb, version_id uuid, claimed_by text) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_execution_create_running';
comment on function execution_create_running(uuid, jsonb, uuid, text) is
    'Daemon only (its role acting for the caller): creates a trial execution as the caller does with execution_create (app_edit, the run cap, the request quota, an audit row), already running, claimed by claimed_by; returns it with its version''s workflow, as execution_start does.';
revoke execute on function execution_create_running(uuid, jsonb, uuid, text) from public;
grant execute on function execution_create_running(uuid, jsonb, uuid, text) to flowgres_service;
