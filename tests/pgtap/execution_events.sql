-- Execution events: the executor's batches, execution_finished on every way an execution
-- ends, reading after an id, and who may append or read them.
begin;
select plan(20);

select test.new_user('watcher@example.com') as watcher \gset
select test.new_user('outsider@example.com') as outsider \gset
select test.home_of(:'watcher') as ws \gset
select test.act_as(:'watcher');
select flowgres.app_create(:'ws', 'Watched') ->> 'id' as app \gset
select flowgres.version_create(:'app', '1.0.0', test.workflow()) ->> 'id' as v1 \gset

select flowgres.execution_create(:'app') ->> 'id' as e1 \gset
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
select flowgres.execution_create(:'app') ->> 'id' as e2 \gset
select flowgres.execution_cancel(:'e2');
select is(flowgres.execution_events(:'e2') -> 'events' -> 0 ->> 'event', 'execution_finished', 'a cancelled pending execution has its one event');

-- bad input
select is(test.error_code_of(format('select flowgres.execution_events_append(%L, %L)', :'e1', '[{"sequence": 0, "event": "node_started", "data": {}}]')),
          'VALIDATION_FAILED', 'sequences start at 1');
select is(test.error_code_of(format('select flowgres.execution_events_append(%L, %L)', :'e1', '[{"sequence": 9, "event": "execution_finished", "data": {}}]')),
          'VALIDATION_FAILED', 'execution_finished cannot be forged');
select is(test.error_code_of(format('select flowgres.execution_events(%L, -1)', :'e1')), 'VALIDATION_FAILED', 'a negative id is refused');

select test.act_as(:'outsider');
select is(test.error_code_of(format('select flowgres.execution_events(%L)', :'e1')), 'EXECUTION_NOT_FOUND', 'a stranger cannot read the events');

select * from finish();
rollback;
