-- flowgres 0.10 → 0.11: workspace secrets (README "Secrets").
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.11'" to load this file. \quit

-- ---------------------------------------------------------------------------------------
-- Named credentials of a workspace, referenced by workflows as {{secrets.NAME}} in credential
-- fields. The value arrives sealed (AES-256-GCM under the daemon's master key, bound to the
-- workspace and the name): the database holds ciphertext only, and no role may read the
-- column that holds it; secrets_for_run hands it to the service, which opens it for a run.
-- ---------------------------------------------------------------------------------------

create table workspace_secrets (
    id              uuid primary key default gen_random_uuid(),
    workspace_id    uuid not null references workspaces (id),
    name            text not null check (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,63}$'),
    description     text not null default '',
    sealed_value    text not null check (sealed_value like 'enc:v1:%'),
    value_preview   text not null,
    version         integer not null default 1 check (version >= 1),
    status          text not null default 'active' check (status in ('active', 'revoked')),
    expires_at      timestamptz,
    created_by      uuid references users (id),
    created_at      timestamptz not null default now(),
    updated_by      uuid references users (id),
    updated_at      timestamptz not null default now(),
    rotated_at      timestamptz,
    revoked_by      uuid references users (id),
    revoked_at      timestamptz,
    revoked_reason  text,
    unique (workspace_id, name)
);
comment on table workspace_secrets is
    'Workspace secrets (seed §84, §126.2): sealed values referenced as {{secrets.NAME}}; the sealed value is readable by no role.';

alter table workspace_secrets enable row level security;
create policy member_rows on workspace_secrets for select using (workspace_id = any (flowgres.actor_workspace_ids()));
grant select (id, workspace_id, name, description, value_preview, version, status, expires_at, created_by, created_at,
              updated_by, updated_at, rotated_at, revoked_by, revoked_at, revoked_reason)
    on workspace_secrets to flowgres_user, flowgres_service;

create function secret_create(workspace_id uuid, name text, value jsonb, description text default null,
                              expires_at timestamptz default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_secret_create';
comment on function secret_create(uuid, text, jsonb, text, timestamptz) is
    'Creates a workspace secret (secrets_manage). value is {"sealed", "preview"} as flowgresd seals it; the result never holds it.';

create function secret_list(workspace_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_secret_list';
comment on function secret_list(uuid) is
    'The workspace''s secrets (app_edit): name, preview, version, status, expiry, who changed each last; never a value.';

create function secret_get(workspace_id uuid, name text) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_secret_get';
comment on function secret_get(uuid, text) is 'One secret of the workspace (app_edit), without its value.';

create function secret_rotate(workspace_id uuid, name text, value jsonb, expires_at timestamptz default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_secret_rotate';
comment on function secret_rotate(uuid, text, jsonb, timestamptz) is
    'Replaces a secret''s value and expiry (secrets_manage); the version grows and the next run uses the new value.';

create function secret_revoke(workspace_id uuid, name text, reason text default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_secret_revoke';
comment on function secret_revoke(uuid, text, text) is
    'Revokes a secret (secrets_manage): steps that reference it fail with SECRET_REVOKED from the next run on.';

create function secret_delete(workspace_id uuid, name text) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_secret_delete';
comment on function secret_delete(uuid, text) is 'Deletes a secret (secrets_manage); its name may then be used again.';

create function secrets_for_run(workspace_id uuid, names jsonb) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_secrets_for_run';
comment on function secrets_for_run(uuid, jsonb) is
    'Service only: the named secrets of a workspace for a run, {"NAME": {"status", "sealed", "version"}}.';
revoke execute on function secrets_for_run(uuid, jsonb) from public;
grant execute on function secrets_for_run(uuid, jsonb) to flowgres_service;

-- Owners and admins of every existing workspace manage its secrets (new workspaces get the
-- permission from the role matrix).
update workspace_roles set permissions = permissions || '["secrets_manage"]'::jsonb, updated_at = now()
where is_system and name in ('owner', 'admin') and not permissions ? 'secrets_manage';
