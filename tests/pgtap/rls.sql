-- Row-level security: SQL roles mapped to users see only their workspaces' rows through plain
-- SELECTs, write only through the API, and unmapped roles act for nobody.
begin;
select plan(14);

create role rls_alice nologin;
create role rls_bob nologin;
create role rls_nobody nologin;
grant usage on schema flowgres to rls_nobody;
grant usage on schema test to rls_alice, rls_bob, rls_nobody;

select test.act_as(null);
select (flowgres.user_create('alice@example.com', 'Alice', 'rls_alice')) -> 'user' ->> 'id' as alice \gset
select (flowgres.user_create('bob@example.com', 'Bob', 'rls_bob')) -> 'user' ->> 'id' as bob \gset
select test.home_of(:'alice') as alice_ws \gset
select test.home_of(:'bob') as bob_ws \gset
select test.act_as(:'alice');
select flowgres.app_create(:'alice_ws', 'Alice App') ->> 'id' as alice_app \gset
select test.act_as(:'bob');
select flowgres.app_create(:'bob_ws', 'Bob App') ->> 'id' as bob_app \gset
select test.act_as(null);
select ok(pg_has_role('rls_alice', 'flowgres_user', 'member'), 'a mapped role joins flowgres_user');

-- What each role sees, captured while acting as it and asserted afterwards.
create temp table seen (who text, what text, n bigint);
grant insert on seen to public;

set local role rls_alice;
insert into seen select 'alice', 'actor', count(*) from (select flowgres.current_actor() = :'alice'::uuid as same) s where same;
insert into seen select 'alice', 'workspaces', count(*) from flowgres.workspaces;
insert into seen select 'alice', 'apps', count(*) from flowgres.apps;
insert into seen select 'alice', 'foreign apps', count(*) from flowgres.apps where id = :'bob_app';
insert into seen select 'alice', 'audit', count(*) from flowgres.audit_logs where workspace_id <> :'alice_ws';
insert into seen select 'alice', 'users', count(*) from flowgres.users;
insert into seen select 'alice', 'policies', count(*) from flowgres.app_access_policies;
insert into seen select 'alice', 'api app', count(*) from (select flowgres.app_create(:'alice_ws', 'Via SQL role')) s;
reset role;

set local role rls_bob;
insert into seen select 'bob', 'apps', count(*) from flowgres.apps;
insert into seen select 'bob', 'write', count(*) from (select test.sqlstate_of(format('insert into flowgres.apps (workspace_id, owner_user_id, name, slug) values (%L, %L, %L, %L)', :'alice_ws', :'bob', 'x', 'xyz')) as s) t where s = '42501';
insert into seen select 'bob', 'steal', count(*) from (select test.error_code_of(format('select flowgres.app_get(%L)', :'alice_app')) as s) t where s = 'APP_NOT_FOUND';
reset role;

set local role rls_nobody;
insert into seen select 'nobody', 'apps', count(*) from (select test.sqlstate_of('select * from flowgres.apps') as s) t where s = '42501';
insert into seen select 'nobody', 'unauthenticated', count(*) from (select test.error_code_of('select flowgres.workspace_list()') as s) t where s = 'UNAUTHENTICATED';
reset role;

select is((select n from seen where who = 'alice' and what = 'actor'), 1::bigint, 'current_actor maps the role to its user');
select is((select n from seen where who = 'alice' and what = 'workspaces'), 1::bigint, 'alice sees her workspace only');
select is((select n from seen where who = 'alice' and what = 'apps'), 1::bigint, 'alice sees her app only');
select is((select n from seen where who = 'alice' and what = 'foreign apps'), 0::bigint, 'bob''s app is invisible to alice');
select is((select n from seen where who = 'alice' and what = 'audit'), 0::bigint, 'so are other workspaces'' audit rows');
select is((select n from seen where who = 'alice' and what = 'users'), 1::bigint, 'alice sees no stranger''s user row');
select is((select n from seen where who = 'alice' and what = 'policies'), 1::bigint, 'alice sees her app''s policy only');
select is((select n from seen where who = 'alice' and what = 'api app'), 1::bigint, 'a mapped role uses the SQL API as its user');
select is((select n from seen where who = 'bob' and what = 'apps'), 1::bigint, 'bob sees his app only');
select is((select n from seen where who = 'bob' and what = 'write'), 1::bigint, 'tables are not writable directly');
select is((select n from seen where who = 'bob' and what = 'steal'), 1::bigint, 'the API hides alice''s app from bob');
select is((select n from seen where who = 'nobody' and what = 'apps'), 1::bigint, 'an unmapped role may not read the tables');
select is((select n from seen where who = 'nobody' and what = 'unauthenticated'), 1::bigint, 'and acts for nobody');

select * from finish();
rollback;
