-- Anomaly signals (seed §31.2) in admission: the policy's rules validated, high frequency from
-- one address asking for a CAPTCHA, a failing app asking for one, a spike shedding load; each
-- recorded as runtime.risk_detected with what was measured. Windows are a day long, so a test
-- run never straddles one.
begin;
select plan(14);

select test.new_user('anomaly-owner@example.com') as owner \gset
select test.home_of(:'owner') as ws \gset
select slug as ws_slug from flowgres.workspaces where id = :'ws' \gset
update flowgres.workspaces set plan = 'enterprise' where id = :'ws';
select test.act_as(:'owner');
create function pg_temp.app(slug text, anomaly jsonb) returns uuid
language plpgsql as $$
declare
    app uuid;
    version uuid;
begin
    app := flowgres.app_create(current_setting('t.ws_id')::uuid, slug, slug) ->> 'id';
    version := flowgres.version_create(app, '1.0.0', test.workflow()) ->> 'id';
    perform flowgres.app_publish(app, version, jsonb_build_object('access_mode', 'public_anonymous',
        'rate_limit', jsonb_build_object('per_ip', '{"max_requests": 1000, "window_seconds": 60}'::jsonb, 'anomaly', anomaly)));
    return app;
end $$;
create function pg_temp.execute(slug text, extra jsonb default '{}') returns jsonb
language sql as $$
    select flowgres.runtime_admit(jsonb_build_object('action', 'execute', 'workspace', current_setting('t.ws'), 'app', slug,
                                                     'ip', '198.51.100.77', 'claimed_by', 'pgtap') || extra)
$$;
select set_config('t.ws', :'ws_slug', true), set_config('t.ws_id', :'ws', true);

-- the rules are checked
select is(test.error_code_of($$select pg_temp.app('bad1', '{"burst": {}}')$$), 'VALIDATION_FAILED', 'an unknown signal is refused');
select is(test.error_code_of($$select pg_temp.app('bad2', '{"failure_rate": {"threshold": 2, "min_requests": 5, "window_seconds": 60}}')$$),
          'VALIDATION_FAILED', 'a failure threshold over 1 is refused');
select is(test.error_code_of($$select pg_temp.app('bad3', '{"spike": {"factor": 3, "min_requests": 5, "window_seconds": 60, "action": "ban"}}')$$),
          'VALIDATION_FAILED', 'an unknown action is refused');
select is(test.error_code_of($$select pg_temp.app('bad4', '{"high_freq": {"max_requests": 5}}')$$),
          'VALIDATION_FAILED', 'a rule needs its window');

select pg_temp.app('frequent', '{"high_freq": {"max_requests": 2, "window_seconds": 86400}}') as frequent \gset
select pg_temp.app('failing', '{"failure_rate": {"threshold": 0.5, "min_requests": 2, "window_seconds": 86400}}') as failing \gset
select pg_temp.app('spiky', '{"spike": {"factor": 2, "min_requests": 3, "window_seconds": 86400, "action": "shed"}}') as spiky \gset
select test.act_as(null);

-- high frequency from one address: a CAPTCHA
select is(array[pg_temp.execute('frequent') ->> 'decision', pg_temp.execute('frequent') ->> 'decision'], array['allow', 'allow'],
          'requests within the rate pass');
select pg_temp.execute('frequent') as risky \gset
select is(:'risky'::jsonb -> 'error' ->> 'error_code', 'CAPTCHA_REQUIRED', 'past it, a CAPTCHA is asked for');
select is(:'risky'::jsonb -> 'error' -> 'details' -> 'measured', '{"requests": 3, "max_requests": 2}', 'saying what was seen');
select is(pg_temp.execute('frequent', '{"captcha": "passed"}') ->> 'decision', 'allow', 'a solved CAPTCHA passes');
select is((select details -> 'details' ->> 'signal' from flowgres.runtime_events where app_id = :'frequent' and event_type = 'runtime.risk_detected'),
          'high_freq', 'the risk is recorded with its signal');

-- an app failing half its runs: a CAPTCHA
select pg_temp.execute('failing') -> 'execution' ->> 'id' as failed_run \gset
select flowgres.execution_finish(:'failed_run', 'failed', null, '{"error_code": "NODE_FAILED", "message": "upstream down"}');
select is(pg_temp.execute('failing') -> 'error' -> 'details' ->> 'signal', 'failure_rate', 'a failing app asks for a CAPTCHA');

-- a spike: shed until the window ends
select is(array[pg_temp.execute('spiky') ->> 'decision', pg_temp.execute('spiky') ->> 'decision'], array['allow', 'allow'],
          'the first requests pass');
select pg_temp.execute('spiky') as shed \gset
select is(:'shed'::jsonb -> 'error' ->> 'error_code', 'OVERLOADED', 'a spike over twice the last window is shed');
select is((:'shed'::jsonb ->> 'status')::int, 503, 'with 503');
select ok((:'shed'::jsonb -> 'error' -> 'details' ->> 'retry_after_seconds')::int between 1 and 86400, 'until the window ends');

select * from finish();
rollback;
