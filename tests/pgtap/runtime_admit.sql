-- Runtime admission: every branch in order, each with its code and status, sessions, rate
-- limits in shared memory, CAPTCHA, input validation, the running execution, and the events.
begin;
select plan(67);

select test.new_user('publisher@example.com') as owner \gset
select test.home_of(:'owner') as ws \gset
select slug as ws_slug from flowgres.workspaces where id = :'ws' \gset
select test.new_member(:'ws', 'colleague@example.com', 'member') as colleague \gset
select test.act_as(:'owner');
update flowgres.workspaces set plan = 'enterprise' where id = :'ws';
select flowgres.app_create(:'ws', 'Greeter', 'greeter') ->> 'id' as app \gset
select flowgres.version_create(:'app', '1.0.0',
       '{"nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"name": "name"}]}}, {"id": "out", "type": "output"}],
         "edges": [{"source": "start", "target": "out"}]}',
       '{"schema_version": "1.0.0", "blocks": [{"type": "form", "children": [
          {"type": "input", "id": "name", "input_key": "name", "validation": {"required": true, "max": 40}}]}]}') ->> 'id' as v1 \gset

create function pg_temp.admit(action text, app text, extra jsonb default '{}') returns jsonb
language sql as $$
    select flowgres.runtime_admit(jsonb_build_object('action', action, 'workspace', current_setting('t.ws'), 'app', app,
                                                     'ip', '203.0.113.7', 'user_agent', 'pgTAP') || extra)
$$;
select set_config('t.ws', :'ws_slug', true);
select test.act_as(null);  -- the daemon acts as the operator

-- resolving
select is(pg_temp.admit('entry', 'nope') -> 'error' ->> 'error_code', 'RUNTIME_APP_NOT_FOUND', 'an unknown app is not found');
select is((pg_temp.admit('entry', 'nope') ->> 'status')::int, 404, 'with 404');
select is(flowgres.runtime_admit('{"action": "entry", "workspace": "no-such-place", "ip": "1.2.3.4"}') -> 'error' ->> 'error_code',
          'RUNTIME_APP_NOT_FOUND', 'so is an unknown workspace');
select is(pg_temp.admit('entry', 'greeter') -> 'error' ->> 'error_code', 'APP_NOT_PUBLISHED', 'a draft is not published');
select test.act_as(:'owner');
select flowgres.app_publish(:'app', :'v1', '{"access_mode": "public_anonymous"}');
select test.act_as(null);

-- admitted
select pg_temp.admit('entry', 'greeter') as entry \gset
select is(:'entry'::jsonb ->> 'decision', 'allow', 'a published public app admits anyone');
select is(:'entry'::jsonb ->> 'version_id', :'v1', 'and names the version to run');
select is(:'entry'::jsonb -> 'app' ->> 'access_mode', 'public_anonymous', 'and describes the app');
select is(:'entry'::jsonb -> 'session' ->> 'type', 'anon', 'an anonymous session is created');
select is(:'entry'::jsonb -> 'rate_limit' ->> 'limit', '120', 'the default limit is 120 per IP');
select is(:'entry'::jsonb -> 'rate_limit' ->> 'remaining', '119', 'counting this request');
select (:'entry'::jsonb -> 'session' ->> 'id') as session \gset
select pg_temp.admit('schema', 'greeter', jsonb_build_object('session_id', :'session')) as schema \gset
select is(:'schema'::jsonb -> 'session' ->> 'id', :'session', 'the session is reused when sent back');
select is(:'schema'::jsonb -> 'schema' -> 'input_mapping' -> 'mapped', '["name"]'::jsonb, 'the schema comes with its input mapping');
select is(:'schema'::jsonb -> 'schema' -> 'ui_schema' -> 'blocks' -> 0 ->> 'type', 'form', 'and the UI schema');
select ok((select ip_hash ~ '^[0-9a-f]{64}$' from flowgres.app_sessions where id = :'session'),
          'sessions keep the address as an HMAC under the installation''s key, never in clear');
select isnt((select ip_hash from flowgres.app_sessions where id = :'session'), encode(sha256('203.0.113.7'), 'hex'),
          'nor as a plain SHA-256, which anyone can reverse for IPv4');
select ok(not has_table_privilege('flowgres_user', 'flowgres.installation_secrets', 'select')
          and not has_table_privilege('flowgres_service', 'flowgres.installation_secrets', 'select'),
          'and the key is nobody''s to read');
