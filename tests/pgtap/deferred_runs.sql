-- Runs admitted without their row (runtime_admit's "defer"): the request held in the usage
-- ledger, the execution and its usage row written once by executions_record, or stored while
-- running by execution_store_admitted. What a commit does to the holds is tested over real
-- sessions (tests/integration/run_recording_test.py DeferredRuns): here everything happens in
-- one transaction, rolled back.
begin;
select plan(80);

select test.published_app('deferred@example.com', 'deferred') as published \gset
select :'published'::jsonb ->> 'owner' as owner, :'published'::jsonb ->> 'workspace' as ws,
       :'published'::jsonb ->> 'workspace_slug' as ws_slug, :'published'::jsonb ->> 'app' as app,
       :'published'::jsonb ->> 'version' as v1 \gset
-- the daemon acts as the operator

create function pg_temp.admit(extra jsonb default '{}') returns jsonb
language sql as $$
    select flowgres.runtime_admit(jsonb_build_object('action', 'execute', 'workspace', current_setting('t.ws'),
                                                     'app', 'deferred', 'ip', '203.0.113.7', 'user_agent', 'pgTAP',
                                                     'inputs', jsonb_build_object('name', '<b>Ada</b>'),
                                                     'claimed_by', 'daemon-d', 'defer', true) || extra)
$$;
create function pg_temp.requests_in_flight() returns bigint
language sql as $$ select (flowgres.usage_ledger(current_setting('t.ws_id')::uuid) -> 'in_flight' ->> 'requests')::bigint $$;
create function pg_temp.requests_billed(execution uuid) returns bigint
language sql as $$ select coalesce(sum(quantity), 0)::bigint from flowgres.usage_events
                   where execution_id = execution and dimension = 'requests' $$;
select set_config('t.ws', :'ws_slug', true), set_config('t.ws_id', :'ws', true);

-- Admitted, held, not written.
select pg_temp.requests_in_flight() as held_before \gset
select pg_temp.admit() as admission \gset
select :'admission'::jsonb -> 'execution' as admitted \gset
select :'admitted'::jsonb ->> 'id' as run \gset
select is(:'admitted'::jsonb ->> 'deferred', 'true', 'a run the caller waits for is admitted deferred');
select is(:'admitted'::jsonb ->> 'status', 'running', 'running, as a written row would say');
select is(:'admitted'::jsonb ->> 'claimed_by', 'daemon-d', 'by the daemon that asked');
select ok(:'admitted'::jsonb ->> 'started_at' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$', 'started now, in UTC, to the microsecond');
select is((:'admitted'::jsonb ->> 'started_at')::timestamptz, now(), 'the transaction''s now(), as a row''s default');
select ok(:'admitted'::jsonb -> 'workflow' ? 'nodes', 'with the workflow to run');
select is((select array_agg(k order by k) from jsonb_object_keys(:'admitted'::jsonb - 'workflow') k),
          array['app_id', 'claimed_by', 'deferred', 'id', 'inputs', 'session_id', 'started_at', 'status', 'version_id',
                'workspace_id'], 'and what its row is written from, no more');
select is(:'admission'::jsonb -> 'app', 'null'::jsonb, 'the answer leaves out the app''s description: the daemon has no use for it');
select is((select count(*) from flowgres.executions where id = :'run'), 0::bigint, 'no execution row is written');
select is(pg_temp.requests_billed(:'run'), 0::bigint, 'nor a usage row');
select is(pg_temp.requests_in_flight(), :'held_before'::bigint + 1, 'the request is held in the usage ledger');
select isnt(pg_temp.admit('{"defer": false}') -> 'execution' ->> 'deferred', 'true', 'without defer the row is written at once');
select pg_temp.requests_in_flight() as held_after_written \gset

-- Recorded: the row written ended, once, with its usage row dated when it was admitted.
select set_config('t.record', format('[{"execution_id": "%s", "status": "completed", "outputs": {"out": "hi"}, "fold": true,
                                        "view": "row", "admitted": %s}]', :'run', (:'admitted'::jsonb - 'workflow')::text), true);
select is(flowgres.executions_record(current_setting('t.record')::json) -> 'runs' -> 0 -> 'execution' ->> 'status', 'completed',
          'executions_record writes a deferred run''s row, ended');
select is(pg_temp.requests_in_flight(), :'held_after_written'::bigint,
          'its hold stays in flight until the record commits (then it is counted as committed)');
select is((select status || '/' || trigger || '/' || claimed_by || '/' || (inputs ->> 'name') from flowgres.executions where id = :'run'),
          'completed/runtime/daemon-d/<b>Ada</b>', 'with what admission decided, inputs verbatim');
select is((select created_at from flowgres.executions where id = :'run'), (:'admitted'::jsonb ->> 'started_at')::timestamptz,
          'created when it was admitted');
select is(pg_temp.requests_billed(:'run'), 1::bigint, 'its request billed once');
select is((select created_at from flowgres.usage_events where execution_id = :'run' and dimension = 'requests'), (:'admitted'::jsonb ->> 'started_at')::timestamptz,
          'dated when it was admitted (the month its hold counted in)');
select is((select count(*) from flowgres.execution_events where execution_id = :'run'), 0::bigint,
          'no event row, not even its execution_finished');
select is((select jsonb_array_length(events) || '/' || finished_sequence || '/' || (finished_data ->> 'status')
           from flowgres.execution_trails where execution_id = :'run'), '0/1/completed', 'which its trail holds, numbered 1');
select is((select string_agg(e ->> 'id' || ':' || (e ->> 'event') || ':' || (e -> 'data' ->> 'status'), ',')
           from jsonb_array_elements(flowgres.execution_events(:'run') -> 'events') e)
          || '/' || (flowgres.execution_events(:'run') ->> 'complete'),
          '1:execution_finished:completed/true', 'read back like a row: its stream tells how it ended');
select is(flowgres.executions_record(current_setting('t.record')::json) -> 'runs' -> 0 -> 'error' ->> 'error_code', 'STATE_CONFLICT',
          'a record sent again changes nothing');
select is(pg_temp.requests_billed(:'run'), 1::bigint, 'and bills nothing twice');

-- Everything a deferred run leaves comes with its row, from the record as sent: its tokens
-- and its outputs' bytes billed, its events and logs as one trail (whatever "fold" says: it
-- stored nothing while it ran), its model calls, execution_finished after its last event.
-- In the same batch, a run whose row exists is ended on its row.
select pg_temp.admit() -> 'execution' as rich_admitted \gset
select :'rich_admitted'::jsonb ->> 'id' as rich \gset
select pg_temp.admit('{"defer": false}') -> 'execution' ->> 'id' as written \gset
select set_config('t.rich', format(
    '[{"execution_id": "%s", "status": "completed", "outputs": {"out": "héllo"}, "prompt_tokens": 7, "completion_tokens": 5,
       "events": [{"sequence": 1, "event": "node_started", "data": {"node_id": "start"}},
                  {"sequence": 2, "event": "node_finished", "data": {"node_id": "start", "status": "completed"}}],
       "logs": [{"node_id": "start", "node_type": "start", "status": "completed", "attempt": 1}],
       "model_calls": [{"node_id": "ask", "provider": "p1", "model": "m-1", "prompt_tokens": 7, "completion_tokens": 5,
                        "cost_micros": 12, "latency_ms": 50, "ok": true}],
       "view": "visitor", "admitted": %s},
      {"execution_id": "%s", "status": "completed", "outputs": {"out": "x"}, "fold": true, "view": "visitor"}]',
    :'rich', (:'rich_admitted'::jsonb - 'workflow')::text, :'written'), true);
