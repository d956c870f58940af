-- The permission matrix of seed §30, each role × each action, and has_permission.
begin;
select plan(51);

select test.new_user('own@example.com') as owner \gset
select test.home_of(:'owner') as ws \gset
select test.act_as(null);
select flowgres.workspace_update(:'ws', '{"plan": "enterprise"}');
select test.new_member(:'ws', 'adm@example.com', 'admin') as admin \gset
select test.new_member(:'ws', 'mem@example.com', 'member') as member \gset
select test.new_user('out@example.com') as outsider \gset
select test.act_as(:'owner');
select flowgres.app_create(:'ws', 'Matrix') ->> 'id' as app \gset
select flowgres.version_create(:'app', '0.1.0', test.workflow());

create function test.outcome(actor uuid, statement text) returns text language plpgsql as $$
begin
    perform test.act_as(actor);
    return test.error_code_of(statement);
end $$;

create temp table roles (role text, user_id uuid, ordinal int);
insert into roles values ('owner', :'owner', 1), ('admin', :'admin', 2), ('member', :'member', 3);

-- %1$s is the workspace id, %2$s the app id, %3$s the role's ordinal (for unique values),
-- %4$s a number that grows in the order the roles run (versions must grow).
select test.new_user('inv' || i || '@example.com') from generate_series(1, 3) i;
create temp table actions (action text, statement text, allowed text[]);
insert into actions values
    ('workspace_update name', $$select flowgres.workspace_update('%1$s', '{"name": "Renamed %3$s"}')$$, '{owner}'),
    ('workspace_update plan', $$select flowgres.workspace_update('%1$s', '{"plan": "enterprise"}')$$, '{}'),
    ('member_list', $$select flowgres.member_list('%1$s')$$, '{owner,admin}'),
    ('member_invite', $$select flowgres.member_invite('%1$s', 'inv%3$s@example.com')$$, '{owner,admin}'),
    ('app_create', $$select flowgres.app_create('%1$s', 'Made by %3$s')$$, '{owner,admin,member}'),
    ('app_get', $$select flowgres.app_get('%2$s')$$, '{owner,admin,member}'),
    ('app_list', $$select flowgres.app_list('%1$s')$$, '{owner,admin,member}'),
    ('app_update', $$select flowgres.app_update('%2$s', '{"description": "by %3$s"}')$$, '{owner,admin,member}'),
    ('version_create', $$select flowgres.version_create('%2$s', '%4$s.0.0', test.workflow())$$, '{owner,admin,member}'),
    ('access_policy_get', $$select flowgres.access_policy_get('%2$s')$$, '{owner,admin,member}'),
    ('app_publish', $$select flowgres.app_publish('%2$s')$$, '{owner,admin}'),
    ('access_policy_update', $$select flowgres.access_policy_update('%2$s', '{"require_captcha": true}')$$, '{owner,admin}'),
    ('secret_create', $$select flowgres.secret_create('%1$s', 'KEY_%3$s', '{"sealed": "enc:v1:k:n:c", "preview": "…"}')$$, '{owner,admin}'),
    ('secret_list', $$select flowgres.secret_list('%1$s')$$, '{owner,admin,member}'),
    ('workspace_delete', $$select flowgres.workspace_delete('%1$s')$$, '{owner}');

-- 15 actions × 3 roles; owner last so its workspace_delete runs after the others tried.
select is(test.outcome(r.user_id, format(a.statement, :'ws', :'app', r.ordinal, 10 - r.ordinal)),
          case when r.role = any (a.allowed) then 'ok' else 'PERMISSION_DENIED' end,
          format('%s: %s', r.role, a.action))
from actions a cross join roles r
order by r.ordinal desc, a.ctid;

select test.act_as(null);
select flowgres.workspace_restore(:'ws');
select is(test.outcome(:'outsider', format('select flowgres.workspace_get(%L)', :'ws')), 'WORKSPACE_NOT_FOUND', 'outsider: workspace_get');
select is(test.outcome(:'outsider', format('select flowgres.app_get(%L)', :'app')), 'APP_NOT_FOUND', 'outsider: app_get');
select is(test.outcome(:'outsider', format('select flowgres.has_permission(%L, %L, %L)', :'owner', :'ws', 'app_edit')), 'WORKSPACE_NOT_FOUND', 'outsider: has_permission about others');

select test.act_as(null);
select is(array(select p from unnest(array['members_manage','billing_manage','app_publish','app_edit','app_view_metrics','logs_view',
                                         'workspace_admin','apps_create','plan_view','plan_manage','secrets_manage']) p
                where flowgres.has_permission(r.user_id, :'ws', p)),
          case r.role
              when 'owner' then array['members_manage','billing_manage','app_publish','app_edit','app_view_metrics','logs_view',
                                      'workspace_admin','apps_create','plan_view','plan_manage','secrets_manage']
              when 'admin' then array['members_manage','app_publish','app_edit','app_view_metrics','logs_view','apps_create','plan_view','plan_manage',
                                      'secrets_manage']
              else array['app_edit','app_view_metrics','logs_view','apps_create','plan_view'] end,
          format('has_permission matrix for %s', r.role))
from roles r order by r.ordinal;

select * from finish();
rollback;
