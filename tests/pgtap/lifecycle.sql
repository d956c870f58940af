-- The app state machine: every (state, action) pair, legal or STATE_CONFLICT; rollback rules.
begin;
select plan(25);

select test.new_user('pub@example.com') as pub \gset
select test.home_of(:'pub') as ws \gset
select test.act_as(null);
select flowgres.workspace_update(:'ws', '{"plan": "enterprise"}');
select test.act_as(:'pub');

-- A fresh app in `state`, with versions 1.0.0 and 2.0.0 (2.0.0 current when published).
create function test.app_in_state(workspace uuid, state text) returns uuid language plpgsql as $$
declare app uuid;
begin
    app := (flowgres.app_create(workspace, 'App ' || state || ' ' || clock_timestamp()::text) ->> 'id')::uuid;
    perform flowgres.version_create(app, '1.0.0', test.workflow());
    perform flowgres.version_create(app, '2.0.0', test.workflow());
    if state in ('published', 'deprecated') then perform flowgres.app_publish(app); end if;
    if state = 'deprecated' then perform flowgres.app_deprecate(app); end if;
    if state = 'archived' then perform flowgres.app_archive(app); end if;
    return app;
end $$;

create function test.attempt(app uuid, action text) returns text language plpgsql as $$
begin
    return case action
        when 'publish' then test.error_code_of(format('select flowgres.app_publish(%L)', app))
        when 'rollback' then test.error_code_of(format(
            'select flowgres.app_rollback(%L, (select id from flowgres.app_versions where app_id = %L and version = %L))', app, app, '1.0.0'))
        when 'deprecate' then test.error_code_of(format('select flowgres.app_deprecate(%L)', app))
        when 'archive' then test.error_code_of(format('select flowgres.app_archive(%L)', app))
    end;
end $$;

select is(test.attempt(test.app_in_state(:'ws', state), action), expected, format('%s --%s--> %s', state, action, expected))
from (values
    ('draft', 'publish', 'ok'), ('draft', 'rollback', 'STATE_CONFLICT'),
    ('draft', 'deprecate', 'STATE_CONFLICT'), ('draft', 'archive', 'ok'),
    ('published', 'publish', 'ok'), ('published', 'rollback', 'ok'),
    ('published', 'deprecate', 'ok'), ('published', 'archive', 'STATE_CONFLICT'),
    ('deprecated', 'publish', 'STATE_CONFLICT'), ('deprecated', 'rollback', 'STATE_CONFLICT'),
    ('deprecated', 'deprecate', 'STATE_CONFLICT'), ('deprecated', 'archive', 'ok'),
    ('archived', 'publish', 'STATE_CONFLICT'), ('archived', 'rollback', 'STATE_CONFLICT'),
    ('archived', 'deprecate', 'STATE_CONFLICT'), ('archived', 'archive', 'STATE_CONFLICT')
) as transitions(state, action, expected);

-- The details of each transition.
select flowgres.app_create(:'ws', 'Walkthrough') ->> 'id' as app \gset
select is(test.error_code_of(format('select flowgres.app_publish(%L)', :'app')), 'VALIDATION_FAILED', 'an app without versions cannot be published');
select flowgres.version_create(:'app', '1.0.0', test.workflow()) ->> 'id' as v1 \gset
select flowgres.version_create(:'app', '1.1.0', test.workflow()) ->> 'id' as v2 \gset
select is(flowgres.app_publish(:'app', :'v1', '{"access_mode": "public_anonymous"}') -> 'current_version' ->> 'version', '1.0.0', 'publish sets the chosen version');
select is((select access_mode from flowgres.app_access_policies where app_id = :'app'), 'public_anonymous', 'publish applies the access policy given with it');
select isnt((select published_at from flowgres.apps where id = :'app'), null, 'published_at is set');
select is(flowgres.app_publish(:'app') -> 'current_version' ->> 'version', '1.1.0', 'publishing again defaults to the newest version');
select is(test.error_code_of(format('select flowgres.app_rollback(%L, %L)', :'app', :'v2')), 'VALIDATION_FAILED', 'rollback needs an earlier version than the current one');
select is(flowgres.app_rollback(:'app', :'v1') -> 'current_version' ->> 'version', '1.0.0', 'rollback points at the earlier version');
select is(test.error_code_of(format('select flowgres.app_publish(%L, gen_random_uuid())', :'app')), 'VERSION_NOT_FOUND', 'publishing an unknown version is refused');
select is(test.audit_count(:'ws', 'app.publish') >= 2 and test.audit_count(:'ws', 'app.rollback') >= 1, true, 'transitions are audited');

select * from finish();
rollback;