select flowgres.executions_record(current_setting('t.rich')::json) -> 'runs' as rich_recorded \gset
select is((select string_agg(r -> 'execution' ->> 'status', ',') from jsonb_array_elements(:'rich_recorded'::jsonb) r),
          'completed,completed', 'a batch of a deferred run and a written one: both recorded');
select is(:'rich_recorded'::jsonb -> 0 -> 'execution',
          jsonb_build_object('execution_id', :'rich', 'status', 'completed', 'outputs', '{"out": "héllo"}'::jsonb, 'error', null),
          'the deferred run answered as its visitor sees it');
select is(:'rich_recorded'::jsonb -> 1 -> 'execution',
          jsonb_build_object('execution_id', :'written', 'status', 'completed', 'outputs', '{"out": "x"}'::jsonb, 'error', null),
          'and the run whose row existed');
select is((select string_agg(dimension || '=' || quantity, ',' order by dimension) from flowgres.usage_events where execution_id = :'rich'),
          'egress=' || octet_length('{"out": "héllo"}') || ',requests=1,tokens=12', 'its request, tokens and output bytes billed');
select is((select string_agg(dimension || '=' || quantity, ',' order by dimension) from flowgres.usage_events where execution_id = :'written'),
          'egress=' || octet_length('{"out": "x"}') || ',requests=1', 'the written run''s as before (its request at admission)');
