-- flowgres 0.32 → 0.33
--
-- A synchronous trial run (POST /api/v1/apps/{id}/runs) is admitted without writing anything:
-- its request is held in the usage ledger and its run in the run cap, both in shared memory
-- across transactions, and its row, usage row and audit row are written once, when it is
-- recorded (executions_record) or stored running (execution_store_admitted). Before, it was
-- created running (execution_create_running: an insert, a usage row and an audit row, one
-- commit) and then updated by its record.
create function execution_admit_trial(app_id uuid, inputs jsonb, version_id uuid, claimed_by text) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_execution_admit_trial';
comment on function execution_admit_trial(uuid, jsonb, uuid, text) is
    'Daemon only (its role acting for the caller): admits a synchronous trial run as the caller (app_edit, the run cap, the request quota and budget) without writing it; returns the row it will be with "deferred": true and its version''s workflow (a run whose model calls must hold tokens is created running instead, as execution_create_running does).';
revoke execute on function execution_admit_trial(uuid, jsonb, uuid, text) from public;
grant execute on function execution_admit_trial(uuid, jsonb, uuid, text) to flowgres_service;
