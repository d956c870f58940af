-- Quotas, usage and budgets: limits from the plan and overrides, billing at admission (and
-- only there), QUOTA_EXCEEDED's details, tokens and egress at finish, the shared-memory ledger
-- and its rebuild from usage_events, subtransactions giving usage back, budgets with alerts,
-- the usage, metrics and access-stats reports, partition retention, and bad input to each.
begin;
select plan(68);

select test.new_user('quota-owner@example.com') as owner \gset
select test.home_of(:'owner') as ws \gset
select slug as ws_slug from flowgres.workspaces where id = :'ws' \gset
select test.new_member(:'ws', 'quota-member@example.com', 'member') as member \gset
select test.new_user('quota-stranger@example.com') as stranger \gset
select test.act_as(:'owner');
select flowgres.app_create(:'ws', 'Echo', 'echo') ->> 'id' as app \gset
select flowgres.version_create(:'app', '1.0.0',
       '{"nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"name": "q"}]}}, {"id": "out", "type": "output"}],
         "edges": [{"source": "start", "target": "out"}]}',
       '{"schema_version": "1.0.0", "blocks": [{"type": "form", "children": [
          {"type": "input", "id": "q", "input_key": "q", "validation": {"required": true, "max": 40}}]}]}') ->> 'id' as v1 \gset
select flowgres.app_publish(:'app', :'v1', '{"access_mode": "public_anonymous"}');
select test.act_as(null);

create function pg_temp.execute(inputs jsonb default '{"q": "hi"}') returns jsonb
language sql as $$
    select flowgres.runtime_admit(jsonb_build_object('action', 'execute', 'workspace', current_setting('t.ws'), 'app', 'echo',
                                                     'ip', '192.0.2.44', 'inputs', inputs, 'claimed_by', 'pgtap'))
$$;
select set_config('t.ws', :'ws_slug', true);

-- limits: the plan's, overridden by the operator only
select is(flowgres.workspace_limits(:'ws') -> 'quota' ->> 'requests', '10000', 'the free plan allows 10,000 requests a month');
select is(flowgres.workspace_limits(:'ws') ->> 'plan', 'free', 'on the free plan');
select is(flowgres.workspace_quota_set(:'ws', 'requests', '{"quota": 3}') -> 'quota' ->> 'requests', '3', 'the operator overrides a quota');
select is(flowgres.workspace_quota_set(:'ws', 'egress', '{"quota": null}') -> 'quota' -> 'egress', 'null'::jsonb, 'null means unlimited');
select is(flowgres.workspace_quota_clear(:'ws', 'egress') -> 'quota' ->> 'egress', '1073741824', 'clearing brings the plan''s back');
select is(test.audit_count(:'ws', 'quota.update'), 2::bigint, 'overrides are audited');
select test.act_as(:'owner');
select is(test.error_code_of(format('select flowgres.workspace_quota_set(%L, %L, %L)', :'ws', 'requests', '{"quota": 1000000}')),
          'PERMISSION_DENIED', 'an owner cannot raise their own quota');
select test.act_as(null);
select is(test.error_code_of(format('select flowgres.workspace_quota_set(%L, %L, %L)', :'ws', 'requests''; drop table flowgres.usage_events; --', '{"quota": 1}')),
          'VALIDATION_FAILED', 'an unknown dimension is refused (and nothing is run)');
select is(test.error_code_of(format('select flowgres.workspace_quota_set(%L, %L, %L)', :'ws', 'tokens', '{"quota": -5}')),
          'VALIDATION_FAILED', 'a negative quota is refused');
select is(test.error_code_of(format('select flowgres.workspace_quota_set(%L, %L, %L)', :'ws', 'tokens', '{"quota": "lots"}')),
          'VALIDATION_FAILED', 'so is text');
select is(test.error_code_of(format('select flowgres.workspace_quota_set(%L, %L, %L)', gen_random_uuid(), 'tokens', '{"quota": 1}')),
          'WORKSPACE_NOT_FOUND', 'an unknown workspace is not found');
select ok(to_regclass('flowgres.usage_events') is not null, 'usage_events is intact');