select is((select jsonb_array_length(events) || '/' || jsonb_array_length(node_logs) from flowgres.execution_trails where execution_id = :'rich'),
          '2/1', 'its events and logs in one trail, without "fold"');
select is((select count(*) from flowgres.execution_events where execution_id = :'rich'), 0::bigint,
          'no event rows');
select is((select finished_sequence || ' ' || (finished_data ->> 'status') || ' ' || (finished_data -> 'outputs')::text
           from flowgres.execution_trails where execution_id = :'rich'), '3 completed {"out": "héllo"}',
          'its execution_finished with it, numbered after its last event');
select is((select string_agg(e ->> 'id' || ' ' || (e ->> 'event'), ',') from jsonb_array_elements(flowgres.execution_events(:'rich') -> 'events') e),
          '1 node_started,2 node_finished,3 execution_finished', 'read back in order, execution_finished last');
select is(flowgres.execution_events(:'rich', 2) -> 'events' -> 0 -> 'data' -> 'outputs', '{"out": "héllo"}'::jsonb,
          'read after an event id like a row, with the outputs');
select is((select count(*) from flowgres.execution_events where execution_id = :'written')
          || '/' || (select finished_sequence from flowgres.execution_trails where execution_id = :'written'),
          '0/1', 'the written run, which folds too, keeps its execution_finished in its trail');
select is((select provider || '/' || model || '/' || prompt_tokens || '/' || completion_tokens || '/' || cost_micros || '/' || ok
           from flowgres.model_usage where execution_id = :'rich'), 'p1/m-1/7/5/12/true', 'its model call metered');
select is((select prompt_tokens + completion_tokens from flowgres.executions where id = :'rich'), 12::bigint, 'its tokens on its row');
select is((select count(*) from flowgres.execution_trails where execution_id = :'written'), 1::bigint, 'the written run folded too');
select is((select count(*) from pg_constraint where contype = 'f'
           and conrelid in ('flowgres.executions'::regclass, 'flowgres.usage_events'::regclass, 'flowgres.execution_trails'::regclass,
                            'flowgres.model_usage'::regclass, 'flowgres.execution_events'::regclass)), 0::bigint,
          'no reference is checked from a run''s rows (each check would lock the workspace''s row)');
select is((select (flowgres.usage_ledger(:'ws'::uuid) -> 'in_flight' ->> 'tokens')::bigint) >= 12, true,
          'the tokens counted in the ledger with this transaction');

-- Stored while it runs, then recorded as any run.
select pg_temp.admit() -> 'execution' as long_admitted \gset
select :'long_admitted'::jsonb ->> 'id' as long_run \gset
select set_config('t.long', (:'long_admitted'::jsonb - 'workflow')::text, true);
select is(flowgres.execution_store_admitted(current_setting('t.long')::json), '{"stored": true}', 'a long run is stored running');
select is((select status from flowgres.executions where id = :'long_run'), 'running', 'visible as running');
select is(pg_temp.requests_billed(:'long_run'), 1::bigint, 'its request billed with it');
select is(flowgres.execution_store_admitted(current_setting('t.long')::json), '{"stored": false}', 'stored once');
select is(pg_temp.requests_billed(:'long_run'), 1::bigint, 'and billed once');
select is(flowgres.executions_record(format('[{"execution_id": "%s", "status": "failed", "error": {"error_code": "HTTP_ERROR", "message": "x"}, "admitted": %s}]',
              :'long_run', current_setting('t.long'))::json) -> 'runs' -> 0 -> 'execution' ->> 'status', 'failed',
          'its end is recorded on its row (admitted or not)');
