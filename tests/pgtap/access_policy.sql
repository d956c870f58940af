-- Access policies: read, validated update, who may change them.
begin;
select plan(12);

select test.new_user('guard@example.com') as guard \gset
select test.home_of(:'guard') as ws \gset
select test.new_member(:'ws', 'dev@example.com', 'member') as dev \gset
select test.act_as(:'guard');
select flowgres.app_create(:'ws', 'Guarded') ->> 'id' as app \gset

select is((flowgres.access_policy_get(:'app')) -> 'rate_limit' -> 'per_ip', '{"max_requests": 120, "window_seconds": 60}'::jsonb, 'the default per-IP limit is 120 per 60 s');
select is((flowgres.access_policy_update(:'app', '{"access_mode": "public_auth", "data_classification": "internal",
           "rate_limit": {"per_session": {"max_requests": 10, "window_seconds": 60}},
           "allowed_origins": ["https://shop.example"], "blocked_ips": ["198.51.100.0/24"],
           "gray_ips": ["203.0.113.9"], "gray_policy": {"max_requests": 5, "window_seconds": 60, "require_captcha": true}}')) ->> 'access_mode',
          'public_auth', 'access_policy_update applies the changes');
select is((select rate_limit from flowgres.app_access_policies where app_id = :'app'),
          '{"per_ip": {"max_requests": 120, "window_seconds": 60}, "per_session": {"max_requests": 10, "window_seconds": 60}}'::jsonb,
          'rate_limit merges per window');
select is(test.audit_count(:'ws', 'access_policy.update'), 1::bigint, 'policy changes are audited');

select is(test.error_code_of(format('select flowgres.access_policy_update(%L, %L)', :'app', '{"access_mode": "public_anonymous"}')),
          'VALIDATION_FAILED', 'anonymous access with internal data is refused');
select is(test.error_code_of(format('select flowgres.access_policy_update(%L, %L)', :'app', '{"rate_limit": {"per_ip": {"max_requests": -1, "window_seconds": 60}}}')),
          'VALIDATION_FAILED', 'negative limits are refused');
select is(test.error_code_of(format('select flowgres.access_policy_update(%L, %L)', :'app', '{"allowed_origins": ["javascript:alert(1)"]}')),
          'VALIDATION_FAILED', 'script origins are refused');
select is(test.error_code_of(format('select flowgres.access_policy_update(%L, %L)', :'app', '{"blocked_ips": ["1.2.3.4''; --"]}')),
          'VALIDATION_FAILED', 'malformed addresses are refused');
select is(test.error_code_of(format('select flowgres.access_policy_update(%L, %L)', :'app', '{"innerHTML": "<b>"}')),
          'VALIDATION_FAILED', 'unknown keys are refused');
select is((select access_mode || '/' || data_classification from flowgres.app_access_policies where app_id = :'app'),
          'public_auth/internal', 'refused updates change nothing');

select test.act_as(:'dev');
select is((flowgres.access_policy_get(:'app')) ->> 'access_mode', 'public_auth', 'a member with app_edit reads the policy');
select is(test.error_code_of(format('select flowgres.access_policy_update(%L, %L)', :'app', '{"require_captcha": true}')),
          'PERMISSION_DENIED', 'but needs app_publish to change it');

select * from finish();
rollback;
