-- A visitor's deferred runs are recorded without a statement (execution_record.cpp
-- record_deferred_directly, table_rows.cpp); every other run by the statement that writes
-- deferred runs. Both must leave the same rows: here two runs are recorded with the same
-- outcome, one each way ("view": "row" takes the statement, "visitor" the direct way), and
-- every row they leave is compared, column by column, except the ids.
begin;
select plan(21);

select test.published_app('direct@example.com', 'direct') as published \gset
select :'published'::jsonb ->> 'workspace' as ws, :'published'::jsonb ->> 'workspace_slug' as ws_slug \gset

create function pg_temp.admit() returns jsonb
language sql as $$
    select (flowgres.runtime_admit(jsonb_build_object('action', 'execute', 'workspace', current_setting('t.ws'),
                                                      'app', 'direct', 'ip', '203.0.113.9', 'user_agent', 'pgTAP',
                                                      'inputs', jsonb_build_object('name', 'Zoë', 'n', 1.50),
                                                      'claimed_by', 'daemon-x', 'defer', true)) -> 'execution') - 'workflow'
$$;
select set_config('t.ws', :'ws_slug', true);

-- One outcome, recorded for two runs: `view` says which way.
create function pg_temp.record(admitted jsonb, view text, outcome jsonb) returns jsonb
language sql as $$
    select flowgres.executions_record(jsonb_build_array(outcome || jsonb_build_object(
        'execution_id', admitted ->> 'id', 'view', view, 'admitted', admitted))::json)::jsonb -> 'runs' -> 0
$$;
-- Everything a run left, without the ids that differ between two runs.
create function pg_temp.left_by(run uuid) returns jsonb
language sql as $$
    select jsonb_build_object(
        'execution', (select to_jsonb(e) - 'id' - 'session_id' from flowgres.executions e where e.id = run),
        'usage', (select jsonb_agg(to_jsonb(u) - 'id' - 'execution_id' order by u.dimension)
                  from flowgres.usage_events u where u.execution_id = run),
        'trail', (select to_jsonb(t) - 'execution_id' from flowgres.execution_trails t where t.execution_id = run),
        'model_calls', (select jsonb_agg(to_jsonb(m) - 'id' - 'execution_id' order by m.node_id)
                        from flowgres.model_usage m where m.execution_id = run),
        'events', (flowgres.execution_events(run) -> 'events'))
$$;

-- One part of what two runs left (left_by), the same both ways.
create function pg_temp.same(part text, direct jsonb, by_statement jsonb, description text) returns text
language sql as $$
    select is(pg_temp.left_by((direct ->> 'id')::uuid) -> part, pg_temp.left_by((by_statement ->> 'id')::uuid) -> part,
              description)
$$;

-- A completed run with everything a run can bring: nested nulls in its outputs (its trail's
-- execution_finished strips them, as jsonb_strip_nulls does), text from every script, tokens,
-- events, logs and model calls, one of them with a node id longer than the column keeps.
select set_config('t.completed', jsonb_build_object(
    'status', 'completed',
    'outputs', jsonb_build_object('text', 'héllo <b>"wörld"</b> 🙂', 'nothing', null, 'nested', jsonb_build_object('gone', null, 'kept', 0.10)),
    'prompt_tokens', 7, 'completion_tokens', 5,
    'events', '[{"sequence": 1, "event": "node_started", "data": {"node_id": "start"}},
                {"sequence": 2, "event": "node_finished", "data": {"node_id": "start", "status": "completed"}}]'::jsonb,
    'logs', '[{"node_id": "start", "node_type": "start", "status": "completed", "attempt": 1}]'::jsonb,
    'model_calls', jsonb_build_array(
        jsonb_build_object('node_id', 'ask', 'provider', 'p1', 'model', 'm-1', 'prompt_tokens', 7, 'completion_tokens', 5,
                           'cost_micros', 12, 'latency_ms', 50, 'ok', true),
        jsonb_build_object('node_id', repeat('é', 250), 'provider', 'p1', 'model', 'm-2', 'ok', false,
                           'error_code', repeat('E', 150), 'usage_reported', false)))::text, true);
select pg_temp.admit() as statement_run \gset
select pg_temp.admit() as direct_run \gset
select pg_temp.record(:'statement_run', 'row', current_setting('t.completed')::jsonb) as by_statement \gset
select pg_temp.record(:'direct_run', 'visitor', current_setting('t.completed')::jsonb) as directly \gset

select is(:'by_statement'::jsonb -> 'execution' ->> 'status', 'completed', 'the statement recorded its run');
select is(:'directly'::jsonb -> 'execution',
          jsonb_build_object('execution_id', :'direct_run'::jsonb ->> 'id', 'status', 'completed',
                             'outputs', current_setting('t.completed')::jsonb -> 'outputs', 'error', null),
          'the direct way answers the visitor with the outputs as sent, nulls kept');
select pg_temp.same('execution', :'direct_run', :'statement_run',
                     'the same execution row: every column, defaults included');
select pg_temp.same('usage', :'direct_run', :'statement_run',
                     'the same usage rows (requests dated when admitted, tokens, egress)');
select is(jsonb_array_length(pg_temp.left_by((:'direct_run'::jsonb ->> 'id')::uuid) -> 'usage'), 3,
          'three of them');
select pg_temp.same('trail', :'direct_run', :'statement_run',
                     'the same trail: events, node logs, execution_finished with nulls stripped');