-- billing: refused before validation → not billed; admitted → billed, also when the run fails
select is(pg_temp.execute('{}') ->> 'status', '422', 'invalid inputs are refused');
select is((select count(*) from flowgres.usage_events where workspace_id = :'ws'), 0::bigint, 'and not billed');
select pg_temp.execute() -> 'execution' ->> 'id' as run1 \gset
select ok(:'run1' <> '', 'an admitted request runs');
select is((select dimension || ':' || quantity || ':' || (app_id = :'app')::text || ':' || (execution_id = :'run1')::text
           from flowgres.usage_events where workspace_id = :'ws'), 'requests:1:true:true', 'and is billed one request, for its app and execution');
select is(flowgres.usage_ledger(:'ws') -> 'in_flight' ->> 'requests', '1', 'held in the ledger until the transaction ends');
select flowgres.execution_finish(:'run1', 'failed', null, '{"error_code": "NODE_FAILED", "message": "boom"}');
select is((select count(*) from flowgres.usage_events where workspace_id = :'ws' and dimension = 'requests'), 1::bigint,
          'a failed run stays billed, once');
select pg_temp.execute() -> 'execution' ->> 'id' as run2 \gset
select flowgres.execution_finish(:'run2', 'completed', '{"answer": "<b>hello</b>"}', null, 120, 30);
select is((select quantity::bigint from flowgres.usage_events where execution_id = :'run2' and dimension = 'tokens'), 150::bigint,
          'a finished run bills prompt + completion tokens');
select is((select quantity::bigint from flowgres.usage_events where execution_id = :'run2' and dimension = 'egress'),
          octet_length('{"answer": "<b>hello</b>"}'::jsonb::text)::bigint, 'and its output bytes as egress');

-- the third request uses the quota up; the fourth is refused with the details
select pg_temp.execute() -> 'execution' ->> 'id' as run3 \gset
select pg_temp.execute() as refused \gset
select is(:'refused'::jsonb -> 'error' ->> 'error_code', 'QUOTA_EXCEEDED', 'past the quota: QUOTA_EXCEEDED');
select is((:'refused'::jsonb ->> 'status')::int, 429, 'with 429');
select is((:'refused'::jsonb -> 'error' -> 'details') - 'reset_at' - 'retry_after_seconds',
          '{"exceeded": "requests", "plan": "free", "quota": 3, "used": 3, "overage_policy": "block"}'::jsonb,
          'naming the dimension, plan, quota and use');
select is((:'refused'::jsonb -> 'error' -> 'details' ->> 'reset_at')::timestamptz,
          date_trunc('month', now() at time zone 'UTC') at time zone 'UTC' + interval '1 month',
          'resetting at the next month (UTC)');
select ok((:'refused'::jsonb -> 'error' -> 'details' ->> 'retry_after_seconds')::int
          between 1 and extract(epoch from interval '31 days'), 'with the seconds until then');
select is((select count(*) from flowgres.usage_events where workspace_id = :'ws' and dimension = 'requests'), 3::bigint,
          'the refused request is not billed');
select is((select count(*) from flowgres.runtime_events where workspace_id = :'ws' and event_type = 'runtime.quota_exceeded'), 1::bigint,
          'and is recorded as an event');

-- subtransactions give their usage back
select flowgres.workspace_quota_set(:'ws', 'requests', '{"quota": 100}');
savepoint before_run;
select pg_temp.execute() -> 'execution' ->> 'id' as rolled_back \gset
select is(flowgres.usage_ledger(:'ws') -> 'in_flight' ->> 'requests', '4', 'a request in a savepoint is held');
rollback to savepoint before_run;
select is(flowgres.usage_ledger(:'ws') -> 'in_flight' ->> 'requests', '3', 'and given back when it rolls back');
select is((select count(*) from flowgres.usage_events where workspace_id = :'ws' and dimension = 'requests'), 3::bigint,
          'with its row');

-- tokens exhausted: the next request is refused for tokens
select flowgres.workspace_quota_set(:'ws', 'tokens', '{"quota": 150}');
select is(pg_temp.execute() -> 'error' -> 'details' ->> 'exceeded', 'tokens', 'a used-up token quota refuses new requests');

