-- Helpers the pgTAP files share, loaded once into the test database by scripts/test.sh.
-- They act through the real SQL API: nothing here writes flowgres tables directly.
create schema if not exists test;

-- Creates a user as the operator and returns its id.
create or replace function test.new_user(email text, display_name text default 'Test User') returns uuid
language plpgsql as $$
declare result jsonb;
begin
    perform set_config('flowgres.actor', '', true);
    result := flowgres.user_create(email, display_name);
    return (result -> 'user' ->> 'id')::uuid;
end $$;

-- The default workspace user_create made for the user.
create or replace function test.home_of(user_id uuid) returns uuid
language sql as $$ select id from flowgres.workspaces where owner_user_id = user_id order by created_at limit 1 $$;

-- Act as a user ('' or null: the operator) for the rest of the transaction.
create or replace function test.act_as(user_id uuid) returns void
language sql as $$ select set_config('flowgres.actor', coalesce(user_id::text, ''), true) $$;

-- A user who is an active member of `workspace` with `role`, invited by its owner.
create or replace function test.new_member(workspace uuid, email text, role text) returns uuid
language plpgsql as $$
declare
    member uuid := test.new_user(email);
    owner uuid := (select owner_user_id from flowgres.workspaces where id = workspace);
begin
    perform test.act_as(owner);
    perform flowgres.member_invite(workspace, email, role);
    perform test.act_as(member);
    perform flowgres.member_accept(workspace);
    perform test.act_as(null);
    return member;
end $$;

-- The SQLSTATE a statement raises, or 'ok'.
create or replace function test.sqlstate_of(statement text) returns text
language plpgsql as $$
begin
    execute statement;
    return 'ok';
exception when others then
    return sqlstate;
end $$;

-- The flowgres error_code in the DETAIL of the error a statement raises, or 'ok'. Errors that
-- are not flowgres's come back as 'SQLSTATE: message', so a failing test shows what happened.
create or replace function test.error_code_of(statement text) returns text
language plpgsql as $$
declare detail text;
begin
    execute statement;
    return 'ok';
exception when others then
    get stacked diagnostics detail = pg_exception_detail;
    if detail like '{"error_code"%' then
        return detail::jsonb ->> 'error_code';
    end if;
    return sqlstate || ': ' || sqlerrm;
end $$;

create or replace function test.audit_count(workspace uuid, action_name text) returns bigint
language sql as $$ select count(*) from flowgres.audit_logs where workspace_id = workspace and action = action_name $$;

-- The smallest valid workflow (start → output), for tests about versions rather than graphs.
create or replace function test.workflow() returns jsonb
language sql immutable as $$
    select '{"nodes": [{"id": "start", "type": "start"}, {"id": "out", "type": "output"}],
             "edges": [{"source": "start", "target": "out"}]}'::jsonb
$$;

-- The DETAIL document (jsonb) of the flowgres error a statement raises; null when it succeeds.
create or replace function test.error_detail_of(statement text) returns jsonb
language plpgsql as $$
declare
    detail text;
begin
    execute statement;
    return null;
exception when others then
    get stacked diagnostics detail = pg_exception_detail;
    return detail::jsonb;
end $$;

-- A public app, published: an owner on the enterprise plan, app `slug` in their home workspace
-- with version 1.0.0 (start, taking `name`, → output) published for anonymous visitors. Acts
-- as nobody (the daemon, the operator) afterwards. Answers {owner, workspace, workspace_slug,
-- app, version}.
create or replace function test.published_app(email text, slug text) returns jsonb
language plpgsql as $$
declare
    owner uuid := test.new_user(email);
    workspace uuid := test.home_of(owner);
    app uuid;
    version uuid;
begin
    perform test.act_as(owner);
    update flowgres.workspaces set plan = 'enterprise' where id = workspace;
    app := flowgres.app_create(workspace, initcap(slug), slug) ->> 'id';
    version := flowgres.version_create(app, '1.0.0',
        '{"nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"name": "name"}]}}, {"id": "out", "type": "output"}],
          "edges": [{"source": "start", "target": "out"}]}') ->> 'id';
    perform flowgres.app_publish(app, version, '{"access_mode": "public_anonymous"}');
    perform test.act_as(null);
    return jsonb_build_object('owner', owner, 'workspace', workspace, 'app', app, 'version', version,
                              'workspace_slug', (select w.slug from flowgres.workspaces w where w.id = workspace));
end $$;
