-- executions_record: many finished runs recorded in one call, each run answered on its own.
begin;
select plan(68);

select test.new_user('batch@example.com') as owner \gset
select test.home_of(:'owner') as ws \gset
select test.act_as(:'owner');
select flowgres.app_create(:'ws', 'Batched') ->> 'id' as app \gset
select flowgres.version_create(:'app', '1.0.0', test.workflow()) ->> 'id' as v1 \gset
select flowgres.execution_create(:'app', '{}') ->> 'id' as done \gset
select flowgres.execution_create(:'app', '{}') ->> 'id' as broken \gset
select flowgres.execution_create(:'app', '{}') ->> 'id' as cancelled \gset
select flowgres.execution_create(:'app', '{}') ->> 'id' as pending \gset
select flowgres.execution_create(:'app', '{}') ->> 'id' as over \gset
select flowgres.execution_create(:'app', '{}') ->> 'id' as big \gset
select flowgres.execution_create(:'app', '{}') ->> 'id' as folded \gset
select flowgres.execution_create(:'app', '{}') ->> 'id' as folded_cancel \gset
select flowgres.execution_create(:'app', '{}') ->> 'id' as twin_rows \gset
select flowgres.execution_create(:'app', '{}') ->> 'id' as twin_trail \gset
select flowgres.execution_create(:'app', '{}') ->> 'id' as folded_max \gset
select flowgres.execution_create(:'app', '{"who": "Ada"}') ->> 'id' as seen_done \gset
select flowgres.execution_create(:'app', '{}') ->> 'id' as seen_failed \gset
select flowgres.execution_create(:'app', '{}') ->> 'id' as seen_cancelled \gset

-- Only the executor (the service) records what runs did.
select is(test.error_code_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed", "outputs": {"forged": true}}]', :'done'))),
          'PERMISSION_DENIED', 'a member cannot record a run''s outcome');
select test.act_as(null);
select flowgres.execution_start(:'done', 'd1'), flowgres.execution_start(:'broken', 'd1'),
       flowgres.execution_start(:'cancelled', 'd1'), flowgres.execution_start(:'over', 'd1'),
       flowgres.execution_start(:'big', 'd1'), flowgres.execution_start(:'folded', 'd1'),
       flowgres.execution_start(:'folded_cancel', 'd1'), flowgres.execution_start(:'twin_rows', 'd1'),
       flowgres.execution_start(:'twin_trail', 'd1'), flowgres.execution_start(:'folded_max', 'd1'),
       flowgres.execution_start(:'seen_done', 'd1'), flowgres.execution_start(:'seen_failed', 'd1'),
       flowgres.execution_start(:'seen_cancelled', 'd1');
select flowgres.execution_finish(:'over', 'completed', '{}');
select test.act_as(:'owner');
select flowgres.execution_cancel(:'cancelled');
select flowgres.execution_cancel(:'folded_cancel');
select flowgres.execution_cancel(:'seen_cancelled');
select test.act_as(null);

-- Malformed batches are refused whole, naming the run and the field.
select is(test.error_code_of($$select flowgres.executions_record('[]')$$), 'VALIDATION_FAILED', 'an empty batch is refused');
select is(test.error_code_of($$select flowgres.executions_record('{"runs": 1}')$$), 'VALIDATION_FAILED', 'so is a batch that is not an array');
select is(test.error_code_of(format('select flowgres.executions_record(%L)',
          (select jsonb_agg(jsonb_build_object('execution_id', gen_random_uuid(), 'status', 'completed')) from generate_series(1, 201)))),
          'VALIDATION_FAILED', 'and one of more than 200 runs');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed"}, {"execution_id": "%s", "status": "failed"}]', :'done', :'broken')))
          -> 'details' -> 0 ->> 'field', 'runs[1].error', 'a failed run needs its error');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed", "events": [{"sequence": 0, "event": "node_started", "data": {}}]}]', :'done')))
          -> 'details' -> 0 ->> 'field', 'runs[0].events[0].sequence', 'events are checked');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed", "logs": [{"node_id": "a", "node_type": "x", "status": "done"}]}]', :'done')))
          -> 'details' -> 0 ->> 'field', 'runs[0].logs[0].status', 'node logs are checked');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed"}, {"execution_id": "%s", "status": "completed"}]', :'done', :'done')))
          -> 'details' -> 0 ->> 'field', 'runs[1].execution_id', 'a run appears once in a batch');
