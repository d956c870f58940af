-- Synchronous trial runs admitted without their row (execution_admit_trial): as the caller
-- (permission, run cap, request quota), nothing written until executions_record writes the
-- row ended with its usage and audit rows. What commits and backends do to the holds is
-- tested over real sessions (tests/integration/runs_test.py ConcurrentRunCap): here
-- everything happens in one transaction, rolled back.
begin;
select plan(39);

create role admitting_mapped nologin;
grant usage on schema flowgres, test to admitting_mapped;
select test.act_as(null);
select (flowgres.user_create('mapped-admit@example.com', 'Mapped', 'admitting_mapped')) -> 'user' ->> 'id' as mapped \gset
select test.new_user('owner-admit@example.com') as owner \gset
select test.new_user('outsider-admit@example.com') as outsider \gset
select test.home_of(:'owner') as ws \gset
select test.act_as(:'owner');
select flowgres.app_create(:'ws', 'Admitted trials') ->> 'id' as app \gset
select flowgres.app_create(:'ws', 'Other') ->> 'id' as other_app \gset
select is(test.error_code_of(format('select flowgres.execution_admit_trial(%L, %L, null, %L)', :'app', '{}', 'daemon-1')),
          'VERSION_NOT_FOUND', 'an app without versions cannot run');
select flowgres.version_create(:'app', '1.0.0', test.workflow()) ->> 'id' as v1 \gset
select flowgres.version_create(:'other_app', '1.0.0', test.workflow()) ->> 'id' as other_v1 \gset
select is(test.error_code_of(format('select flowgres.execution_admit_trial(%L, %L, %L, %L)', :'app', '{}', :'other_v1', 'daemon-1')),
          'VERSION_NOT_FOUND', 'nor another app''s version');

create function pg_temp.requests_in_flight() returns bigint
language sql as $$ select (flowgres.usage_ledger(current_setting('t.ws')::uuid) -> 'in_flight' ->> 'requests')::bigint $$;
select set_config('t.ws', :'ws', true);
select test.act_as(null);
select pg_temp.requests_in_flight() as held_before \gset
select test.act_as(:'owner');

-- Admitted, held, not written.
select flowgres.execution_admit_trial(:'app', '{"name": "Ada"}', null, 'daemon-1') as admitted \gset
select :'admitted'::jsonb ->> 'id' as run \gset
select is(:'admitted'::jsonb ->> 'deferred', 'true', 'admitted deferred');
select is(:'admitted'::jsonb ->> 'status', 'running', 'running, as a written row would say');
select is(:'admitted'::jsonb ->> 'trigger', 'trial', 'a trial run');
select is(:'admitted'::jsonb ->> 'triggered_by', :'owner', 'triggered by the caller');
select is(:'admitted'::jsonb ->> 'claimed_by', 'daemon-1', 'run by the daemon that asked');
select is(:'admitted'::jsonb ->> 'version_id', :'v1', 'the app''s latest version when none is named');
select is(:'admitted'::jsonb -> 'workflow', (select workflow from flowgres.app_versions where id = :'v1'),
          'with its version''s workflow');
select is(:'admitted'::jsonb -> 'token_holds', 'false'::jsonb, 'its model calls hold no tokens (nothing limits them)');
select is((:'admitted'::jsonb ->> 'started_at')::timestamptz, now(), 'started at the transaction''s now()');
select is((select array_agg(k order by k) from jsonb_object_keys(:'admitted'::jsonb - 'workflow') k),
          array['app_id', 'claimed_by', 'deferred', 'id', 'inputs', 'started_at', 'status', 'token_holds', 'trigger',
                'triggered_by', 'version_id', 'workspace_id'], 'and what its row is written from, no more');
select is((select count(*) from flowgres.executions where id = :'run'), 0::bigint, 'no execution row is written');
select is((select count(*) from flowgres.usage_events where execution_id = :'run'), 0::bigint, 'nor a usage row');
select is((select count(*) from flowgres.audit_logs where target_id = :'run'), 0::bigint, 'nor an audit row');
select test.act_as(null);
select is(pg_temp.requests_in_flight(), :'held_before'::bigint + 1, 'the request is held in the usage ledger');

-- Recorded (the daemon acts as the operator): its row, usage row and audit row, once.
select set_config('t.record', format('[{"execution_id": "%s", "status": "completed", "outputs": {"out": "hi"}, "fold": true,
                                        "view": "full", "logs": [{"node_id": "start", "node_type": "start", "status": "completed"}],
                                        "admitted": %s}]',
                                     :'run', (:'admitted'::jsonb - 'workflow' - 'deferred' - 'token_holds' - 'status')::text), true);