select is(pg_temp.requests_billed(:'long_run'), 1::bigint, 'still billed once');

-- What the daemon already holds is not sent again: the version's workflow, and the run's
-- preparation named by its key (a content hash, so any change to it is a new key).
select ok(not (pg_temp.admit(jsonb_build_object('have_version', :'v1')) -> 'execution' ? 'workflow'),
          'a workflow the daemon holds is not sent again');
select ok(pg_temp.admit(jsonb_build_object('have_version', gen_random_uuid())) -> 'execution' ? 'workflow',
          'another version''s is');
select test.act_as(:'owner');
select flowgres.secret_create(:'ws', 'TOKEN', '{"sealed": "enc:v1:k1:bm9uY2U:Y2lwaGVy", "preview": "…wxyz"}');
select flowgres.app_create(:'ws', 'Keyed', 'keyed') ->> 'id' as keyed \gset
select flowgres.version_create(:'keyed', '1.0.0',
       '{"nodes": [{"id": "s", "type": "start"},
                   {"id": "h", "type": "http", "config": {"url": "https://api.example.com/x", "headers": {"Authorization": "Bearer {{secrets.TOKEN}}"}}},
                   {"id": "o", "type": "output"}],
         "edges": [{"source": "s", "target": "h"}, {"source": "h", "target": "o"}]}') ->> 'id' as kv1 \gset
select flowgres.app_publish(:'keyed', :'kv1', '{"access_mode": "public_anonymous"}');
select test.act_as(null);
select pg_temp.admit('{"app": "keyed"}') -> 'execution' as keyed_run \gset
select is(:'keyed_run'::jsonb -> 'preparation' -> 'secrets' -> 'TOKEN' ->> 'sealed', 'enc:v1:k1:bm9uY2U:Y2lwaGVy',
          'a run is handed its preparation, sealed');
select is(length(:'keyed_run'::jsonb ->> 'preparation_key'), 64, 'named by its key (SHA-256, hex)');
select ok(not (pg_temp.admit(jsonb_build_object('app', 'keyed', 'have_preparation', :'keyed_run'::jsonb ->> 'preparation_key'))
               -> 'execution' ? 'preparation'), 'which the daemon holding it is not sent again');
select test.act_as(:'owner');
select flowgres.secret_rotate(:'ws', 'TOKEN', '{"sealed": "enc:v1:k1:bmV3:bmV3", "preview": "…new1"}');
select test.act_as(null);
select pg_temp.admit(jsonb_build_object('app', 'keyed', 'have_preparation', :'keyed_run'::jsonb ->> 'preparation_key'))
       -> 'execution' as rotated \gset
select isnt(:'rotated'::jsonb ->> 'preparation_key', :'keyed_run'::jsonb ->> 'preparation_key', 'a rotation is a new key');
select is(:'rotated'::jsonb -> 'preparation' -> 'secrets' -> 'TOKEN' ->> 'sealed', 'enc:v1:k1:bmV3:bmV3',
          'sent, with the rotated secret, to a daemon holding the old');

-- Hostile values in the fields the daemon sends: refused by type and size, and a value that
-- names nothing the database knows only means "send it all".
select is(test.error_code_of(format('select flowgres.runtime_admit(%L)', jsonb_build_object('action', 'execute',
          'workspace', :'ws_slug', 'app', 'deferred', 'ip', '203.0.113.7', 'have_version', jsonb_build_object('x', 1)))),
          'VALIDATION_FAILED', 'have_version must be text');
select is(test.error_code_of(format('select flowgres.runtime_admit(%L)', jsonb_build_object('action', 'execute',
          'workspace', :'ws_slug', 'app', 'deferred', 'ip', '203.0.113.7', 'have_preparation', repeat('a', 65)))),
          'VALIDATION_FAILED', 'have_preparation is at most a SHA-256 in hex');
select ok(pg_temp.admit(jsonb_build_object('have_version', $$x' or '1'='1$$)) -> 'execution' ? 'workflow',
          'a have_version that is no version gets the workflow');