select is(test.error_code_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed", "prompt_tokens": -1}]', :'done'))),
          'VALIDATION_FAILED', 'token counts are not negative');
select is((select status from flowgres.executions where id = :'done'), 'running', 'a refused batch records nothing');

-- Hostile input: oversized lists, forged event kinds, injection in ids, deep nesting, huge text.
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          jsonb_build_array(jsonb_build_object('execution_id', :'done', 'status', 'completed', 'events',
              (select jsonb_agg(jsonb_build_object('sequence', i, 'event', 'node_started', 'data', '{}'::jsonb))
               from generate_series(1, 2001) i)))))
          -> 'details' -> 0 ->> 'field', 'runs[0].events', 'more than 2000 events a run are refused');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          jsonb_build_array(jsonb_build_object('execution_id', :'done', 'status', 'completed', 'logs',
              (select jsonb_agg(jsonb_build_object('node_id', 'n', 'node_type', 't', 'status', 'completed'))
               from generate_series(1, 1001) i)))))
          -> 'details' -> 0 ->> 'field', 'runs[0].logs', 'more than 1000 node logs a run are refused');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed", "events": [{"sequence": 1, "event": "execution_finished", "data": {}}]}]', :'done')))
          -> 'details' -> 0 ->> 'field', 'runs[0].events[0].event', 'execution_finished cannot be forged');
select is(test.error_detail_of($$select flowgres.executions_record('[{"execution_id": "x''; drop table flowgres.executions; --", "status": "completed"}]')$$)
          -> 'details' -> 0 ->> 'field', 'runs[0].execution_id', 'an id is a uuid or refused');
select is(test.error_code_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed", "outputs": %s1%s}]', :'done', repeat('[', 3000), repeat(']', 3000)))),
          'BAD_REQUEST', 'nesting past what jansson parses is refused, not a crash');
-- The batch is parsed as jsonb once; what jansson (flowgresd's reader) could not read back is
-- refused before it is stored, and the deepest nesting jansson reads is stored.
select is(test.error_code_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed", "outputs": {"n": 99999999999999999999}}]', :'done'))),
          'BAD_REQUEST', 'an integer past 64 bits is refused');
select is(test.error_code_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed", "outputs": {"n": -1e400}}]', :'done'))),
          'BAD_REQUEST', 'so is a number past a double');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed", "events": [{"sequence": 1.0, "event": "node_started", "data": {}}]}]', :'done')))
          -> 'details' -> 0 ->> 'field', 'runs[0].events[0].sequence', 'a sequence with a fraction is no integer');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed", "logs": [{"node_id": "a", "node_type": "x", "status": "completed", "attempt": 2147483648}]}]', :'done')))
          -> 'details' -> 0 ->> 'field', 'runs[0].logs[0].attempt', 'an attempt past an integer is refused');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed", "view": "none", "outputs": {"s": "x\"%s"}}]', :'done', repeat('[{', 3000))))
          -> 'details' -> 0 ->> 'field', 'runs[0].view', 'brackets inside a string, after an escaped quote, are no nesting');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed", "status": "finished"}]', :'done')))
          -> 'details' -> 0 ->> 'field', 'runs[0].status', 'a key given twice keeps its last value');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed", "view": "%s"}]', :'done', repeat('x', 100000))))
          -> 'details' -> 0 ->> 'field', 'runs[0].view', 'an unknown view is refused');
select is(flowgres.executions_record(format('[{"execution_id": "%s", "status": "completed", "outputs": {"big": "%s"}}]',
                                             :'big', repeat('<script>', 125000))::json) #>> '{runs,0,execution,status}',
          'completed', 'a megabyte of markup is recorded');
select is((select length(outputs ->> 'big') from flowgres.executions where id = :'big'), 1000000, 'as text, whole');