select flowgres.executions_record(current_setting('t.record')::json) -> 'runs' -> 0 -> 'execution' as recorded \gset
select is(:'recorded'::jsonb ->> 'status', 'completed', 'executions_record writes it, ended');
select is(:'recorded'::jsonb, flowgres.execution_get(:'run'), 'answered with the full view, as execution_get reads it back');
select is((select trigger || '/' || triggered_by || '/' || claimed_by || '/' || (inputs ->> 'name') from flowgres.executions
           where id = :'run'), 'trial/' || :'owner' || '/daemon-1/Ada', 'as a trial run of the caller''s');
select is((select string_agg(dimension || '=' || quantity, ',') from flowgres.usage_events where execution_id = :'run'),
          'requests=1', 'its request billed once (a trial run''s answer is not egress)');
select is((select count(*) || '/' || min(actor_user_id::text) || '/' || min(metadata ->> 'trigger') || '/' || min(metadata ->> 'app_id')
           from flowgres.audit_logs where action = 'execution.create' and target_id = :'run'),
          '1/' || :'owner' || '/trial/' || :'app', 'audited once, as the caller''s creation');
select is(pg_temp.requests_in_flight(), :'held_before'::bigint + 1,
          'its hold moves to the committed totals when the record commits, not before');
select is(flowgres.executions_record(current_setting('t.record')::json) -> 'runs' -> 0 -> 'error' ->> 'error_code',
          'STATE_CONFLICT', 'sent again, it is not written twice');
select is((select count(*) from flowgres.audit_logs where target_id = :'run'), 1::bigint, 'nor audited twice');

-- The daemon's framed form: the same record, each run's document as it is, with its length.
select test.act_as(:'owner');
select flowgres.execution_admit_trial(:'app', '{}', null, 'daemon-1') as second \gset
select test.act_as(null);
select set_config('t.second', format('[{"execution_id": "%s", "status": "failed", "fold": true, "view": "full",
                                        "error": {"error_code": "NODE_FAILED", "message": "é"}, "admitted": %s},
                                       {"execution_id": "%s", "status": "completed"}]',
                                     :'second'::jsonb ->> 'id',
                                     (:'second'::jsonb - 'workflow' - 'deferred' - 'token_holds' - 'status')::text,
                                     '00000000-0000-4000-8000-000000000001'), true);
select flowgres.executions_record_framed(current_setting('t.second')::json) as framed \gset
select flowgres.execution_get((:'second'::jsonb ->> 'id')::uuid)::text as second_doc \gset
select is(left(:'framed', length('E' || octet_length(:'second_doc') || ':' || :'second_doc')),
          'E' || octet_length(:'second_doc') || ':' || :'second_doc', 'a recorded run''s frame: E, its length in bytes, its execution');
select substr(:'framed', length('E' || octet_length(:'second_doc') || ':' || :'second_doc') + 1) as rest \gset
select ok(:'rest' ~ '^X\d+:\{"error_code":"EXECUTION_NOT_FOUND"', 'a refused run''s frame: X and its error object');
select is(substring(:'rest' from '^X(\d+):')::integer, octet_length(:'rest') - length(substring(:'rest' from '^X\d+:')),
          'whose length is its document''s');

-- The daemon that holds the version's workflow already is not sent it again.
select test.act_as(:'owner');
select ok(not flowgres.execution_admit_trial(:'app', '{}', null, 'daemon-1', :'v1') ? 'workflow',
          'have_version: the workflow of the version run is left out when the daemon holds it');
select is(flowgres.execution_admit_trial(:'app', '{}', null, 'daemon-1', :'other_v1') -> 'workflow',
          (select workflow from flowgres.app_versions where id = :'v1'), 'and sent when it holds another');

