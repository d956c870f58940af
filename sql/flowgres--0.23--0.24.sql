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