update flowgres.workspaces set default_app_id = null where id = :'ws';
select is(pg_temp.admit('entry', null) -> 'error' ->> 'error_code', 'RUNTIME_APP_NOT_FOUND', 'no default app: not found');
update flowgres.workspaces set default_app_id = :'app' where id = :'ws';
select is(pg_temp.admit('entry', null) ->> 'version_id', :'v1', 'the default app answers for the workspace');

-- renamed slugs redirect
select test.act_as(:'owner');
select flowgres.app_update(:'app', '{"slug": "hello"}');
select test.act_as(null);
select is(pg_temp.admit('entry', 'greeter') -> 'location', ('{"workspace": "' || :'ws_slug' || '", "app": "hello"}')::jsonb,
          'an old app slug redirects to the new one');
select is((pg_temp.admit('entry', 'greeter') ->> 'status')::int, 301, 'with 301');

-- executing: inputs, execution, events
select is(pg_temp.admit('execute', 'hello', '{"inputs": {}}') -> 'error' -> 'details' -> 'problems' -> 0 ->> 'field', 'inputs.name',
          'a missing required input is refused field by field');
select is(pg_temp.admit('execute', 'hello', '{"inputs": {"name": "a name far longer than forty characters, surely"}}') ->> 'status', '422', 'with 422');
select pg_temp.admit('execute', 'hello', '{"inputs": {"name": "<script>alert(1)</script>"}, "claimed_by": "daemon-t"}') as run \gset
select is(:'run'::jsonb -> 'execution' ->> 'status', 'running', 'an admitted execute starts the execution, claimed');
select is(:'run'::jsonb -> 'execution' ->> 'claimed_by', 'daemon-t', 'by the daemon that asked');
select is(:'run'::jsonb -> 'execution' -> 'inputs' ->> 'name', '<script>alert(1)</script>', 'inputs are kept as text, verbatim');
select ok(:'run'::jsonb -> 'execution' -> 'workflow' ? 'nodes', 'with the workflow to run');
select is((select trigger || '/' || (session_id is not null)::text from flowgres.executions where id = (:'run'::jsonb -> 'execution' ->> 'id')::uuid),
          'runtime/true', 'recorded as a runtime execution of a session');
select ok((select count(*) from flowgres.runtime_events where app_id = :'app' and event_type = 'runtime.execute') = 0,
          'an admitted execute writes no event row: it is counted when its transaction commits');

-- access modes
select test.act_as(:'owner');
select flowgres.access_policy_update(:'app', '{"access_mode": "public_auth"}');
select test.act_as(null);
select is(pg_temp.admit('entry', 'hello') -> 'error' ->> 'error_code', 'AUTH_REQUIRED', 'public_auth needs a signed-in user');
select is((pg_temp.admit('entry', 'hello') ->> 'status')::int, 401, 'with 401');
select is(pg_temp.admit('entry', 'hello', '{"user": "github|42"}') -> 'session' ->> 'type', 'auth', 'a signed-in visitor gets an auth session');
select test.act_as(:'owner');
select flowgres.access_policy_update(:'app', '{"access_mode": "private"}');
select test.act_as(null);
select is(pg_temp.admit('entry', 'hello', '{"user": "github|42"}') -> 'error' ->> 'error_code', 'ACCESS_DENIED', 'private: outsiders are refused');
select is(pg_temp.admit('entry', 'hello', jsonb_build_object('user', :'colleague')) ->> 'decision', 'allow', 'members are admitted');

-- block lists, origins, sessions of other apps
select test.act_as(:'owner');
select flowgres.access_policy_update(:'app', jsonb_build_object('access_mode', 'public_anonymous', 'blocked_ip_hashes',
       jsonb_build_array(encode(sha256('198.51.100.9'), 'hex')), 'allowed_origins', '["https://shop.example"]'::jsonb));
select flowgres.app_create(:'ws', 'Other', 'other') ->> 'id' as other_app \gset
select test.act_as(null);
select is(flowgres.runtime_admit(jsonb_build_object('action', 'entry', 'workspace', :'ws_slug', 'app', 'hello', 'ip', '198.51.100.9')) -> 'error' ->> 'error_code',
          'IP_BLOCKED', 'a blocked address hash is refused');
