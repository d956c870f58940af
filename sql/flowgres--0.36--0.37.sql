-- flowgres 0.36 → 0.37
--
-- The daemon's doors to admission and recording take text. As json, each batch was checked by
-- PostgreSQL's json parser before the function read it again (3% of PostgreSQL's CPU per
-- visitor run), and a batch of admissions was split into elements (read a third time) by
-- json_array_elements. The functions read and check their input themselves, as they did.

create function runtime_admit_batch(requests text) returns json
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_runtime_admit_batch';
comment on function runtime_admit_batch(text) is
    'Service only: runtime_admit_json for a JSON array of 1 to 1,000 requests, read once; answers the array of their answers in order. One request''s error is the batch''s.';
revoke execute on function runtime_admit_batch(text) from public;
grant execute on function runtime_admit_batch(text) to flowgres_service;

create function executions_record_framed(runs text) returns text
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_executions_record_framed';
comment on function executions_record_framed(text) is
    'Service only: executions_record_framed(json) over the runs'' JSON text as sent, read once by the function (not checked as json first).';
revoke execute on function executions_record_framed(text) from public;
grant execute on function executions_record_framed(text) to flowgres_service;