-- Hostile text (SQL, HTML, multi-byte) and an 800 kB input: admitted and recorded verbatim.
select test.act_as(:'owner');
select flowgres.execution_admit_trial(:'app', jsonb_build_object('name', repeat('<script>', 100000)), null,
                                      $$x'); drop table flowgres.executions; --<b>$$ || repeat('é', 150)) as hostile \gset
select test.act_as(null);
select set_config('t.hostile', format('[{"execution_id": "%s", "status": "completed", "fold": true, "view": "row", "admitted": %s}]',
                                      :'hostile'::jsonb ->> 'id',
                                      (:'hostile'::jsonb - 'workflow' - 'deferred' - 'token_holds' - 'status')::text), true);
select is(flowgres.executions_record(current_setting('t.hostile')::json) -> 'runs' -> 0 -> 'execution' ->> 'status', 'completed',
          'a hostile admission is recorded like any other');
select is((select (claimed_by = $$x'); drop table flowgres.executions; --<b>$$ || repeat('é', 150)) || '|' ||
                  length(inputs ->> 'name') || '|' ||
                  (select sum(quantity) from flowgres.usage_events u where u.execution_id = e.id)
           from flowgres.executions e where id = (:'hostile'::jsonb ->> 'id')::uuid),
          'true|800000|1', 'its text kept verbatim, as text, and its request billed once');

-- What the caller may not do, it may not do this way either.
select test.act_as(:'outsider');
select is(test.error_code_of(format('select flowgres.execution_admit_trial(%L, %L, null, %L)', :'app', '{}', 'daemon-1')),
          test.error_code_of(format('select flowgres.execution_create(%L)', :'app')), 'a stranger is refused as by execution_create');
select test.act_as(:'owner');
select is(test.error_code_of(format('select flowgres.execution_admit_trial(%L, %L, null, null)', :'app', '{}')),
          'VALIDATION_FAILED', 'claimed_by is required');
select is(test.error_code_of(format('select flowgres.execution_admit_trial(%L, %L, null, %L)', :'app', '[1]', 'daemon-1')),
          'VALIDATION_FAILED', 'inputs must be an object');
select is(test.error_code_of(format('select flowgres.execution_admit_trial(%L, %L, null, %L)', :'app', '{}', E'daemon\n1')),
          'VALIDATION_FAILED', 'claimed_by has no control characters');

-- A full view's node logs are built without a statement (trail_node_logs_json): byte for byte
-- what execution_get prints, for logs of every shape, in any session time zone.
select test.act_as(:'owner');
select flowgres.execution_admit_trial(:'app', '{}', null, 'daemon-1') as shaped \gset
select flowgres.execution_admit_trial(:'app', '{}', null, 'daemon-1') as bare \gset
select test.act_as(null);
set local timezone = 'Asia/Kolkata';
select set_config('t.shaped', format($$[
  {"execution_id": "%1$s", "status": "completed", "fold": true, "view": "full", "outputs": {"é": "\"<script>\u0001"},
   "logs": [
     {"node_id": "s", "node_type": "start", "status": "completed", "started_at": "2026-11-30T09:16:40Z",
      "finished_at": "2026-11-30T09:16:40.120Z", "output": {"a": 1.0, "b": 1e3, "c": [true, null, -0], "d": {}}},
     {"node_id": "ü\n\"x\"", "node_type": "transform", "status": "failed", "attempt": 3,
      "started_at": "2026-11-30T09:16:40.123456+05:30", "finished_at": null,
      "error": {"message": "\t</script>\u001f\\", "error_code": "NODE_FAILED"}, "variables": ["x", {"y": "😀"}],
      "input": "\\", "duration_ms": 7},
     {"node_id": "o", "node_type": "output", "status": "skipped", "attempt": null, "created_at": "given"},
     {"node_id": "p", "node_type": "output", "status": "completed", "created_at": null, "output": []},
     {"node_id": "q", "node_type": "output", "status": "completed", "created_at": 5, "output": "{\"not\": \"an object\"}"}],
   "admitted": %2$s},
  {"execution_id": "%3$s", "status": "completed", "fold": true, "view": "full", "admitted": %4$s}]$$,
  :'shaped'::jsonb ->> 'id', (:'shaped'::jsonb - 'workflow' - 'deferred' - 'token_holds' - 'status')::text,
  :'bare'::jsonb ->> 'id', (:'bare'::jsonb - 'workflow' - 'deferred' - 'token_holds' - 'status')::text), true);
select flowgres.executions_record_framed(current_setting('t.shaped')::json) as shaped_framed \gset
select flowgres.execution_get((:'shaped'::jsonb ->> 'id')::uuid)::text as shaped_doc \gset
select flowgres.execution_get((:'bare'::jsonb ->> 'id')::uuid)::text as bare_doc \gset
select is(:'shaped_framed', 'E' || octet_length(:'shaped_doc') || ':' || :'shaped_doc' ||
                            'E' || octet_length(:'bare_doc') || ':' || :'bare_doc',
          'full views of logs of every shape, and of none, read as execution_get prints them, byte for byte');
select is(jsonb_array_length(:'shaped_doc'::jsonb -> 'node_logs'), 5, 'with every log');
reset timezone;

-- Only the daemon's role admits runs it runs: not a user's own SQL role, even one granted it.
select test.act_as(null);
create temp table attempts (what text, error_code text);
grant insert on attempts to public;
set local role admitting_mapped;
insert into attempts select 'not granted', test.error_code_of(
    format('select flowgres.execution_admit_trial(%L, %L, null, %L)', :'app', '{}', 'forged'));
reset role;
grant execute on function flowgres.execution_admit_trial(uuid, jsonb, uuid, text, uuid) to admitting_mapped;
set local role admitting_mapped;
insert into attempts select 'granted', test.error_code_of(
    format('select flowgres.execution_admit_trial(%L, %L, null, %L)', :'app', '{}', 'forged'));
reset role;
select ok((select error_code from attempts where what = 'not granted') like '42501:%',
          'a user''s SQL role cannot call it (not granted: PostgreSQL refuses)');
select is((select error_code from attempts where what = 'granted'), 'PERMISSION_DENIED', 'nor when granted it by mistake');

select * from finish();
rollback;