select is(pg_temp.admit('entry', 'hello', '{"origin": "https://evil.example"}') -> 'error' ->> 'error_code', 'ORIGIN_NOT_ALLOWED', 'a foreign origin is refused');
select is(pg_temp.admit('entry', 'hello', '{"origin": "https://shop.example"}') ->> 'decision', 'allow', 'an allowed origin is admitted');
insert into flowgres.app_sessions (workspace_id, app_id, session_type, ip_hash, expires_at)
values (:'ws', :'other_app', 'anon', 'x', now() + interval '1 hour') returning id as foreign_session \gset
select is(pg_temp.admit('entry', 'hello', jsonb_build_object('session_id', :'foreign_session')) -> 'error' ->> 'error_code',
          'SESSION_INVALID', 'another app''s session is refused');

-- rate limits: a per-session window of 3; then the session is blocked after repeated hits
select test.act_as(:'owner');
select flowgres.access_policy_update(:'app', '{"rate_limit": {"per_ip": {"max_requests": 1000, "window_seconds": 3600}, "per_session": {"max_requests": 3, "window_seconds": 3600}}}');
select test.act_as(null);
select pg_temp.admit('entry', 'hello') -> 'session' ->> 'id' as limited \gset
select pg_temp.admit('entry', 'hello', jsonb_build_object('session_id', :'limited'));
select is(pg_temp.admit('entry', 'hello', jsonb_build_object('session_id', :'limited')) -> 'rate_limit' ->> 'remaining', '0', 'the third request uses the window up');
select pg_temp.admit('entry', 'hello', jsonb_build_object('session_id', :'limited')) as refused \gset
select is(:'refused'::jsonb -> 'error' ->> 'error_code', 'RATE_LIMITED', 'the fourth is rate limited');
select is((:'refused'::jsonb ->> 'status')::int, 429, 'with 429');
select ok((:'refused'::jsonb -> 'rate_limit' ->> 'retry_after')::int between 1 and 3600, 'and a Retry-After');
select is((select count(*) from flowgres.runtime_events where session_id = :'limited' and event_type = 'runtime.rate_limited'), 1::bigint,
          'the refusal is recorded as an event');
select count(*) from generate_series(1, 20) as i where pg_temp.admit('entry', 'hello', jsonb_build_object('session_id', :'limited')) is not null;
select is(pg_temp.admit('entry', 'hello', jsonb_build_object('session_id', :'limited')) -> 'error' ->> 'error_code', 'SESSION_BLOCKED',
          'a session that keeps hitting the limit is blocked');

-- CAPTCHA
select test.act_as(:'owner');
select flowgres.access_policy_update(:'app', '{"require_captcha": true, "rate_limit": {"per_ip": {"max_requests": 1000, "window_seconds": 3600}}}');
select test.act_as(null);
select is(pg_temp.admit('execute', 'hello', '{"inputs": {"name": "Ada"}, "user_agent": "captcha"}') -> 'error' ->> 'error_code', 'CAPTCHA_REQUIRED', 'a CAPTCHA is asked for');
select is(pg_temp.admit('execute', 'hello', '{"inputs": {"name": "Ada"}, "user_agent": "captcha", "captcha": "failed"}') -> 'error' ->> 'error_code', 'CAPTCHA_INVALID', 'a failed one is refused');
select is(pg_temp.admit('execute', 'hello', '{"inputs": {"name": "Ada"}, "user_agent": "captcha", "captcha": "passed"}') ->> 'decision', 'allow', 'a passed one is admitted');

-- a visitor's own runs, CORS preflights, shed requests
select (:'run'::jsonb -> 'session' ->> 'id') as run_session, (:'run'::jsonb -> 'execution' ->> 'id') as run_id \gset
select is(pg_temp.admit('execution', 'hello', jsonb_build_object('session_id', :'run_session', 'execution_id', :'run_id'))
          -> 'execution' ->> 'id', :'run_id', 'a visitor reads their own run');
select is(pg_temp.admit('execution', 'hello', jsonb_build_object('execution_id', :'run_id')) -> 'error' ->> 'error_code',
          'EXECUTION_NOT_FOUND', 'another session cannot');
