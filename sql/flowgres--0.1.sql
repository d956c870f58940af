-- flowgres 0.1: the control plane's tables, row-level security and SQL API.
-- Every function is implemented in C++ (extension/src) and checks the actor, the permission
-- and the state machine itself; tables are written only through these functions.
\echo Use "CREATE EXTENSION flowgres" to load this file. \quit

-- Roles are cluster-wide and outlive the extension: create them only when missing.
--   flowgres_service: the daemon's roles are members; they may set flowgres.actor.
--   flowgres_user:    SQL users mapped to flowgres users (users.pg_role); read through RLS.
do $roles$
begin
    if not exists (select 1 from pg_roles where rolname = 'flowgres_service') then
        create role flowgres_service nologin;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'flowgres_user') then
        create role flowgres_user nologin;
    end if;
end
$roles$;

-- ---------------------------------------------------------------------------------------
-- Plans
-- ---------------------------------------------------------------------------------------

create table billing_plans (
    code                    text primary key check (code ~ '^[a-z][a-z0-9_]{1,31}$'),
    name                    text not null,
    max_apps                integer check (max_apps is null or max_apps >= 0),       -- null: unlimited
    max_members             integer check (max_members is null or max_members >= 0),
    monthly_requests        bigint check (monthly_requests is null or monthly_requests >= 0),
    monthly_tokens          bigint check (monthly_tokens is null or monthly_tokens >= 0),
    db_storage_bytes        bigint check (db_storage_bytes is null or db_storage_bytes >= 0),
    monthly_egress_bytes    bigint check (monthly_egress_bytes is null or monthly_egress_bytes >= 0),
    price_cents_per_month   integer not null default 0 check (price_cents_per_month >= 0),
    created_at              timestamptz not null default now(),
    updated_at              timestamptz not null default now()
);
comment on table billing_plans is 'Plan limits (seed §6.5, §14): free 3 apps, pro 20, enterprise unlimited. NULL means unlimited.';

insert into billing_plans (code, name, max_apps, max_members, monthly_requests, monthly_tokens,
                           db_storage_bytes, monthly_egress_bytes, price_cents_per_month) values
    ('free',       'Free',       3,    5,    10000,    1000000,   104857600,    1073741824,    0),
    ('pro',        'Pro',        20,   50,   1000000,  50000000,  10737418240,  107374182400,  2900),
    ('enterprise', 'Enterprise', null, null, null,     null,      null,         null,          0);

-- Plan rows edited by a DBA survive pg_dump; the seeded ones come back with the extension.
select pg_catalog.pg_extension_config_dump('billing_plans', 'where code not in (''free'', ''pro'', ''enterprise'')');

-- ---------------------------------------------------------------------------------------
-- Users and workspaces
-- ---------------------------------------------------------------------------------------

