-- user_create, user_get, current_actor: operator-only creation, default workspace, mapping.
begin;
select plan(22);

select test.new_user('ada@example.com', 'Ada Lovelace') as ada \gset
select is((select count(*) from flowgres.users where id = :'ada'), 1::bigint, 'user_create inserts the user');
select is((select count(*) from flowgres.workspaces where owner_user_id = :'ada'), 1::bigint, 'every new user gets a default workspace');
select test.home_of(:'ada') as ada_home \gset
select is((select slug from flowgres.workspaces where id = :'ada_home'), 'ada', 'the default slug comes from the email');
select is((select settings ->> 'is_default' from flowgres.workspaces where id = :'ada_home'), 'true', 'it is marked as the default workspace');
select is((select array_agg(name order by name) from flowgres.workspace_roles where workspace_id = :'ada_home'),
          array['admin', 'member', 'owner'], 'it has the owner, admin and member roles');
select is((select r.name from flowgres.workspace_members m join flowgres.workspace_roles r on r.id = m.role_id
           where m.workspace_id = :'ada_home' and m.user_id = :'ada'), 'owner', 'the user is its owner');
select is(test.audit_count(:'ada_home', 'user.create'), 1::bigint, 'user.create is audited');

select test.new_user('ada2@example.com') as ada2 \gset
select is((select slug from flowgres.workspaces where owner_user_id = :'ada2'), 'ada2', 'slugs differ per user');
select test.new_user('ADA@Example.org') as ada3 \gset
select isnt((select slug from flowgres.workspaces where owner_user_id = :'ada3'), 'ada', 'a taken slug gets a suffix');

select is(test.error_code_of($$select flowgres.user_create('ADA@EXAMPLE.COM', 'Twin')$$), 'USER_EMAIL_TAKEN', 'emails are unique regardless of case');
select is(test.error_code_of($$select flowgres.user_create('not-an-email', 'X')$$), 'VALIDATION_FAILED', 'a malformed email is refused');
select is(test.error_code_of($$select flowgres.user_create(null, 'X')$$), 'VALIDATION_FAILED', 'a NULL email is refused');
select is(test.error_code_of($$select flowgres.user_create('x@example.com', E'bad\nname')$$), 'VALIDATION_FAILED', 'control characters in names are refused');
select is(test.error_code_of($$select flowgres.user_create('x@example.com', 'X', 'no_such_role_here')$$), 'VALIDATION_FAILED', 'pg_role must exist');
select is(test.error_code_of($$select flowgres.user_create('x@example.com', 'X', 'postgres')$$), 'VALIDATION_FAILED', 'a superuser role cannot be mapped');

select test.act_as(:'ada');
select is(test.error_code_of($$select flowgres.user_create('eve@example.com', 'Eve')$$), 'PERMISSION_DENIED', 'only the operator creates users');
select is(flowgres.current_actor(), :'ada'::uuid, 'current_actor follows flowgres.actor for superusers and the service role');
select is((flowgres.user_get(:'ada')) ->> 'email', 'ada@example.com', 'a user reads themself');
select is(test.error_code_of(format('select flowgres.user_get(%L)', :'ada2')), 'USER_NOT_FOUND', 'a user does not see strangers');

select set_config('flowgres.actor', 'not-a-uuid', true);
select is(test.error_code_of($$select flowgres.workspace_list()$$), 'UNAUTHENTICATED', 'a malformed flowgres.actor is refused, not ignored');
select set_config('flowgres.actor', gen_random_uuid()::text, true);
select is(test.error_code_of($$select flowgres.workspace_list()$$), 'UNAUTHENTICATED', 'an unknown flowgres.actor is refused');
select test.act_as(null);
select is(flowgres.current_actor(), null, 'the operator has no user id');

select * from finish();
rollback;