-- One batch: a completed run with events, logs and tokens; a failed one; a cancelled one's
-- logs; one not started; one already finished; one that does not exist.
select flowgres.executions_record(format($$[
  {"execution_id": "%1$s", "status": "completed", "outputs": {"out": "hi"}, "prompt_tokens": 7, "completion_tokens": 5,
   "events": [{"sequence": 1, "event": "node_started", "data": {"node_id": "s"}}, {"sequence": 2, "event": "node_finished", "data": {"node_id": "s"}}],
   "logs": [{"node_id": "s", "node_type": "start", "status": "completed"}, {"node_id": "o", "node_type": "output", "status": "completed"}],
   "model_calls": [{"node_id": "m", "provider": "p1", "model": "m-1", "prompt_tokens": 7, "completion_tokens": 5, "ok": true}],
   "view": "full"},
  {"execution_id": "%2$s", "status": "failed", "error": {"error_code": "HTTP_FAILED", "message": "no"}},
  {"execution_id": "%3$s", "status": "cancelled", "logs": [{"node_id": "s", "node_type": "start", "status": "completed"}]},
  {"execution_id": "%4$s", "status": "completed", "outputs": {}},
  {"execution_id": "%5$s", "status": "completed", "outputs": {}},
  {"execution_id": "%6$s", "status": "completed", "outputs": {}}]$$,
  :'done', :'broken', :'cancelled', :'pending', :'over', gen_random_uuid())::json) as recorded \gset