select is(test.error_code_of($$select pg_temp.admit('execution', 'hello')$$), 'VALIDATION_FAILED', 'an execution id is required');
select (select count(*) from flowgres.runtime_events where app_id = :'app') as events_before \gset
select is(pg_temp.admit('preflight', 'hello', '{"origin": "https://shop.example"}') - 'app' - 'session' - 'rate_limit',
          '{"decision": "allow", "status": 204, "origin_allowed": true, "allowed_origins": ["https://shop.example"]}',
          'a preflight from an allowed origin is answered with the list');
select is(pg_temp.admit('preflight', 'hello', '{"origin": "https://evil.example"}') -> 'error' ->> 'error_code',
          'ORIGIN_NOT_ALLOWED', 'one from elsewhere is refused');
select is((select count(*) from flowgres.runtime_events where app_id = :'app'), :'events_before'::bigint,
          'preflights record nothing');
select is(flowgres.runtime_load_shed_record(jsonb_build_array(
              jsonb_build_object('workspace', :'ws_slug', 'app', 'hello', 'count', 3, 'daemon', 'd1'),
              jsonb_build_object('workspace', 'no-such-place', 'count', 1))), 1, 'shed requests are recorded for known apps');
select is((select details from flowgres.runtime_events where app_id = :'app' and event_type = 'runtime.load_shed'),
          '{"count": 3, "daemon": "d1"}', 'one event with the count');
select is(flowgres.runtime_load_shed_record('"junk"'), 0, 'junk records nothing');

-- clients that send no session: one derived session per address, user agent and day
select pg_temp.admit('execute', 'hello', '{"inputs": {"name": "Ada"}, "user_agent": "script-a"}') -> 'session' ->> 'id' as derived \gset
select is(pg_temp.admit('execute', 'hello', '{"inputs": {"name": "Ada"}, "user_agent": "script-a"}') -> 'session' ->> 'id', :'derived',
          'a client that sends no session is given the same one again');
select is((select count(*) from flowgres.app_sessions where id = :'derived'), 1::bigint, 'one session row for its requests');
select is(substr(:'derived', 15, 1), '8', 'a keyed (version 8) id: computed under the installation key, not guessable');
select isnt(pg_temp.admit('execute', 'hello', '{"inputs": {"name": "Ada"}, "user_agent": "script-b"}') -> 'session' ->> 'id', :'derived',
            'another user agent is another client');
select isnt(pg_temp.admit('execute', 'hello', '{"inputs": {"name": "Ada"}, "user_agent": "script-a", "ip": "203.0.113.8"}') -> 'session' ->> 'id',
            :'derived', 'so is another address');
select isnt(pg_temp.admit('entry', 'hello', '{"user_agent": "script-a"}') -> 'session' ->> 'id',
            pg_temp.admit('entry', 'hello', '{"user_agent": "script-a"}') -> 'session' ->> 'id',
            'an entry (a page load) starts a session of its own');
update flowgres.app_sessions set blocked_at = now(), blocked_reason = 'test' where id = :'derived';
select is(pg_temp.admit('execute', 'hello', '{"inputs": {"name": "Ada"}, "user_agent": "script-a"}') -> 'error' ->> 'error_code',
          'SESSION_BLOCKED', 'blocking its session blocks the client that sends none');

-- lifecycle and workspace status
select test.act_as(:'owner');
select flowgres.app_deprecate(:'app');
select test.act_as(null);
select is(pg_temp.admit('entry', 'hello') -> 'error' ->> 'error_code', 'APP_DEPRECATED', 'a deprecated app takes no new sessions');
select test.act_as(:'owner');
select flowgres.app_archive(:'app');
select test.act_as(null);
select is(pg_temp.admit('entry', 'hello') -> 'error' ->> 'error_code', 'APP_ARCHIVED', 'an archived app is gone');
select flowgres.workspace_update(:'ws', '{"status": "suspended"}');
select is(pg_temp.admit('entry', 'hello') -> 'error' ->> 'error_code', 'WORKSPACE_SUSPENDED', 'a suspended workspace serves nothing');

-- malformed requests and callers
select is(test.error_code_of($$select flowgres.runtime_admit('{"action": "drop", "workspace": "x", "ip": "1.2.3.4"}')$$), 'VALIDATION_FAILED', 'unknown actions are refused');
select test.act_as(:'owner');
select is(test.error_code_of($$select flowgres.runtime_admit('{"action": "entry", "workspace": "x", "ip": "1.2.3.4"}')$$), 'PERMISSION_DENIED', 'users cannot call admission');

select * from finish();
rollback;
