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

comment on function executions_record(json) is
    'Service only: records up to 200 finished runs ([{execution_id, status, outputs, error, prompt_tokens, completion_tokens, events, logs, model_calls, release_tokens, view, fold, admitted}]); answers {runs: [{execution_id, execution} | {execution_id, error}]} in order, one run''s problem being its own. fold: the run stored no events or node logs while it ran, so they are kept as one execution_trails row. admitted: a run admitted without its row (runtime_admit''s execution with "deferred": true), whose row and request usage row are written here, ended.';