create table users (
    id            uuid primary key default gen_random_uuid(),
    email         text not null check (char_length(email) between 3 and 254),
    display_name  text not null check (char_length(display_name) between 1 and 100),
    status        text not null default 'active' check (status in ('active', 'disabled')),
    pg_role       text constraint users_pg_role_key unique,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
-- Emails are unique regardless of case.
create unique index users_email_key on users (lower(email));

create table workspaces (
    id              uuid primary key default gen_random_uuid(),
    owner_user_id   uuid not null references users (id),
    name            text not null check (char_length(name) between 1 and 100),
    slug            text not null constraint workspaces_slug_key unique
                    check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' and char_length(slug) between 3 and 63),
    icon            text check (char_length(icon) <= 50),
    status          text not null default 'active'
                    check (status in ('active', 'suspended', 'deleted', 'cold_storage')),
    plan            text not null default 'free' references billing_plans (code),
    region          text check (char_length(region) <= 50),
    default_app_id  uuid,
    settings        jsonb not null default '{}' check (jsonb_typeof(settings) = 'object'),
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    deleted_at      timestamptz,
    check ((status = 'deleted') = (deleted_at is not null))
);
create index workspaces_owner_user_id_idx on workspaces (owner_user_id);
create index workspaces_status_idx on workspaces (status);
create index workspaces_deleted_at_idx on workspaces (deleted_at) where deleted_at is not null;

-- Old slugs keep resolving after a rename (seed §122); no workspace may take one.
create table workspace_slug_aliases (
    slug          text constraint workspace_slug_aliases_pkey primary key,
    workspace_id  uuid not null references workspaces (id) on delete cascade,
    created_at    timestamptz not null default now()
);
create index workspace_slug_aliases_workspace_id_idx on workspace_slug_aliases (workspace_id);

create table workspace_roles (
    id            uuid primary key default gen_random_uuid(),
    workspace_id  uuid not null references workspaces (id) on delete cascade,
    name          text not null check (name ~ '^[a-z][a-z0-9_]{1,31}$'),
    permissions   jsonb not null default '[]' check (jsonb_typeof(permissions) = 'array'),
    is_system     boolean not null default false,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    unique (workspace_id, name)
);

create table workspace_members (
    id            uuid primary key default gen_random_uuid(),
    workspace_id  uuid not null references workspaces (id) on delete cascade,
    user_id       uuid not null references users (id) on delete cascade,
    role_id       uuid not null references workspace_roles (id),
    status        text not null default 'active' check (status in ('invited', 'active')),
    invited_by    uuid references users (id) on delete set null,
    joined_at     timestamptz,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    constraint workspace_members_workspace_id_user_id_key unique (workspace_id, user_id),
    check ((status = 'active') = (joined_at is not null))
);
create index workspace_members_user_id_idx on workspace_members (user_id) where status = 'active';

-- ---------------------------------------------------------------------------------------
-- Apps, versions, access policies
-- ---------------------------------------------------------------------------------------

create table apps (
    id                  uuid primary key default gen_random_uuid(),
    workspace_id        uuid not null references workspaces (id) on delete cascade,
    owner_user_id       uuid not null references users (id),
    name                text not null check (char_length(name) between 1 and 200),
    slug                text not null
                        check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' and char_length(slug) between 3 and 63),
    icon                text check (char_length(icon) <= 50),
    description         text check (char_length(description) <= 2000),
    status              text not null default 'draft'
                        check (status in ('draft', 'published', 'deprecated', 'archived')),
    current_version_id  uuid,
    published_at        timestamptz,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    constraint apps_workspace_id_slug_key unique (workspace_id, slug),
    -- published and deprecated apps have been published, so they have a current version
    -- (an archived app may be an abandoned draft).
    check (status in ('draft', 'archived') or current_version_id is not null)
);
create index apps_status_idx on apps (status);
create index apps_workspace_id_created_at_idx on apps (workspace_id, created_at desc);

alter table workspaces add constraint workspaces_default_app_id_fkey
    foreign key (default_app_id) references apps (id) on delete set null;

create table app_slug_aliases (
    workspace_id  uuid not null references workspaces (id) on delete cascade,
    slug          text not null,
    app_id        uuid not null references apps (id) on delete cascade,
    created_at    timestamptz not null default now(),
    constraint app_slug_aliases_pkey primary key (workspace_id, slug)
);
create index app_slug_aliases_app_id_idx on app_slug_aliases (app_id);

create table app_versions (
    id            uuid primary key default gen_random_uuid(),
    app_id        uuid not null references apps (id) on delete cascade,
    workspace_id  uuid not null references workspaces (id) on delete cascade,
    version       text not null check (char_length(version) between 5 and 64),
    workflow      jsonb not null check (jsonb_typeof(workflow) = 'object'),
    ui_schema     jsonb not null default '{}' check (jsonb_typeof(ui_schema) = 'object'),
    db_schema     jsonb not null default '{}' check (jsonb_typeof(db_schema) = 'object'),
    config        jsonb not null default '{}' check (jsonb_typeof(config) = 'object'),
    changelog     text check (char_length(changelog) <= 10000),
    created_by    uuid references users (id) on delete set null,
    created_at    timestamptz not null default now(),
    -- Creation order, exact even within one transaction (where created_at ties); since each
    -- version must exceed the last, it is also semantic-version order.
    sequence      bigint generated always as identity,
    constraint app_versions_app_id_version_key unique (app_id, version)
);
create index app_versions_created_at_idx on app_versions (created_at);
create index app_versions_app_id_sequence_idx on app_versions (app_id, sequence desc);

alter table apps add constraint apps_current_version_id_fkey
    foreign key (current_version_id) references app_versions (id);

-- Versions are immutable: a published version must run tomorrow as it ran today.
create function app_versions_refuse_update() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
    raise exception 'app versions are immutable; create a new version instead'
        using errcode = 'FG052',
              detail = '{"error_code":"VERSION_IMMUTABLE","details":null}';
end
$$;
create trigger app_versions_immutable before update on app_versions
    for each row execute function app_versions_refuse_update();

create table app_access_policies (
    app_id               uuid primary key references apps (id) on delete cascade,
    workspace_id         uuid not null references workspaces (id) on delete cascade,
    access_mode          text not null default 'private'
                         check (access_mode in ('private', 'public_auth', 'public_anonymous')),
    data_classification  text not null default 'public'
                         check (data_classification in ('public', 'internal', 'confidential', 'restricted')),
    rate_limit           jsonb not null default '{"per_ip": {"max_requests": 120, "window_seconds": 60}}'
                         check (jsonb_typeof(rate_limit) = 'object'),
    allowed_origins      jsonb not null default '[]' check (jsonb_typeof(allowed_origins) = 'array'),
    require_captcha      boolean not null default false,
    blocked_ips          jsonb not null default '[]' check (jsonb_typeof(blocked_ips) = 'array'),
    blocked_ip_hashes    jsonb not null default '[]' check (jsonb_typeof(blocked_ip_hashes) = 'array'),
    gray_ips             jsonb not null default '[]' check (jsonb_typeof(gray_ips) = 'array'),
    gray_ip_hashes       jsonb not null default '[]' check (jsonb_typeof(gray_ip_hashes) = 'array'),
    gray_policy          jsonb check (gray_policy is null or jsonb_typeof(gray_policy) = 'object'),
    updated_by           uuid references users (id) on delete set null,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    check (access_mode <> 'public_anonymous' or data_classification = 'public')
);
create index app_access_policies_workspace_id_idx on app_access_policies (workspace_id);

-- The policy as the document the API reads and writes.
create function access_policy_document(p app_access_policies) returns jsonb
language sql stable set search_path = pg_catalog, pg_temp as $$
    select jsonb_build_object(
        'access_mode', p.access_mode, 'data_classification', p.data_classification,
        'rate_limit', p.rate_limit, 'allowed_origins', p.allowed_origins,
        'require_captcha', p.require_captcha, 'blocked_ips', p.blocked_ips,
        'blocked_ip_hashes', p.blocked_ip_hashes, 'gray_ips', p.gray_ips,
        'gray_ip_hashes', p.gray_ip_hashes, 'gray_policy', p.gray_policy)
$$;

-- ---------------------------------------------------------------------------------------
-- Audit
-- ---------------------------------------------------------------------------------------

create table audit_logs (
    id             uuid not null default gen_random_uuid(),
    workspace_id   uuid not null,
    actor_user_id  uuid,
    actor_role     text not null,
    action         text not null check (action ~ '^[a-z_]+\.[a-z_]+$'),
    target_type    text not null,
    target_id      text,
    metadata       jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object'),
    created_at     timestamptz not null default clock_timestamp(),
    primary key (workspace_id, created_at, id)
) partition by range (created_at);
comment on table audit_logs is 'Append-only, one row per mutation, partitioned by month. No foreign keys: rows outlive what they describe.';
create index audit_logs_action_idx on audit_logs (action, created_at);
create index audit_logs_actor_idx on audit_logs (actor_user_id, created_at);

-- A row whose month has no partition yet still lands; the maintenance worker moves months out.
create table audit_logs_default partition of audit_logs default;

-- Creates the monthly partitions from this month to `months_ahead` months ahead.
create function audit_logs_ensure_partitions(months_ahead integer default 2) returns integer
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
    month_start date;
    created integer := 0;
    partition_name text;
begin
    for i in 0 .. greatest(months_ahead, 0) loop
        month_start := (date_trunc('month', now()) + make_interval(months => i))::date;
        partition_name := 'audit_logs_' || to_char(month_start, 'YYYY_MM');
        if to_regclass('flowgres.' || partition_name) is null then
            execute format('create table flowgres.%I partition of flowgres.audit_logs for values from (%L) to (%L)',
                           partition_name, month_start, (month_start + interval '1 month')::date);
            created := created + 1;
        end if;
    end loop;
    return created;
end
$$;
select audit_logs_ensure_partitions(2);

-- ---------------------------------------------------------------------------------------
-- Identity and row-level security
-- ---------------------------------------------------------------------------------------

create function current_actor() returns uuid
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_current_actor';
comment on function current_actor() is 'The flowgres user this statement acts for: flowgres.actor for the service role, else the user mapped to the role (users.pg_role); NULL for the operator.';

-- The workspaces whose rows the actor may see; evaluated by the policies below.
create function actor_workspace_ids() returns uuid[]
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
    select coalesce(array_agg(m.workspace_id), '{}')
    from flowgres.workspace_members m
    where m.user_id = flowgres.current_actor() and m.status = 'active'
$$;
comment on function actor_workspace_ids() is 'Workspaces the acting user is an active member of (row-level security).';

alter table users enable row level security;
alter table workspaces enable row level security;
alter table workspace_slug_aliases enable row level security;
alter table workspace_roles enable row level security;
alter table workspace_members enable row level security;
alter table apps enable row level security;
alter table app_slug_aliases enable row level security;
alter table app_versions enable row level security;
alter table app_access_policies enable row level security;
alter table audit_logs enable row level security;

create policy own_and_fellow_users on users for select using (
    id = flowgres.current_actor()
    or id in (select m.user_id from flowgres.workspace_members m
              where m.workspace_id = any (flowgres.actor_workspace_ids())));
create policy member_rows on workspaces for select using (id = any (flowgres.actor_workspace_ids()));
create policy member_rows on workspace_slug_aliases for select using (workspace_id = any (flowgres.actor_workspace_ids()));
create policy member_rows on workspace_roles for select using (workspace_id = any (flowgres.actor_workspace_ids()));
create policy member_rows on workspace_members for select using (workspace_id = any (flowgres.actor_workspace_ids()));
create policy member_rows on apps for select using (workspace_id = any (flowgres.actor_workspace_ids()));
create policy member_rows on app_slug_aliases for select using (workspace_id = any (flowgres.actor_workspace_ids()));
create policy member_rows on app_versions for select using (workspace_id = any (flowgres.actor_workspace_ids()));
create policy member_rows on app_access_policies for select using (workspace_id = any (flowgres.actor_workspace_ids()));
create policy member_rows on audit_logs for select using (workspace_id = any (flowgres.actor_workspace_ids()));

grant usage on schema flowgres to flowgres_user, flowgres_service;
grant select on all tables in schema flowgres to flowgres_user, flowgres_service;

-- ---------------------------------------------------------------------------------------
-- The SQL API. Each function: SECURITY DEFINER (tables are written only here), fixed
-- search_path, not STRICT (a NULL argument is a VALIDATION_FAILED naming it).
-- ---------------------------------------------------------------------------------------

create function has_permission(user_id uuid, workspace_id uuid, permission text) returns boolean
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_has_permission';
comment on function has_permission(uuid, uuid, text) is 'Whether the user holds the permission (seed §30) in the workspace.';

create function error_codes() returns jsonb
language c immutable
as 'MODULE_PATHNAME', 'flowgres_error_codes';
comment on function error_codes() is 'Every flowgres error code with its SQLSTATE, HTTP status and summary.';

-- users
create function user_create(email text, display_name text, pg_role text default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_user_create';
comment on function user_create(text, text, text) is 'Operator only: creates a user and its default workspace; pg_role maps a database role to the user.';

create function user_get(user_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_user_get';
comment on function user_get(uuid) is 'A user: oneself, a fellow member, or any for the operator.';

-- workspaces
create function workspace_create(name text, slug text default null, icon text default null, region text default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_create';
comment on function workspace_create(text, text, text, text) is 'Creates a workspace owned by the actor, with owner/admin/member roles.';

create function workspace_get(workspace_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_get';
comment on function workspace_get(uuid) is 'A workspace the actor is a member of, with the actor''s role.';

create function workspace_list(include_deleted boolean default false) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_list';
comment on function workspace_list(boolean) is 'The actor''s workspaces (all for the operator), newest first.';

create function workspace_update(workspace_id uuid, changes jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_update';
comment on function workspace_update(uuid, jsonb) is 'Changes name, slug (old slug kept as alias), icon, region, settings (workspace_admin), plan (plan_manage), status (operator).';

create function workspace_delete(workspace_id uuid) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_delete';
comment on function workspace_delete(uuid) is 'Soft-deletes a workspace; it can be restored within flowgres.workspace_restore_days.';

create function workspace_restore(workspace_id uuid) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_restore';
comment on function workspace_restore(uuid) is 'Restores a soft-deleted workspace within the grace window.';

-- members
create function member_invite(workspace_id uuid, email text, role text default 'member') returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_member_invite';
comment on function member_invite(uuid, text, text) is 'Invites an existing user by email with a role (members_manage; only owners grant owner).';

create function member_accept(workspace_id uuid) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_member_accept';
comment on function member_accept(uuid) is 'The invited actor joins the workspace.';

create function member_list(workspace_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_member_list';
comment on function member_list(uuid) is 'Members with their roles and status (members_manage).';

create function member_update_role(workspace_id uuid, user_id uuid, role text) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_member_update_role';
comment on function member_update_role(uuid, uuid, text) is 'Changes a member''s role (members_manage; owner role by owners only; never demotes the last owner).';

create function member_remove(workspace_id uuid, user_id uuid) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_member_remove';
comment on function member_remove(uuid, uuid) is 'Removes a member (members_manage, or oneself); never the last owner.';

-- apps
create function app_create(workspace_id uuid, name text, slug text default null, description text default null, icon text default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_create';
comment on function app_create(uuid, text, text, text, text) is 'Creates a draft app with a private access policy, within the plan''s app limit (apps_create).';

create function app_get(app_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_get';
comment on function app_get(uuid) is 'An app with its access policy (app_view_metrics).';

create function app_list(workspace_id uuid, filters jsonb default '{}') returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_list';
comment on function app_list(uuid, jsonb) is 'Apps of a workspace: filters status, q; sort_by name|slug|status|created_at|updated_at; order; page; page_size (seed §66).';

create function app_update(app_id uuid, changes jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_update';
comment on function app_update(uuid, jsonb) is 'Changes name, slug (old slug kept as alias), description, icon (app_edit).';

create function app_duplicate(app_id uuid, name text default null, slug text default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_duplicate';
comment on function app_duplicate(uuid, text, text) is 'Copies an app, its newest version and its access policy as a new draft (apps_create).';

-- versions
create function version_create(app_id uuid, version text, workflow jsonb, ui_schema jsonb default '{}',
                               db_schema jsonb default '{}', config jsonb default '{}', changelog text default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_version_create';
comment on function version_create(uuid, text, jsonb, jsonb, jsonb, jsonb, text) is 'Adds an immutable version; its semver must exceed every earlier one (app_edit).';

create function version_list(app_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_version_list';
comment on function version_list(uuid) is 'Versions of an app, newest first, without their documents (app_view_metrics).';

create function version_get(version_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_version_get';
comment on function version_get(uuid) is 'A version with its workflow, UI schema, db schema and config (app_view_metrics).';

create function version_diff(from_version_id uuid, to_version_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_version_diff';
comment on function version_diff(uuid, uuid) is 'Which top-level fields differ between two versions of one app, and the workflow nodes added, removed or changed.';

-- lifecycle
create function app_publish(app_id uuid, version_id uuid default null, access_policy jsonb default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_publish';
comment on function app_publish(uuid, uuid, jsonb) is 'Publishes a version (default: the newest), optionally changing the access policy (app_publish).';

create function app_rollback(app_id uuid, version_id uuid) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_rollback';
comment on function app_rollback(uuid, uuid) is 'Points a published app at an earlier version (app_publish).';

create function app_deprecate(app_id uuid) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_deprecate';
comment on function app_deprecate(uuid) is 'published → deprecated (app_publish).';

create function app_archive(app_id uuid) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_archive';
comment on function app_archive(uuid) is 'deprecated or draft → archived (app_publish).';

-- access policy
create function access_policy_get(app_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_access_policy_get';
comment on function access_policy_get(uuid) is 'The app''s access policy (app_edit or app_publish).';

create function access_policy_update(app_id uuid, changes jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_access_policy_update';
comment on function access_policy_update(uuid, jsonb) is 'Validates and applies policy changes (app_publish).';