-- the usage report
select test.act_as(:'member');
select flowgres.workspace_usage(:'ws') as usage \gset
select is(:'usage'::jsonb -> 'usage' -> 'requests', '{"used": 3, "quota": 100, "remaining": 97}', 'members see requests against the quota');
select is(:'usage'::jsonb -> 'usage' -> 'tokens' ->> 'used', '150', 'and tokens');
select is(:'usage'::jsonb -> 'apps' -> 0 ->> 'slug', 'echo', 'per app');
select is((:'usage'::jsonb -> 'period' ->> 'start')::timestamptz, date_trunc('month', now() at time zone 'UTC') at time zone 'UTC',
          'for this month');
select is(:'usage'::jsonb -> 'usage' -> 'db_storage' ->> 'quota', '104857600', 'with the storage quota');
select test.act_as(:'stranger');
select is(test.error_code_of(format('select flowgres.workspace_usage(%L)', :'ws')), 'WORKSPACE_NOT_FOUND',
          'outsiders learn nothing');

-- the ledger is rebuilt from the table: rows of an unloaded workspace, last month's left out
select test.act_as(:'owner');
select flowgres.workspace_create('Ledger', 'ledger-' || substr(md5(random()::text), 1, 8)) ->> 'id' as ws2 \gset
select test.act_as(null);
insert into flowgres.usage_events (workspace_id, dimension, quantity, created_at) values
    (:'ws2', 'requests', 7, now()), (:'ws2', 'tokens', 900, now()),
    (:'ws2', 'requests', 1000, date_trunc('month', now() at time zone 'UTC') at time zone 'UTC' - interval '1 second');
select is(flowgres.usage_ledger(:'ws2') -> 'committed', '{"requests": 7, "tokens": 900, "egress": 0}',
          'a workspace''s month is loaded from usage_events, last month left out');

-- budgets: validation, permission, alerts at 50/80/100 %, then the limit blocks
insert into flowgres.billing_plans (code, name, monthly_requests, price_per_1k_requests_micros)
values ('metered', 'Metered', 1000, 2500000);  -- 0.25 cents a request
update flowgres.workspaces set plan = 'metered' where id = :'ws';
select flowgres.workspace_quota_clear(:'ws', 'requests');
select flowgres.workspace_quota_clear(:'ws', 'tokens');
select test.act_as(:'owner');
select is(test.error_code_of(format('select flowgres.budget_update(%L, %L)', :'ws', '{"alert_thresholds": [0, 50]}')),
          'VALIDATION_FAILED', 'a threshold of 0 % is refused');
select is(test.error_code_of(format('select flowgres.budget_update(%L, %L)', :'ws', '{"alert_thresholds": [50, 50]}')),
          'VALIDATION_FAILED', 'so are repeated thresholds');
select is(test.error_code_of(format('select flowgres.budget_update(%L, %L)', :'ws', '{"spend_limit_cents": "<script>"}')),
          'VALIDATION_FAILED', 'a limit must be a number of cents');
select is(test.error_code_of(format('select flowgres.budget_update(%L, %L)', :'ws', '{"spend_limit_enabled": true}')),
          'VALIDATION_FAILED', 'a limit cannot be enabled without an amount');
select is(test.error_code_of(format('select flowgres.budget_update(%L, %L)', :'ws', '{"limit": 5}')),
          'VALIDATION_FAILED', 'unknown settings are refused');
select test.act_as(:'member');
select is(test.error_code_of(format('select flowgres.budget_update(%L, %L)', :'ws', '{"spend_limit_cents": 1}')),
          'PERMISSION_DENIED', 'members cannot change the budget');
select test.act_as(:'owner');
-- tokens already used this month cost nothing on this plan; 150 tokens at 0 → spend 3 requests × 2,500 = 7,500 µ$
select is(flowgres.budget_update(:'ws', '{"spend_limit_cents": 2, "spend_limit_enabled": true}') ->> 'spend_micros', '7500',
          'the budget shows the month''s spend at the plan''s prices');
