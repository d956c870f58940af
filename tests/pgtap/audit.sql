-- Audit rows are written with their mutation and rolled back with it; failures write none.
begin;
select plan(9);

select test.new_user('aud@example.com') as who \gset
select test.home_of(:'who') as ws \gset
select test.act_as(:'who');

select flowgres.app_create(:'ws', 'Audited') ->> 'id' as app \gset
select is((select actor_user_id from flowgres.audit_logs where action = 'app.create' and target_id = :'app'), :'who'::uuid, 'the audit row names the actor');
select is((select target_type from flowgres.audit_logs where action = 'app.create' and target_id = :'app'), 'app', 'and the target');
select ok((select tableoid::regclass::text from flowgres.audit_logs where action = 'app.create' and target_id = :'app') like 'flowgres.audit_logs_2%',
          'rows land in the monthly partition');

savepoint before_update;
select flowgres.app_update(:'app', '{"name": "Renamed"}');
select is(test.audit_count(:'ws', 'app.update'), 1::bigint, 'the update is audited');
rollback to savepoint before_update;
select is(test.audit_count(:'ws', 'app.update'), 0::bigint, 'rolling back the mutation removes its audit row');
select is((select name from flowgres.apps where id = :'app'), 'Audited', 'and the mutation');

select test.error_code_of(format('select flowgres.app_update(%L, %L)', :'app', '{"slug": "API"}'));
select is(test.audit_count(:'ws', 'app.update'), 0::bigint, 'a refused mutation writes no audit row');

select test.act_as(null);
select flowgres.workspace_update(:'ws', '{"status": "suspended"}');
select is((select actor_role from flowgres.audit_logs where action = 'workspace.update' and workspace_id = :'ws'), current_user::text,
          'operator actions record the database role');
select is(flowgres.audit_logs_ensure_partitions(2), 0, 'partitions for the coming months exist already');

select * from finish();
rollback;
