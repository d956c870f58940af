-- Execution events: the executor's batches, execution_finished on every way an execution
-- ends, reading after an id, and who may append or read them.
begin;
select plan(29);

select test.new_user('watcher@example.com') as watcher \gset
select test.new_user('outsider@example.com') as outsider \gset
select test.home_of(:'watcher') as ws \gset
select test.act_as(:'watcher');
select flowgres.app_create(:'ws', 'Watched') ->> 'id' as app \gset
select flowgres.version_create(:'app', '1.0.0', test.workflow()) ->> 'id' as v1 \gset

select flowgres.execution_create(:'app') ->> 'id' as e1 \gset
select flowgres.execution_create(:'app') ->> 'id' as e2 \gset
select flowgres.execution_create(:'app') ->> 'id' as e3 \gset
select flowgres.execution_create(:'app') ->> 'id' as e4 \gset
select test.act_as(null);  -- the executor's functions are the service's (the daemon acts as it)
select is(flowgres.execution_events_append(:'e1', '[{"sequence": 1, "event": "node_started", "data": {"node_id": "start"}}]'), 0,
          'a pending execution takes no events');
select flowgres.execution_start(:'e1');
select is(flowgres.execution_events_append(:'e1', '[{"sequence": 1, "event": "node_started", "data": {"node_id": "start"}},
                                                    {"sequence": 2, "event": "node_finished", "data": {"node_id": "start", "status": "completed"}}]'), 2,
          'a running one takes a batch');
select is(flowgres.execution_events_append(:'e1', '[{"sequence": 2, "event": "node_finished", "data": {"node_id": "start", "status": "completed"}},
                                                    {"sequence": 3, "event": "node_started", "data": {"node_id": "out"}}]'), 1,
          'events already stored are skipped (a batch sent twice lands once)');
select is(jsonb_array_length(flowgres.execution_events(:'e1') -> 'events'), 3, 'all events read back');
select is(flowgres.execution_events(:'e1') ->> 'complete', 'false', 'not complete while running');
select is(flowgres.execution_events(:'e1', 2) -> 'events' -> 0 ->> 'id', '3', 'reading after an id starts past it');
select is(jsonb_array_length(flowgres.execution_events(:'e1', 0, 2) -> 'events'), 2, 'and reads at most max_events');
select flowgres.execution_finish(:'e1', 'completed', '{"out": {"x": 1}}');
select is(flowgres.execution_events(:'e1', 3) -> 'events' -> 0 ->> 'event', 'execution_finished', 'finishing appends execution_finished');
select is(flowgres.execution_events(:'e1', 3) -> 'events' -> 0 ->> 'id', '4', 'after the last event');
select is(flowgres.execution_events(:'e1', 3) -> 'events' -> 0 -> 'data' ->> 'status', 'completed', 'with the status');
select is(flowgres.execution_events(:'e1', 3) -> 'events' -> 0 -> 'data' -> 'outputs', '{"out": {"x": 1}}'::jsonb, 'and the outputs');
select is(flowgres.execution_events(:'e1') ->> 'complete', 'true', 'the stream is then complete');
select is(flowgres.execution_events(:'e1', 4) ->> 'complete', 'true', 'also for a reader already past the last event');
select is(flowgres.execution_events(:'e1', 0, 2) ->> 'complete', 'false', 'but not for a page with more after it');
select is(flowgres.execution_events_append(:'e1', '[{"sequence": 5, "event": "node_started", "data": {}}]'), 0,
          'an execution that has ended takes no more events');

-- cancel (pending or running) ends the stream too
select test.act_as(:'watcher');
select flowgres.execution_cancel(:'e2');
select test.act_as(null);
select is(flowgres.execution_events(:'e2') -> 'events' -> 0 ->> 'event', 'execution_finished', 'a cancelled pending execution has its one event');

-- bad input
select is(test.error_code_of(format('select flowgres.execution_events_append(%L, %L)', :'e1', '[{"sequence": 0, "event": "node_started", "data": {}}]')),
          'VALIDATION_FAILED', 'sequences start at 1');
select is(test.error_code_of(format('select flowgres.execution_events_append(%L, %L)', :'e1', '[{"sequence": 9, "event": "execution_finished", "data": {}}]')),
          'VALIDATION_FAILED', 'execution_finished cannot be forged');
select is(test.error_code_of(format('select flowgres.execution_events(%L, -1)', :'e1')), 'VALIDATION_FAILED', 'a negative id is refused');

select test.act_as(:'outsider');
select is(test.error_code_of(format('select flowgres.execution_events(%L)', :'e1')), 'EXECUTION_NOT_FOUND', 'a stranger cannot read the events');

-- retention: node events of executions that ended long ago go; how each run ended stays
select test.act_as(null);
select flowgres.execution_start(:'e3');
select flowgres.execution_events_append(:'e3', '[{"sequence": 1, "event": "node_started", "data": {"node_id": "start"}}]');
select flowgres.execution_finish(:'e3', 'completed', '{"out": 1}');
select flowgres.execution_start(:'e4');
select flowgres.execution_events_append(:'e4', '[{"sequence": 1, "event": "node_started", "data": {"node_id": "start"}}]');
select test.act_as(null);
-- e1 and e3 ended 40 days ago; e4 still runs, with an event as old
update flowgres.executions set finished_at = now() - interval '40 days' where id in (:'e1', :'e3');
update flowgres.execution_events set created_at = now() - interval '40 days' where execution_id in (:'e1', :'e3', :'e4');
select is(flowgres.execution_events_prune(30, 2), 2, 'a prune removes at most a batch');
select is(flowgres.execution_events_prune(30), 2, 'and the rest on the next call');
select is(flowgres.execution_events_prune(30), 0, 'then nothing is left to remove');
select is((select array_agg(event order by sequence) from flowgres.execution_events where execution_id in (:'e1', :'e3')),
          array['execution_finished', 'execution_finished'], 'the execution_finished of each stays');
select is((select count(*) from flowgres.execution_events where execution_id = :'e4'), 1::bigint, 'a running execution keeps its events');
select is(flowgres.execution_events_prune(50), 0, 'nothing younger than the retention goes');
select is(test.error_code_of('select flowgres.execution_events_prune(0)'), 'VALIDATION_FAILED', 'retention is at least a day');
select is(test.error_code_of('select flowgres.execution_events_prune(30, 0)'), 'VALIDATION_FAILED', 'batches are at least one row');
select ok(not has_function_privilege('flowgres_user', 'flowgres.execution_events_prune(integer, integer)', 'execute'),
          'users cannot prune');

select * from finish();
rollback;