select is(jsonb_array_length(:'recorded'::jsonb -> 'runs'), 6, 'every run is answered, in order');
select is(:'recorded'::jsonb #>> '{runs,0,execution,status}', 'completed', 'the completed run is recorded');
select is(:'recorded'::jsonb #> '{runs,0,execution,node_logs}' -> 1 ->> 'node_id', 'o', 'with its node logs in the full view');
select is(:'recorded'::jsonb #>> '{runs,1,execution,error,error_code}', 'HTTP_FAILED', 'the failed run with its error');
select ok(:'recorded'::jsonb #> '{runs,1,execution}' ? 'node_logs' = false, 'the row view has no node logs');
select is(:'recorded'::jsonb #>> '{runs,1,execution,app_id}', :'app', 'it is the row, as recorded');
select is(:'recorded'::jsonb #>> '{runs,2,execution,status}', 'cancelled', 'a cancelled run stays cancelled');
select is(:'recorded'::jsonb #>> '{runs,3,error,error_code}', 'STATE_CONFLICT', 'a run not started is its own conflict');
select is(:'recorded'::jsonb #>> '{runs,4,error,error_code}', 'STATE_CONFLICT', 'and so is one already finished');
select is(:'recorded'::jsonb #>> '{runs,5,error,error_code}', 'EXECUTION_NOT_FOUND', 'an unknown one is not found');

select is((select string_agg(event, ',' order by sequence) from flowgres.execution_events where execution_id = :'done'),
          'node_started,node_finished,execution_finished', 'events land before execution_finished');
select is((select count(*)::int from flowgres.node_logs where execution_id in (:'done', :'cancelled')), 3,
          'node logs of the finished and the cancelled run are stored');
select is((select sum(quantity)::int from flowgres.usage_events where execution_id = :'done' and dimension = 'tokens'), 12,
          'tokens are metered');
select is((select model || ' ' || prompt_tokens from flowgres.model_usage where execution_id = :'done'), 'm-1 7',
          'model calls are recorded');
select is((select status from flowgres.executions where id = :'over'), 'completed', 'the finished run is unchanged');

-- Folded: a run that stored nothing while it ran keeps its events and logs as one trail row.
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed", "fold": "yes"}]', :'folded')))
          -> 'details' -> 0 ->> 'field', 'runs[0].fold', 'fold is true or false');
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed", "fold": true, "logs": [{"node_id": "s", "node_type": "start", "status": "completed", "attempt": 0}]}]', :'folded')))
          -> 'details' -> 0 ->> 'field', 'runs[0].logs[0].attempt', 'what node_logs'' constraints say is checked for trails too');
select flowgres.executions_record(format($$[
  {"execution_id": "%1$s", "status": "completed", "outputs": {"out": "hi"}, "fold": true, "view": "full",
   "events": [{"sequence": 1, "event": "node_started", "data": {"node_id": "s"}}, {"sequence": 2, "event": "node_finished", "data": {"node_id": "s"}},
              {"sequence": 3, "event": "node_started", "data": {"node_id": "o"}}],
   "logs": [{"node_id": "s", "node_type": "start", "status": "completed", "duration_ms": 3, "output": {"a": 1}},
            {"node_id": "o", "node_type": "output", "status": "completed", "input": null, "variables": ["x"]}]},
  {"execution_id": "%2$s", "status": "cancelled", "fold": true, "logs": [{"node_id": "s", "node_type": "start", "status": "completed"}]}]$$,
  :'folded', :'folded_cancel')::json) as folded_record \gset
select is((select count(*)::int from flowgres.node_logs where execution_id = :'folded'), 0, 'a folded run has no node_logs rows');
select is((select count(*)::int from flowgres.execution_events where execution_id = :'folded'), 0,
          'no event rows: not even execution_finished');
select is((select jsonb_array_length(events) || '/' || finished_sequence || '/' || (finished_data -> 'outputs')::text
           from flowgres.execution_trails where execution_id = :'folded'),
          '3/4/{"out": "hi"}', 'the trail keeps its execution_finished, numbered after its events');
select is((select jsonb_agg(l - 'created_at') from jsonb_array_elements(:'folded_record'::jsonb #> '{runs,0,execution,node_logs}') l),
          jsonb_build_array(
              jsonb_build_object('execution_id', :'folded', 'sequence', 0, 'node_id', 's', 'node_type', 'start', 'status', 'completed',
                                 'attempt', 1, 'started_at', null, 'finished_at', null, 'duration_ms', 3, 'input', null,
                                 'output', '{"a": 1}'::jsonb, 'error', null, 'variables', null),
              jsonb_build_object('execution_id', :'folded', 'sequence', 1, 'node_id', 'o', 'node_type', 'output', 'status', 'completed',
                                 'attempt', 1, 'started_at', null, 'finished_at', null, 'duration_ms', null, 'input', null,
                                 'output', null, 'error', null, 'variables', '["x"]'::jsonb)),
          'its node logs read back as node_logs rows would (created_at aside)');
select is((select count(*)::int from flowgres.node_logs where execution_id = :'folded_cancel'), 1,
          'a cancelled run''s logs go to rows: its events may be streaming from the table');
select is((select count(*)::int from flowgres.execution_trails where execution_id = :'folded_cancel'), 0, 'no trail for it');
select is((flowgres.execution_events(:'folded', 0, 2) -> 'events') @> '[{"id": 1}, {"id": 2}]'
          and jsonb_array_length(flowgres.execution_events(:'folded', 0, 2) -> 'events') = 2, true, 'events page from the trail');
select is(flowgres.execution_events(:'folded', 0, 2) -> 'complete', 'false', 'a page that leaves some is not complete');
select is((select string_agg(e ->> 'event', ',') from jsonb_array_elements(flowgres.execution_events(:'folded', 2, 10) -> 'events') e),
          'node_started,execution_finished', 'the rest of the trail, execution_finished last');
select is(flowgres.execution_events(:'folded', 2, 10) -> 'complete', 'true', 'and then it is complete');
select is(flowgres.node_logs_append(:'folded', '[{"node_id": "late", "node_type": "delay", "status": "skipped"}]'), 1,
          'a late log appends');
select is((select sequence from flowgres.node_logs where execution_id = :'folded'), 2, 'numbered after the trail''s');

-- The same logs read back the same from rows and from a trail (timestamps as the reader's
-- session shows them, numbers, JSON, nulls); a date PostgreSQL would refuse is refused first.
select is(test.error_detail_of(format('select flowgres.executions_record(%L)',
          format('[{"execution_id": "%s", "status": "completed", "fold": true, "logs": [{"node_id": "s", "node_type": "start", "status": "completed", "started_at": "2026-02-30T00:00:00Z"}]}]', :'twin_trail')))
          -> 'details' -> 0 ->> 'field', 'runs[0].logs[0].started_at', 'a started_at PostgreSQL cannot read is refused');
select flowgres.executions_record(format($$[
  {"execution_id": "%1$s", "status": "completed", "outputs": {}, "logs": %3$s},
  {"execution_id": "%2$s", "status": "completed", "outputs": {}, "fold": true, "logs": %3$s}]$$,
  :'twin_rows', :'twin_trail', '[{"node_id": "s", "node_type": "start", "status": "completed", "attempt": 2,
     "started_at": "2026-11-23T10:00:00.5Z", "finished_at": "2026-11-23 11:00:00+01:00", "duration_ms": 0,
     "input": {"a": [1, "x", null]}, "output": null, "error": {"message": "<b>"}, "variables": []},
    {"node_id": "o", "node_type": "output", "status": "skipped"}]')::json);
select is((select jsonb_agg(l - 'execution_id' - 'created_at') from jsonb_array_elements(flowgres.execution_get(:'twin_trail') -> 'node_logs') l),
          (select jsonb_agg(l - 'execution_id' - 'created_at') from jsonb_array_elements(flowgres.execution_get(:'twin_rows') -> 'node_logs') l),
          'a trail''s node logs read as the same logs stored as rows do');

-- The largest trail a run may bring: 2,000 events and 1,000 node logs, markup and SQL in them.
select is(flowgres.executions_record(jsonb_build_array(jsonb_build_object(
          'execution_id', :'folded_max', 'status', 'completed', 'outputs', '{}'::jsonb, 'fold', true,
          'events', (select jsonb_agg(jsonb_build_object('sequence', i, 'event', 'node_delta',
                                                         'data', jsonb_build_object('delta', repeat('<script>x</script>', 50))))
                     from generate_series(1, 2000) i),
          'logs', (select jsonb_agg(jsonb_build_object('node_id', 'n' || i, 'node_type', 'transform', 'status', 'completed',
                                                       'output', jsonb_build_object('sql', $$'); drop table flowgres.executions; --$$)))
                   from generate_series(1, 1000) i)))::json) #>> '{runs,0,execution,status}', 'completed',
          'the largest trail is recorded');
select is((select jsonb_array_length(events) + jsonb_array_length(node_logs) from flowgres.execution_trails
           where execution_id = :'folded_max'), 3000, 'whole, in one row');
select is((select (e ->> 'id')::int from jsonb_array_elements(flowgres.execution_events(:'folded_max', 1999, 10) -> 'events') e
           where e ->> 'event' = 'execution_finished'), 2001, 'and read back in pages, execution_finished after it');
select is((select finished_sequence from flowgres.execution_trails where execution_id = :'folded_max'), 2001,
          'its execution_finished numbered 2,001');

-- The visitor's view: what the public runtime answers, and nothing else of the row.
select flowgres.executions_record(format($$[
  {"execution_id": "%1$s", "status": "completed", "outputs": {"out": "<b>hi</b>", "n": 1.50}, "fold": true, "view": "visitor",
   "logs": [{"node_id": "s", "node_type": "start", "status": "completed"}]},
  {"execution_id": "%2$s", "status": "failed", "error": {"error_code": "HTTP_FAILED", "message": "no"}, "view": "visitor"},
  {"execution_id": "%3$s", "status": "cancelled", "view": "visitor", "logs": [{"node_id": "s", "node_type": "start", "status": "completed"}]}]$$,
  :'seen_done', :'seen_failed', :'seen_cancelled')::json) as seen \gset
select is(:'seen'::jsonb #> '{runs,0,execution}',
          jsonb_build_object('execution_id', :'seen_done', 'status', 'completed', 'outputs', '{"out": "<b>hi</b>", "n": 1.50}'::jsonb,
                             'error', null),
          'a visitor''s view of a completed run: its id, status and outputs as stored');
select is((select outputs from flowgres.executions where id = :'seen_done'), '{"out": "<b>hi</b>", "n": 1.50}'::jsonb,
          'the outputs it shows are the row''s');
select is(:'seen'::jsonb #> '{runs,1,execution}',
          jsonb_build_object('execution_id', :'seen_failed', 'status', 'failed', 'outputs', null,
                             'error', '{"error_code": "HTTP_FAILED", "message": "no"}'::jsonb),
          'of a failed run: its error');
select is(:'seen'::jsonb #> '{runs,2,execution}',
          jsonb_build_object('execution_id', :'seen_cancelled', 'status', 'cancelled', 'outputs', null, 'error', null),
          'of a run cancelled meanwhile: cancelled');
select is((select count(*)::int from flowgres.node_logs where execution_id = :'seen_cancelled'), 1, 'its logs are stored');
select is((select status from flowgres.executions where id = :'seen_failed'), 'failed', 'the failed run is recorded');
select is((select count(*)::int from flowgres.execution_trails where execution_id = :'seen_done' and finished_sequence = 1), 1,
          'the completed run''s trail holds its execution_finished');

-- The trigger steps aside only inside executions_record's own statement.
select is(flowgres.executions_recording(), false, 'outside executions_record the trigger writes execution_finished');
select is((select count(*)::int from flowgres.execution_events where event = 'execution_finished'
           and execution_id in (:'done', :'broken', :'folded', :'folded_cancel', :'cancelled', :'twin_rows', :'twin_trail',
                               :'folded_max'))
          + (select count(*)::int from flowgres.execution_trails t where t.finished_sequence is not null
               and t.execution_id in (:'done', :'broken', :'folded', :'folded_cancel', :'cancelled', :'twin_rows',
                                      :'twin_trail', :'folded_max')), 8,
          'one execution_finished for each run ended, by the batch (a row, or in its trail) or by the trigger (cancel)');

select * from finish();
rollback;