select is(test.audit_count(:'ws', 'budget.update'), 1::bigint, 'budget changes are audited');
select test.act_as(null);
-- limit 20,000 µ$: request 4 → 10,000 (50 %), 7 → 17,500 (80 %), 8 → 20,000 (100 %), 9 refused
select count(*) from generate_series(4, 8) where pg_temp.execute() ->> 'decision' = 'allow';
select is((select array_agg(threshold order by threshold) from flowgres.budget_alerts where workspace_id = :'ws'), '{50,80,100}',
          'each threshold raises one alert');
select is((select count(*) from flowgres.runtime_events where workspace_id = :'ws' and event_type = 'budget.alert'), 3::bigint,
          'as runtime events');
select is((select details ->> 'spend_micros' from flowgres.runtime_events
           where workspace_id = :'ws' and event_type = 'budget.alert' and details ->> 'threshold' = '50'), '10000',
          'at the spend that crossed it');
select pg_temp.execute() as over_budget \gset
select is(:'over_budget'::jsonb -> 'error' -> 'details' ->> 'exceeded', 'budget', 'past the spend limit: refused for the budget');
select is(:'over_budget'::jsonb -> 'error' -> 'details' ->> 'quota', '20000', 'naming the limit in micro-dollars');
select test.act_as(:'owner');
select is(flowgres.budget_get(:'ws') ->> 'used_percent', '100', 'the budget reads 100 % used');
select flowgres.budget_update(:'ws', '{"spend_limit_enabled": false}');
select test.act_as(null);
select is(pg_temp.execute() ->> 'decision', 'allow', 'with the limit off, requests run again');
select is((select count(*) from flowgres.budget_alerts where workspace_id = :'ws'), 3::bigint, 'and alerts are not raised twice');

-- metrics and access stats
select test.act_as(:'member');
select flowgres.app_metrics(:'app') as metrics \gset
select is((:'metrics'::jsonb ->> 'requests')::int, 9, 'metrics count the app''s runtime requests');
select is((:'metrics'::jsonb ->> 'errors')::int, 1, 'and its failed runs');
select is((:'metrics'::jsonb -> 'tokens' ->> 'total')::int, 150, 'and tokens');
select ok(:'metrics'::jsonb -> 'duration_ms' ? 'p95', 'and duration percentiles');
select flowgres.app_access_stats(:'app', 30) as stats \gset
select is((:'stats'::jsonb -> 'by_type' ->> 'runtime.quota_exceeded')::int, 3, 'access stats count refusals by type');
select is((:'stats'::jsonb ->> 'visitors')::int, 1, 'and distinct visitors');
select is(test.error_code_of(format('select flowgres.app_access_stats(%L, 0)', :'app')), 'VALIDATION_FAILED', 'days must be at least 1');
select is(test.error_code_of(format('select flowgres.app_metrics(%L, 10000)', :'app')), 'VALIDATION_FAILED', 'and within range');

-- partitions
select ok(to_regclass('flowgres.usage_events_' || to_char(now() at time zone 'UTC', 'YYYY_MM')) is not null,
          'usage_events has this month''s partition');
select is(test.sqlstate_of('select flowgres.ensure_monthly_partitions(''pg_class'')'), 'P0001', 'only the append-only tables are partitioned');

create table flowgres.runtime_events_2020_01 partition of flowgres.runtime_events
    for values from ('2020-01-01 00:00+00') to ('2020-02-01 00:00+00');
insert into flowgres.runtime_events (workspace_id, event_type, created_at) values (:'ws', 'runtime.entry', '2020-01-15 12:00+00');
insert into flowgres.runtime_events (workspace_id, event_type, created_at) values (:'ws', 'runtime.entry', now() - interval '400 days');  -- no partition: the default one
select is(flowgres.partitions_maintain(90) ->> 'dropped', '1', 'retention drops runtime_events months past it');
select ok(to_regclass('flowgres.runtime_events_2020_01') is null, 'the old month is gone');
select is((select count(*) from flowgres.runtime_events where created_at < now() - interval '90 days'), 0::bigint,
          'and so are old rows that landed in the default partition');
select ok(to_regclass('flowgres.runtime_events_' || to_char(now() at time zone 'UTC', 'YYYY_MM')) is not null,
          'this month''s partition stays');

select * from finish();
rollback;
