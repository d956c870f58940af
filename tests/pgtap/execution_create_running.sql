-- Trial runs the daemon runs at once: created running in one insert, as the caller (its
-- permission, quota and audit row), claimed by the daemon; only the daemon's role may say so.
begin;
select plan(21);

create role running_mapped nologin;
grant usage on schema flowgres, test to running_mapped;
select test.act_as(null);
select (flowgres.user_create('mapped-runner@example.com', 'Mapped', 'running_mapped')) -> 'user' ->> 'id' as mapped \gset
select test.home_of(:'mapped') as mapped_ws \gset
select test.new_user('owner-runner@example.com') as owner \gset
select test.new_user('outsider-runner@example.com') as outsider \gset
select test.home_of(:'owner') as ws \gset
select test.act_as(:'owner');
select flowgres.app_create(:'ws', 'Runs at once') ->> 'id' as app \gset
select is(test.error_code_of(format('select flowgres.execution_create_running(%L, %L, null, %L)', :'app', '{}', 'daemon-1')),
          'VERSION_NOT_FOUND', 'an app without versions cannot run');
select flowgres.version_create(:'app', '1.0.0', test.workflow()) ->> 'id' as v1 \gset

-- The daemon, acting for the owner.
select coalesce(sum(n_tup_upd), 0) as updates_before from pg_stat_xact_user_tables where relid = 'flowgres.executions'::regclass \gset
select flowgres.execution_create_running(:'app', '{"name": "Ada"}', null, 'daemon-1') as created \gset
select :'created'::jsonb ->> 'id' as run \gset
select is(:'created'::jsonb ->> 'status', 'running', 'created running');
select is(:'created'::jsonb ->> 'claimed_by', 'daemon-1', 'claimed by the daemon that runs it');
select ok((:'created'::jsonb ->> 'started_at') is not null and (:'created'::jsonb ->> 'heartbeat_at') is not null,
          'started, with its first heartbeat');
select is(:'created'::jsonb -> 'workflow', (select workflow from flowgres.app_versions where id = :'v1'),
          'answered with its version''s workflow, as execution_start is');
select is(:'created'::jsonb ->> 'triggered_by', :'owner', 'triggered by the caller');
select is((select coalesce(sum(n_tup_upd), 0) from pg_stat_xact_user_tables where relid = 'flowgres.executions'::regclass),
          :'updates_before'::numeric, 'written once: no update of the row it inserted');
select is((select count(*) from flowgres.audit_logs where action = 'execution.create' and target_id = :'run'
             and actor_user_id = :'owner'::uuid), 1::bigint, 'audited as the caller''s creation');
select is((select count(*) from flowgres.usage_events where execution_id = :'run' and dimension = 'requests'), 1::bigint,
          'its request billed');
select test.act_as(null);  -- the daemon acts as the operator for what the run does
select is(flowgres.execution_heartbeat(:'run') ->> 'status', 'running', 'it beats like any running run');
select is(flowgres.execution_finish(:'run', 'completed', '{"x": 1}') ->> 'status', 'completed', 'and ends like one');

-- What the caller may not do, it may not do this way either.
select test.act_as(:'outsider');
select is(test.error_code_of(format('select flowgres.execution_create_running(%L, %L, null, %L)', :'app', '{}', 'daemon-1')),
          test.error_code_of(format('select flowgres.execution_create(%L)', :'app')), 'a stranger is refused as by execution_create');
select test.act_as(:'owner');
select is(test.error_code_of(format('select flowgres.execution_create_running(%L, %L, null, null)', :'app', '{}')),
          'VALIDATION_FAILED', 'claimed_by is required');
select is(test.error_code_of(format('select flowgres.execution_create_running(%L, %L, null, %L)', :'app', '{}', repeat('d', 201))),
          'VALIDATION_FAILED', 'claimed_by is at most 200 characters');
select is(test.error_code_of(format('select flowgres.execution_create_running(%L, %L, null, %L)', :'app', '[1]', 'daemon-1')),
          'VALIDATION_FAILED', 'inputs must be an object');
select is(test.error_code_of(format('select flowgres.execution_create_running(%L, %L, null, %L)', :'app', '{}', E'daemon\n1')),
          'VALIDATION_FAILED', 'claimed_by has no control characters');
select ok(test.error_code_of(format('select flowgres.execution_create_running(%L, %L, null, %L)', 'not-a-uuid', '{}', 'daemon-1'))
          like '22P02:%', 'app_id must be an id (refused by its type)');
select flowgres.execution_create_running(:'app', jsonb_build_object('name', repeat('<script>', 100000)),
                                         null, $$x'); drop table flowgres.executions; --<b>$$ || repeat('é', 150)) ->> 'id' as hostile \gset
select is((select (claimed_by = $$x'); drop table flowgres.executions; --<b>$$ || repeat('é', 150)) || '|' ||
                   length(claimed_by) || '|' || length(inputs ->> 'name')
           from flowgres.executions where id = :'hostile'),
          'true|192|800000', 'hostile text (192 characters) and an 800 kB input kept verbatim, as text');

-- Only the daemon's role says a run is running, and where: not a user's own SQL role, even
-- one granted the function.
select test.act_as(null);
create temp table attempts (what text, error_code text);
grant insert on attempts to public;
set local role running_mapped;
insert into attempts select 'not granted', test.error_code_of(
    format('select flowgres.execution_create_running(%L, %L, null, %L)', :'app', '{}', 'forged'));
reset role;
grant execute on function flowgres.execution_create_running(uuid, jsonb, uuid, text) to running_mapped;
set local role running_mapped;
insert into attempts select 'granted', test.error_code_of(
    format('select flowgres.execution_create_running(%L, %L, null, %L)', :'app', '{}', 'forged'));
reset role;
select ok((select error_code from attempts where what = 'not granted') like '42501:%',
          'a user''s SQL role cannot call it (not granted: PostgreSQL refuses)');
select is((select error_code from attempts where what = 'granted'), 'PERMISSION_DENIED', 'nor when granted it by mistake');
select is((select count(*) from flowgres.executions where claimed_by = 'forged'), 0::bigint, 'and nothing was created');

select * from finish();
rollback;
