-- Executions: the state machine through the functions, heartbeats, node logs, reading and
-- listing, and who may see them.
begin;
select plan(36);

select test.new_user('runner@example.com') as runner \gset
select test.new_user('stranger@example.com') as stranger \gset
select test.home_of(:'runner') as ws \gset
select test.act_as(:'runner');
select flowgres.app_create(:'ws', 'Runnable') ->> 'id' as app \gset
select is(test.error_code_of(format('select flowgres.execution_create(%L)', :'app')), 'VERSION_NOT_FOUND', 'an app without versions cannot run');
select flowgres.version_create(:'app', '1.0.0', test.workflow()) ->> 'id' as v1 \gset

-- pending → running → completed
select flowgres.execution_create(:'app', '{"name": "Ada"}') as created \gset
select is(:'created'::jsonb ->> 'status', 'pending', 'a new execution is pending');
select is(:'created'::jsonb ->> 'version_id', :'v1', 'of the newest version when none is current');
select (:'created'::jsonb ->> 'id') as e1 \gset
-- What a run did is the executor's to say: a member with app_edit cannot forge it.
select is(test.error_code_of(format('select flowgres.execution_start(%L)', :'e1')), 'PERMISSION_DENIED', 'a member cannot start a run');
select is(test.error_code_of(format('select flowgres.execution_finish(%L, %L, %L)', :'e1', 'completed', '{"forged": true}')),
          'PERMISSION_DENIED', 'nor finish one with outputs of their choosing');
select is(test.error_code_of(format('select flowgres.execution_heartbeat(%L)', :'e1')), 'PERMISSION_DENIED', 'nor beat for it');
select is(test.error_code_of(format('select flowgres.node_logs_append(%L, %L)', :'e1', '[{"node_id": "start", "node_type": "start", "status": "completed"}]')),
          'PERMISSION_DENIED', 'nor log for it');
select is(test.error_code_of(format('select flowgres.execution_events_append(%L, %L)', :'e1', '[{"sequence": 1, "event": "node_started", "data": {}}]')),
          'PERMISSION_DENIED', 'nor stream its events');
select test.act_as(null);  -- the service from here, as the daemon acts
select is(test.error_code_of(format('select flowgres.node_logs_append(%L, %L)', :'e1', '[{"node_id": "start", "node_type": "start", "status": "completed"}]')),
          'STATE_CONFLICT', 'a pending execution has nothing to log');
select is(flowgres.execution_start(:'e1', 'daemon-1') ->> 'status', 'running', 'pending → running');
select is((select claimed_by from flowgres.executions where id = :'e1'), 'daemon-1', 'and records who runs it');
select is(flowgres.execution_heartbeat(:'e1') ->> 'status', 'running', 'a running execution takes heartbeats');
select is(flowgres.node_logs_append(:'e1', '[{"node_id": "start", "node_type": "start", "status": "completed", "duration_ms": 1},
                                             {"node_id": "out", "node_type": "output", "status": "completed", "output": {"x": 1}}]'), 2,
          'node logs are appended in one batch');
select is(flowgres.node_logs_append(:'e1', '[{"node_id": "late", "node_type": "delay", "status": "skipped", "output": null, "variables": null}]'), 1,
          'and in later batches, JSON nulls stored as NULL');
select is(flowgres.execution_finish(:'e1', 'completed', '{"x": 1}') ->> 'status', 'completed', 'running → completed');
select test.act_as(:'runner');
select is(flowgres.execution_get(:'e1') -> 'node_logs' -> 2 ->> 'sequence', '2', 'node logs keep their order across batches');
select is(flowgres.execution_get(:'e1') -> 'outputs', '{"x": 1}'::jsonb, 'outputs are kept');

-- finished executions never move again
select is(test.error_code_of(format('select flowgres.execution_cancel(%L)', :'e1')), 'STATE_CONFLICT', 'completed → cancelled is refused');
select test.act_as(null);
select is(test.error_code_of(format('select flowgres.execution_start(%L)', :'e1')), 'STATE_CONFLICT', 'completed → running is refused');
select is(test.error_code_of(format('select flowgres.execution_finish(%L, %L, null, %L)', :'e1', 'failed', '{"code": "X"}')), 'STATE_CONFLICT', 'completed → failed is refused');
select is(test.error_code_of(format('select flowgres.execution_heartbeat(%L)', :'e1')), 'STATE_CONFLICT', 'a finished execution takes no heartbeat');

-- pending → cancelled, running → failed, running → cancelled
select test.act_as(:'runner');
select flowgres.execution_create(:'app') ->> 'id' as e2 \gset
select test.act_as(null);
select is(test.error_code_of(format('select flowgres.execution_finish(%L, %L, %L)', :'e2', 'completed', '{}')), 'STATE_CONFLICT', 'pending → completed is refused');
select test.act_as(:'runner');
select is(flowgres.execution_cancel(:'e2') ->> 'status', 'cancelled', 'pending → cancelled');
select test.act_as(null);
select is(test.error_code_of(format('select flowgres.execution_start(%L)', :'e2')), 'STATE_CONFLICT', 'cancelled → running is refused');
select test.act_as(:'runner');
select flowgres.execution_create(:'app', '{}', :'v1', 'api') ->> 'id' as e3 \gset
select flowgres.execution_create(:'app') ->> 'id' as e4 \gset
select test.act_as(null);
select flowgres.execution_start(:'e3');
select is(test.error_code_of(format('select flowgres.execution_finish(%L, %L)', :'e3', 'failed')), 'VALIDATION_FAILED', 'a failure needs its error');
select is(flowgres.execution_finish(:'e3', 'failed', null, '{"error_code": "HTTP_FAILED", "node_id": "h"}') -> 'error' ->> 'error_code', 'HTTP_FAILED', 'running → failed with the error');
select flowgres.execution_start(:'e4');
select test.act_as(:'runner');
select is(flowgres.execution_cancel(:'e4') ->> 'status', 'cancelled', 'running → cancelled');

-- listing with filters
select is((flowgres.execution_list(:'app', '{"status": "cancelled"}') -> 'meta' ->> 'total')::int, 2, 'executions filter by status');
select is((flowgres.execution_list(:'app', '{"trigger": "api"}') -> 'items' -> 0 ->> 'id'), :'e3', 'and by trigger');
select is((flowgres.execution_list(:'app', '{"node_type": "output"}') -> 'meta' ->> 'total')::int, 1, 'and by node type in their logs');
select is(test.error_code_of(format('select flowgres.execution_list(%L, %L)', :'app', '{"status": "done"}')), 'VALIDATION_FAILED', 'unknown statuses are refused');

-- queued executions are claimed by the service, oldest first, never twice
select flowgres.execution_create(:'app', '{"n": 1}', null, 'api', true) ->> 'id' as q1 \gset
select is(test.error_code_of($$select flowgres.execution_claim('d1')$$), 'PERMISSION_DENIED', 'only the service (operator) claims');
select test.act_as(null);
select is(flowgres.execution_claim('d1') ->> 'id', :'q1', 'a claim takes the queued execution');
select is((select status || ' ' || claimed_by from flowgres.executions where id = :'q1'), 'running d1', 'and runs it under the claimer''s name');
select is(flowgres.execution_claim('d2'), null, 'nothing is claimed twice, and executions not queued are never claimed');
select test.act_as(:'runner');

-- strangers see nothing
select test.act_as(:'stranger');
select is(test.error_code_of(format('select flowgres.execution_get(%L)', :'e1')), 'EXECUTION_NOT_FOUND', 'another tenant''s execution does not exist for them');
select test.act_as(null);
select * from finish();
rollback;