select isnt(pg_temp.admit('{"defer": "true"}') -> 'execution' ->> 'deferred', 'true', 'only defer = true defers');
select pg_temp.admit(jsonb_build_object('inputs', jsonb_build_object('name', repeat('x', 40)))) -> 'execution' as wide \gset
select is(flowgres.executions_record(format('[{"execution_id": "%s", "status": "completed", "outputs": {"out": %s}, "admitted": %s}]',
              :'wide'::jsonb ->> 'id', to_jsonb($$'); drop table flowgres.executions; --<script>$$ || repeat('y', 100000)),
              (:'wide'::jsonb - 'workflow')::text)::json) -> 'runs' -> 0 -> 'execution' ->> 'status', 'completed',
          'a large, hostile outcome of a deferred run is recorded');
select is((select outputs ->> 'out' from flowgres.executions where id = (:'wide'::jsonb ->> 'id')::uuid),
          $$'); drop table flowgres.executions; --<script>$$ || repeat('y', 100000), 'verbatim');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%1$s", "status": "completed", "admitted": {"id": "%1$s", "workspace_id": "%2$s", "app_id": "%3$s", "version_id": "%4$s", "inputs": {}, "started_at": "2026-11-29T10:00:00Z", "claimed_by": "%5$s"}}]',
                 gen_random_uuid(), :'ws', :'app', :'v1', repeat('z', 201))))
          -> 'details' -> 0 ->> 'field', 'runs[0].admitted.claimed_by', 'an oversized claimed_by is refused');

-- What a deferred record must bring.
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed", "admitted": {"id": "%s"}}]', gen_random_uuid(), gen_random_uuid())))
          -> 'details' -> 0 ->> 'field', 'runs[0].admitted.id', 'the admitted row is that run''s');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%1$s", "status": "completed", "admitted": {"id": "%1$s", "workspace_id": "%2$s", "app_id": "%3$s", "version_id": "nope", "inputs": {}, "started_at": "2026-11-29T10:00:00Z"}}]',
                 gen_random_uuid(), :'ws', :'app')))
          -> 'details' -> 0 ->> 'field', 'runs[0].admitted.version_id', 'its ids are ids');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%1$s", "status": "completed", "admitted": {"id": "%1$s", "workspace_id": "%2$s", "app_id": "%3$s", "version_id": "%4$s", "inputs": {}, "started_at": "2026-02-30T10:00:00Z"}}]',
                 gen_random_uuid(), :'ws', :'app', :'v1')))
          -> 'details' -> 0 ->> 'field', 'runs[0].admitted.started_at', 'its start is a real time');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%1$s", "status": "cancelled", "admitted": {"id": "%1$s", "workspace_id": "%2$s", "app_id": "%3$s", "version_id": "%4$s", "inputs": {}, "started_at": "2026-11-29T10:00:00Z"}}]',
                 gen_random_uuid(), :'ws', :'app', :'v1')))
          -> 'details' -> 0 ->> 'field', 'runs[0].admitted', 'nobody can have cancelled a run without a row');
-- A model call's fields of the wrong type are the caller's VALIDATION_FAILED, named, not a
-- cast error of the whole record; hostile text in them is stored as text.
select set_config('t.call_record', format('[{"execution_id": "%1$s", "status": "completed", "model_calls": [CALL], "admitted": {"id": "%1$s", "workspace_id": "%2$s", "app_id": "%3$s", "version_id": "%4$s", "inputs": {}, "started_at": "2026-11-29T10:00:00Z"}}]',
              gen_random_uuid(), :'ws', :'app', :'v1'), true);
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          replace(current_setting('t.call_record'), 'CALL', '{"provider": "p1", "model": "m-1", "ok": "maybe"}')))
          -> 'details' -> 0 ->> 'field', 'runs[0].model_calls[0].ok', 'ok is true or false');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          replace(current_setting('t.call_record'), 'CALL', '{"provider": "p1", "model": "m-1", "usage_reported": 1}')))
          -> 'details' -> 0 ->> 'field', 'runs[0].model_calls[0].usage_reported', 'usage_reported is true or false');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          replace(current_setting('t.call_record'), 'CALL', '{"provider": "p1", "model": "m-1", "node_id": {"x": 1}}')))
          -> 'details' -> 0 ->> 'field', 'runs[0].model_calls[0].node_id', 'node_id is text');
