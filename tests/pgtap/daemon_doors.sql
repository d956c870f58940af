-- The daemon's text doors (0.37): runtime_admit_batch(text), many admissions read once and
-- answered in order, and executions_record_framed(text), the same recording as over json.
-- Each refuses text that is not JSON with BAD_REQUEST and JSON that is not its input with
-- VALIDATION_FAILED, and only the service may call
-- them. Everything in one transaction, rolled back.
begin;
select plan(22);

select test.published_app('doors@example.com', 'doors') as published \gset
select :'published'::jsonb ->> 'owner' as owner, :'published'::jsonb ->> 'version' as v1 \gset
select set_config('t.ws', :'published'::jsonb ->> 'workspace_slug', true);

create function pg_temp.request(action text, app text, ip text default '203.0.113.9') returns text
language sql as $$
    select json_build_object('action', action, 'workspace', current_setting('t.ws'), 'app', app, 'ip', ip,
                             'user_agent', 'pgTAP <script>', 'inputs', json_build_object('name', 'Ada'),
                             'claimed_by', 'doors', 'defer', true)::text
$$;

-- Many requests, one call: each answered as runtime_admit_json answers it, in order.
select flowgres.runtime_admit_batch('[' || pg_temp.request('entry', 'doors') || ',' || pg_temp.request('entry', 'nope') || ','
                                    || pg_temp.request('execute', 'doors') || ']')::jsonb as answers \gset
select is(jsonb_array_length(:'answers'::jsonb), 3, 'three requests, three answers');
select is(:'answers'::jsonb -> 0 ->> 'decision', 'allow', 'the first admitted');
select is(:'answers'::jsonb -> 0 ->> 'version_id', :'v1', 'with the version to run');
select is(:'answers'::jsonb -> 1 -> 'error' ->> 'error_code', 'RUNTIME_APP_NOT_FOUND', 'the second refused as its own');
select is((:'answers'::jsonb -> 1 ->> 'status')::int, 404, 'with 404');
select is(:'answers'::jsonb -> 2 -> 'execution' ->> 'deferred', 'true', 'the third a deferred run');
select is(:'answers'::jsonb -> 2 -> 'execution' -> 'inputs' ->> 'name', 'Ada', 'with its inputs');
select is((select count(*) from flowgres.executions where id = (:'answers'::jsonb -> 2 -> 'execution' ->> 'id')::uuid),
          0::bigint, 'and no row written for it');
select is(flowgres.runtime_admit_batch('[' || pg_temp.request('entry', 'doors') || ']')::jsonb -> 0 -> 'session' ->> 'type',
          flowgres.runtime_admit_json(pg_temp.request('entry', 'doors')::json)::jsonb -> 'session' ->> 'type',
          'one request answers as runtime_admit_json does');

-- What is not a batch of requests.
select is(test.error_code_of($$select flowgres.runtime_admit_batch('{"action": "entry"}')$$), 'VALIDATION_FAILED',
          'an object is not a batch');
select is(test.error_code_of($$select flowgres.runtime_admit_batch('[]')$$), 'VALIDATION_FAILED', 'nor is an empty array');
select is(test.error_code_of($$select flowgres.runtime_admit_batch('[' || repeat('{},', 1000) || '{}]')$$),
          'VALIDATION_FAILED', 'nor more than 1,000 requests');
select is(test.error_code_of($$select flowgres.runtime_admit_batch('[1, "x"]')$$), 'VALIDATION_FAILED',
          'each request must be an object');
select is(test.error_code_of($$select flowgres.runtime_admit_batch('[{"action": "entry"')$$), 'BAD_REQUEST',
          'text that is not JSON is refused by the function itself');
select is(test.error_code_of($$select flowgres.runtime_admit_batch('[' || pg_temp.request('entry', 'doors') || ', {"action": "drop"}]')$$),
          'VALIDATION_FAILED', 'one malformed request fails the batch (the daemon then asks for each alone)');
select is(test.error_code_of($$select flowgres.runtime_admit_batch(null)$$), 'VALIDATION_FAILED', 'null is refused');
select test.act_as(:'owner');
select is(test.error_code_of($$select flowgres.runtime_admit_batch('[' || pg_temp.request('entry', 'doors') || ']')$$),
          'PERMISSION_DENIED', 'a member cannot admit as the daemon does');
select is(test.error_code_of($$select flowgres.executions_record_framed(
                                 '[{"execution_id": "00000000-0000-4000-8000-000000000001", "status": "completed"}]'::text)$$),
          'PERMISSION_DENIED',
          'nor record runs');
select test.act_as(null);

-- The recording over text: the run written, its frame as over json.
select :'answers'::jsonb -> 2 -> 'execution' as admitted \gset
select set_config('t.record', format('[{"execution_id": "%s", "status": "completed", "outputs": {"out": "hi"}, "fold": true,
                                        "view": "row", "admitted": %s}]', :'admitted'::jsonb ->> 'id',
                                     (:'admitted'::jsonb - 'workflow' - 'deferred')::text), true);
select flowgres.executions_record_framed(current_setting('t.record')) as framed \gset
select to_jsonb(e)::text as recorded from flowgres.executions e where id = (:'admitted'::jsonb ->> 'id')::uuid \gset
select is(:'framed', 'E' || octet_length(:'recorded') || ':' || :'recorded', 'a run recorded over text is framed with its row');
select is((select status from flowgres.executions where id = (:'admitted'::jsonb ->> 'id')::uuid), 'completed',
          'and written, ended');
select is(test.error_code_of($$select flowgres.executions_record_framed('[{"execution_id": 1'::text)$$), 'BAD_REQUEST',
          'text that is not JSON is refused');
select is(test.error_code_of($$select flowgres.executions_record_framed('{"runs": []}'::text)$$), 'VALIDATION_FAILED',
          'so is an object where the runs go');

select * from finish();
rollback;