select pg_temp.same('model_calls', :'direct_run', :'statement_run',
                     'the same model calls');
select is((select length(node_id) || '/' || length(error_code) || '/' || usage_reported || '/' || ok
           from flowgres.model_usage where execution_id = (:'direct_run'::jsonb ->> 'id')::uuid and model = 'm-2'),
          '200/100/false/false', 'a node id and an error code cut to what their columns keep, in characters');
select pg_temp.same('events', :'direct_run', :'statement_run',
                     'its events read back the same');

-- A trail of a kilobyte or so, too small for the heap to compress (it compresses only rows past
-- about 2 kB): the direct way stores its documents compressed (lz4, the columns' method), the
-- same values in fewer bytes.
select set_config('t.longer', jsonb_build_object(
    'status', 'completed', 'outputs', jsonb_build_object('text', 'ok'),
    'events', (select jsonb_agg(jsonb_build_object('sequence', i, 'event', 'node_started',
                                                   'data', jsonb_build_object('node_id', 'n' || i, 'attempt', 1)))
               from generate_series(1, 12) i),
    'logs', (select jsonb_agg(jsonb_build_object('node_id', 'n' || i, 'node_type', 'transform', 'status', 'completed',
                                                 'attempt', 1, 'duration_ms', i))
             from generate_series(1, 12) i))::text, true);
select pg_temp.admit() as statement_longer \gset
select pg_temp.admit() as direct_longer \gset
select pg_temp.record(:'statement_longer', 'row', current_setting('t.longer')::jsonb) is not null as recorded \gset
select pg_temp.record(:'direct_longer', 'visitor', current_setting('t.longer')::jsonb) is not null as recorded \gset
select pg_temp.same('trail', :'direct_longer', :'statement_longer',
                     'a longer trail: the same values both ways');
select is((select pg_column_compression(events) || '/' || pg_column_compression(node_logs)
           from flowgres.execution_trails where execution_id = (:'direct_longer'::jsonb ->> 'id')::uuid),
          'lz4/lz4', 'stored compressed the direct way');
select cmp_ok((select pg_column_size(t.*) from flowgres.execution_trails t
               where execution_id = (:'direct_longer'::jsonb ->> 'id')::uuid), '<',
              (select pg_column_size(t.*) from flowgres.execution_trails t
               where execution_id = (:'statement_longer'::jsonb ->> 'id')::uuid),
              'in fewer bytes than the statement stores it');

-- A failed run with as little as a run can bring: no outputs, no tokens, an error.
select set_config('t.failed', '{"status": "failed", "error": {"error_code": "LLM_TIMEOUT", "message": "slow", "detail": null}}', true);
select pg_temp.admit() as statement_failed \gset
select pg_temp.admit() as direct_failed \gset
select pg_temp.record(:'statement_failed', 'row', current_setting('t.failed')::jsonb) as failed_by_statement \gset
select pg_temp.record(:'direct_failed', 'visitor', current_setting('t.failed')::jsonb) as failed_directly \gset
select is(pg_temp.left_by((:'direct_failed'::jsonb ->> 'id')::uuid),
          pg_temp.left_by((:'statement_failed'::jsonb ->> 'id')::uuid),
          'a failed run leaves the same rows either way');
select is(:'failed_directly'::jsonb -> 'execution' -> 'error' ->> 'error_code', 'LLM_TIMEOUT', 'and is answered with its error');
select is(jsonb_array_length(pg_temp.left_by((:'direct_failed'::jsonb ->> 'id')::uuid) -> 'usage'), 1,
          'billed for its request only');

-- Sent again: the row is there, so the run is ended on its row (it has ended: refused), and
-- nothing is stored twice.
select is(pg_temp.record(:'direct_run', 'visitor', current_setting('t.completed')::jsonb) -> 'error' ->> 'error_code',
          'STATE_CONFLICT', 'a visitor''s run recorded again is refused');
select is(jsonb_array_length(pg_temp.left_by((:'direct_run'::jsonb ->> 'id')::uuid) -> 'usage'), 3,
          'and billed once');

-- While a table has what an INSERT would honour and the direct way would not (an insert
-- trigger here), a visitor's runs go through the statement, trigger and all.
savepoint triggered;
create function pg_temp.mark() returns trigger language plpgsql as $$
begin new.claimed_by := 'seen by its trigger'; return new; end $$;
create trigger mark_insert before insert on flowgres.executions for each row execute function pg_temp.mark();
select pg_temp.admit() as triggered_run \gset
select is(pg_temp.record(:'triggered_run', 'visitor', '{"status": "completed", "outputs": {}}') -> 'execution' ->> 'status',
          'completed', 'with an insert trigger on executions, a visitor''s run is still recorded');
select is((select claimed_by from flowgres.executions where id = (:'triggered_run'::jsonb ->> 'id')::uuid),
          'seen by its trigger', 'and the trigger ran for its row');
rollback to savepoint triggered;
select pg_temp.admit() as after_trigger \gset
select is(pg_temp.record(:'after_trigger', 'visitor', '{"status": "completed", "outputs": {}}') -> 'execution' ->> 'status',
          'completed', 'without it, recorded the direct way again');
select is((select claimed_by from flowgres.executions where id = (:'after_trigger'::jsonb ->> 'id')::uuid),
          'daemon-x', 'as admitted');

select * from finish();
rollback;