select flowgres.executions_record(replace(current_setting('t.call_record'), 'CALL',
       json_build_object('provider', 'p1', 'model', 'm-1', 'ok', false, 'node_id', $$x'); drop table flowgres.model_usage; --$$ || repeat('n', 300),
                         'error_code', '<script>alert(1)</script>')::text)::json) ->> 'runs' as hostile_call \gset
select is((select left(node_id, 40) || '|' || length(node_id) || '|' || error_code from flowgres.model_usage
           where execution_id = (:'hostile_call'::jsonb -> 0 ->> 'execution_id')::uuid),
          $$x'); drop table flowgres.model_usage; --|200|<script>alert(1)</script>$$, 'hostile text kept as text, node_id cut at 200');
-- Retention: a deferred run's trail loses its node events and keeps its execution_finished
-- (its stream still tells how it ended); once only that is left it is not prunable again.
update flowgres.executions set finished_at = now() - interval '40 days' where id in (:'rich', :'run');
update flowgres.execution_trails set created_at = now() - interval '40 days' where execution_id in (:'rich', :'run');
select is(flowgres.execution_events_prune(30, 1000) >= 1, true, 'the old trail is pruned');
select is((select jsonb_array_length(events) || '/' || finished_sequence from flowgres.execution_trails where execution_id = :'rich'),
          '0/3', 'down to its execution_finished');
select is((select jsonb_array_length(node_logs) from flowgres.execution_trails where execution_id = :'rich'), 1,
          'and its node logs (they stay, as node_logs rows do)');
select is((select count(*) from flowgres.execution_trails
           where execution_id in (:'rich', :'run') and events @? '$[*] ? (@.event != "execution_finished")'), 0::bigint,
          'neither trail is prunable any more (a run with no node event never was)');
select is((select e ->> 'id' || ' ' || (e ->> 'event') from jsonb_array_elements(flowgres.execution_events(:'rich') -> 'events') e),
          '3 execution_finished', 'read back with its id past the gap');
-- A trail written by 0.27 or 0.28 kept its execution_finished as the last entry of its events
-- array: it reads the same, and retention keeps that entry.
select flowgres.execution_events(:'written') -> 'events' as written_events \gset
update flowgres.execution_trails
set events = events || jsonb_build_array(jsonb_build_object('sequence', finished_sequence, 'event', 'execution_finished',
                                                            'data', finished_data)),
    finished_sequence = null, finished_data = null
where execution_id = :'written';
select is(flowgres.execution_events(:'written') -> 'events', :'written_events'::jsonb, 'an older trail reads the same');
update flowgres.executions set finished_at = now() - interval '40 days' where id = :'written';
update flowgres.execution_trails set created_at = now() - interval '40 days' where execution_id = :'written';
select flowgres.execution_events_prune(30, 1000);
select is((select string_agg(e ->> 'event', ',') from jsonb_array_elements(flowgres.execution_events(:'written') -> 'events') e),
          'execution_finished', 'and retention keeps its execution_finished');
-- The daemon's door: the same admission over json, its answer the text it was built as.
select flowgres.runtime_admit_json(json_build_object('action', 'execute', 'workspace', :'ws_slug', 'app', 'deferred',
       'ip', '203.0.113.9', 'inputs', json_build_object('name', 'json'), 'defer', true)) as over_json \gset
select is(json_typeof(:'over_json'::json), 'object', 'runtime_admit_json answers json');
select is(:'over_json'::jsonb -> 'execution' ->> 'deferred', 'true', 'deciding as runtime_admit does');
select test.act_as(:'owner');
select is(test.error_code_of($$select flowgres.runtime_admit_json('{"action": "entry", "workspace": "x", "ip": "1.2.3.4"}')$$),
          'PERMISSION_DENIED', 'and only for the service');
select test.act_as(null);
select is(test.error_code_of($$select flowgres.execution_store_admitted('{"id": "x"}')$$), 'VALIDATION_FAILED',
          'execution_store_admitted checks what it is given');
select test.act_as(:'owner');
select is(test.error_code_of(format('select flowgres.execution_store_admitted(%L)', current_setting('t.long'))), 'PERMISSION_DENIED',
          'only the service stores runs');
select test.act_as(null);

select * from finish();
rollback;
