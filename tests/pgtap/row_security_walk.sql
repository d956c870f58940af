-- Every relation in schema flowgres that a mapped role can select from, partitions included,
-- shows it only its own workspaces' rows: the walk reads the catalog, so a table added later
-- is covered, and one it cannot classify fails the test until someone says what it holds.
begin;
select plan(6);

create role walk_alice nologin;
create role walk_bob nologin;
grant usage on schema test to walk_alice, walk_bob;

select test.act_as(null);
select (flowgres.user_create('walk-alice@example.com', 'Alice', 'walk_alice')) -> 'user' ->> 'id' as alice \gset
select (flowgres.user_create('walk-bob@example.com', 'Bob', 'walk_bob')) -> 'user' ->> 'id' as bob \gset
select test.home_of(:'bob') as bob_ws \gset
select test.act_as(:'bob');
select flowgres.app_create(:'bob_ws', 'Bob App') ->> 'id' as bob_app \gset
select flowgres.api_key_create('bob key') is not null;
select flowgres.secret_create(:'bob_ws', 'BOB_TOKEN', '{"sealed": "enc:v1:k:n:c", "preview": "…"}') is not null;
select test.act_as(null);

-- Bob's rows in every partition of the partitioned tables: this month's, the default one, and
-- a partition made after the extension was installed (as the maintenance worker makes them).
select flowgres.ensure_monthly_partitions(parent, 6) from unnest(array['audit_logs', 'runtime_events', 'usage_events']) parent;
insert into flowgres.audit_logs (workspace_id, actor_role, action, target_type, created_at)
select :'bob_ws', 'owner', 'app.create', 'app', at from unnest(array[now(), now() - interval '5 years', now() + interval '5 months']) at;
insert into flowgres.runtime_events (workspace_id, event_type, created_at)
select :'bob_ws', 'runtime.entry', at from unnest(array[now(), now() - interval '5 years', now() + interval '5 months']) at;
insert into flowgres.usage_events (workspace_id, dimension, quantity, created_at)
select :'bob_ws', 'requests', 1, at from unnest(array[now(), now() - interval '5 years', now() + interval '5 months']) at;

-- Rows of relation `rel` the acting role sees that belong to workspaces it is no member of
-- (or to users it shares no workspace with); NULL for a relation the walk cannot classify.
create function test.foreign_rows(rel regclass) returns bigint
language plpgsql as $$
declare
    mine uuid[] := flowgres.actor_workspace_ids();
    n bigint;
begin
    if exists (select 1 from pg_attribute where attrelid = rel and attname = 'workspace_id' and not attisdropped)
       and has_column_privilege(rel, 'workspace_id', 'select') then
        execute format('select count(*) from %s where workspace_id <> all ($1)', rel) into n using mine;
    elsif rel = 'flowgres.workspaces'::regclass then
        select count(*) into n from flowgres.workspaces where id <> all (mine);
    elsif rel = 'flowgres.users'::regclass then
        select count(*) into n from flowgres.users u where u.id <> flowgres.current_actor()
            and not exists (select 1 from flowgres.workspace_members m where m.user_id = u.id and m.workspace_id = any (mine));
    elsif rel = 'flowgres.api_keys'::regclass then
        select count(*) into n from flowgres.api_keys where user_id <> flowgres.current_actor();
    elsif rel = 'flowgres.billing_plans'::regclass then
        n := 0;  -- the plans' public terms: nobody's data
    end if;
    return n;
end $$;
grant execute on function test.foreign_rows(regclass) to walk_alice;

create temp table walked (relname text, partition boolean, foreign_rows bigint);
grant insert on walked to public;

set local role walk_alice;
insert into walked
select c.relname, c.relispartition, test.foreign_rows(c.oid::regclass)
from pg_class c
where c.relnamespace = 'flowgres'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')
  and has_any_column_privilege(c.oid, 'select');
reset role;

select is((select string_agg(relname, ', ' order by relname) from walked where foreign_rows is null), null,
          'every relation a mapped role can read is classified');
select is((select string_agg(relname || ' (' || foreign_rows || ')', ', ' order by relname) from walked where foreign_rows > 0), null,
          'no relation shows a mapped role another workspace''s rows');
select ok((select count(*) from walked where relname in ('audit_logs', 'runtime_events', 'usage_events', 'apps')) = 4,
          'the walk covers the partitioned tables and the app tables');
select is((select string_agg(relname, ', ') from walked where partition), null,
          'no partition is readable directly');
select is((select string_agg(c.relname, ', ') from pg_inherits i join pg_class c on c.oid = i.inhrelid
           where c.relnamespace = 'flowgres'::regnamespace and c.relkind in ('r', 'p') and not c.relrowsecurity), null,
          'every partition, the new ones included, has row security on');
select is((select count(*) from flowgres.audit_logs where workspace_id = :'bob_ws' and action = 'app.create'), 4::bigint,
          'the superuser still reads every partition through the parent');

select * from finish();
rollback;
