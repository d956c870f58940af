-- flowgres 0.33 → 0.34
--
-- A trial run's admission leaves out the version's workflow when the daemon says it holds that
-- version (have_version): versions never change, and the daemon parsed it for an earlier run.
drop function execution_admit_trial(uuid, jsonb, uuid, text);
create function execution_admit_trial(app_id uuid, inputs jsonb, version_id uuid, claimed_by text,
                                      have_version uuid default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_execution_admit_trial';
comment on function execution_admit_trial(uuid, jsonb, uuid, text, uuid) is
    'Daemon only (its role acting for the caller): admits a synchronous trial run as the caller (app_edit, the run cap, the request quota and budget) without writing it; returns the row it will be with "deferred": true and its version''s workflow unless that version is have_version (a run whose model calls must hold tokens is created running instead, as execution_create_running does).';
revoke execute on function execution_admit_trial(uuid, jsonb, uuid, text, uuid) from public;
grant execute on function execution_admit_trial(uuid, jsonb, uuid, text, uuid) to flowgres_service;
--
-- The daemon's form of executions_record: the same work, each run's answer framed rather than
-- gathered into one JSON document, so that the daemon hands each caller its execution as the
-- database wrote it, without parsing the batch's answer and writing each part out again (a
-- third of the daemon's CPU per trial run).
create function executions_record_framed(runs json) returns text
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_executions_record_framed';
comment on function executions_record_framed(json) is
    'Service only: executions_record, answered as one frame per run in order: "E" (its execution) or "X" (its error object {error_code, sqlstate, message}), the document''s length in bytes, ":", the document.';
revoke execute on function executions_record_framed(json) from public;
grant execute on function executions_record_framed(json) to flowgres_service;
