-- flowgres 0.6 → 0.7: workspace databases (issue 6 §1, §2, §9; seed §11, §20.1, §26, §40.1).
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.7'" to load this file. \quit

-- The pool of PostgreSQL servers workspace databases are placed on. DBAs add them (the system
-- actor: superusers, the operator key); nobody else reads this table. The provisioner reaches
-- a server as an administrator through admin_conninfo (a libpq string without a password: the
-- password comes from ~/.pgpass, peer authentication, or admin_secret_ref, sealed with the
-- master key the database never sees). Tenants connect to host:port.
create table database_servers (
    id                uuid primary key default gen_random_uuid(),
    name              text not null unique check (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    host              text not null check (char_length(host) between 1 and 255),
    port              integer not null default 5432 check (port between 1 and 65535),
    admin_conninfo    text not null check (char_length(admin_conninfo) between 1 and 2000),
    admin_secret_ref  text check (admin_secret_ref is null or admin_secret_ref like 'enc:v1:%'),
    max_databases     integer check (max_databases is null or max_databases > 0),
    status            text not null default 'active' check (status in ('active', 'draining')),
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now()
);
comment on table database_servers is 'The PostgreSQL servers workspace databases are placed on (DBAs only); draining servers take no new databases.';

-- One database per workspace: ws_<id> with login role wsu_<id> (seed §11.1). status:
-- provisioning (a provisioner holds the claim until claimed_until) → ready | failed; failed →
-- provisioning (called again); ready → ready (repair, rotate). secret_ref is the tenant role's
-- password sealed with a master key (enc:v1:<key id>:<nonce>:<ciphertext>); pending_secret_ref
-- is a new password staged before the role is given it, so a crash between the two leaves the
-- password it may have recorded.
create table workspace_databases (
    workspace_id        uuid primary key references workspaces (id),
    server_id           uuid not null references database_servers (id),
    host                text not null,
    port                integer not null,
    db_name             text not null unique,
    db_user             text not null,
    secret_ref          text check (secret_ref is null or secret_ref like 'enc:v1:%'),
    pending_secret_ref  text check (pending_secret_ref is null or pending_secret_ref like 'enc:v1:%'),
    status              text not null default 'provisioning' check (status in ('provisioning', 'ready', 'failed')),
    operation           text check (operation is null or operation in ('provision', 'rotate_secret', 'migrate', 'rollback',
                                                                     'backup', 'restore', 'app_role')),
    schema_version      integer not null default 0,
    size_bytes          bigint check (size_bytes is null or size_bytes >= 0),
    attempts            integer not null default 0,
    last_error          text,
    cleanup_pending     boolean not null default false,
    claimed_by          text,
    claimed_until       timestamptz,
    provisioned_at      timestamptz,
    secret_rotated_at   timestamptz,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    check (status <> 'ready' or secret_ref is not null)
);
comment on table workspace_databases is 'Each workspace''s own database: where it is, its role, its sealed password and its provisioning state (seed §11, §26).';
create index workspace_databases_server_idx on workspace_databases (server_id);

alter table workspace_databases enable row level security;
create policy member_rows on workspace_databases for select using (workspace_id = any (flowgres.actor_workspace_ids()));
-- Members read where their database is; the sealed passwords stay with the service.
grant select (workspace_id, server_id, host, port, db_name, db_user, status, operation, schema_version, size_bytes,
              attempts, last_error, cleanup_pending, provisioned_at, secret_rotated_at, created_at, updated_at)
    on workspace_databases to flowgres_user, flowgres_service;

-- Backups of workspace databases (issue 6 §6, seed §26.4): pg_dump's custom format, written by
-- the provisioner into its backup directory; the row says where, how big, its SHA-256 and how
-- many rows each table had, which is what a restore is checked against.
create table workspace_database_backups (
    id              uuid primary key default gen_random_uuid(),
    workspace_id    uuid not null references workspaces (id),
    status          text not null check (status in ('completed', 'failed')),
    reason          text not null default 'manual' check (reason in ('manual', 'scheduled', 'pre_change')),
    location        text check (location is null or char_length(location) <= 4096),
    written_by      text,
    size_bytes      bigint check (size_bytes is null or size_bytes >= 0),
    sha256          text check (sha256 is null or sha256 ~ '^[0-9a-f]{64}$'),
    schema_version  integer,
    row_counts      jsonb not null default '{}' check (jsonb_typeof(row_counts) = 'object'),
    error           text,
    started_at      timestamptz not null,
    completed_at    timestamptz not null default clock_timestamp(),
    pruned_at       timestamptz
);
comment on table workspace_database_backups is 'Dumps of workspace databases: where each file is, its size, SHA-256, schema version and row counts.';
create index workspace_database_backups_workspace_idx on workspace_database_backups (workspace_id, completed_at desc);
alter table workspace_database_backups enable row level security;
create policy member_rows on workspace_database_backups for select using (workspace_id = any (flowgres.actor_workspace_ids()));
-- Members see their backups; where the files are is the operator's business.
grant select (id, workspace_id, status, reason, size_bytes, sha256, schema_version, row_counts, error, started_at,
              completed_at, pruned_at)
    on workspace_database_backups to flowgres_user, flowgres_service;

-- Per-app database roles (issue 6 §5, seed §113): a login role on the workspace's database
-- bound to one app, read (SELECT), write (SELECT, INSERT, UPDATE, DELETE) or admin (the
-- workspace role's rights, DDL included), optionally until expires_at (also the role's VALID
-- UNTIL, so an expired password stops at once), revoked by the daemon's sweep after that.
create table app_database_roles (
    id               uuid primary key default gen_random_uuid(),
    workspace_id     uuid not null references workspaces (id),
    app_id           uuid not null references apps (id),
    role_type        text not null check (role_type in ('read', 'write', 'admin')),
    role_name        text not null unique,
    secret_ref       text check (secret_ref is null or secret_ref like 'enc:v1:%'),
    status           text not null default 'creating' check (status in ('creating', 'active', 'revoking', 'revoked', 'failed')),
    expires_at       timestamptz,
    error            text,
    created_by       uuid,
    created_at       timestamptz not null default now(),
    last_rotated_at  timestamptz,
    revoked_at       timestamptz,
    revoked_reason   text check (revoked_reason is null or char_length(revoked_reason) <= 500),
    check (status <> 'active' or secret_ref is not null)
);
comment on table app_database_roles is 'Login roles on a workspace database bound to one app: read, write or admin, with an optional expiry (seed §113).';
create index app_database_roles_app_idx on app_database_roles (app_id, created_at desc);
alter table app_database_roles enable row level security;
create policy member_rows on app_database_roles for select using (workspace_id = any (flowgres.actor_workspace_ids()));
grant select (id, workspace_id, app_id, role_type, role_name, status, expires_at, error, created_by, created_at,
              last_rotated_at, revoked_at, revoked_reason)
    on app_database_roles to flowgres_user, flowgres_service;

create function database_server_add(name text, host text, port integer, admin_conninfo text,
                                    max_databases integer default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_database_server_add';
comment on function database_server_add(text, text, integer, text, integer) is
    'Adds a server to the pool workspace databases are placed on (system actor).';

create function database_server_update(name text, changes jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_database_server_update';
comment on function database_server_update(text, jsonb) is
    'Changes a server''s status (active, draining), max_databases, host, port, admin_conninfo or admin_secret_ref (system actor).';

create function database_server_list() returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_database_server_list';
comment on function database_server_list() is
    'The pool''s servers with how many workspace databases each holds (system actor).';

create function workspace_database_get(workspace_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_database_get';
comment on function workspace_database_get(uuid) is
    'Where the workspace''s database is and its state: status, schema version, size, host (any member); never the password.';

create function workspace_database_claim(workspace_id uuid, operation text, claimant text, server text default null,
                                         lease_seconds integer default 120) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_database_claim';
comment on function workspace_database_claim(uuid, text, text, text, integer) is
    'Service only: claims the workspace''s database for a provision, secret rotation, migration or rollback (workspace_admin; server pinning: system actor) and returns the provisioner''s work order.';

create function workspace_database_stage_secret(workspace_id uuid, claimant text, sealed text) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_database_stage_secret';
comment on function workspace_database_stage_secret(uuid, text, text) is
    'Service only: records a sealed password before the tenant role is given it (the claim''s holder).';

create function workspace_database_report(workspace_id uuid, claimant text, outcome jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_database_report';
comment on function workspace_database_report(uuid, text, jsonb) is
    'Service only: the end of a claim: {"status": "ready", "secret_ref", "size_bytes", "schema_version"} or {"status": "failed", "error", "rolled_back", "schema_version"}.';

create function workspace_database_secret(workspace_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_database_secret';
comment on function workspace_database_secret(uuid) is
    'Service only: how to connect to a ready workspace database as its role (host, port, db_name, db_user, secret_ref).';

create function secret_refs_sealed_with_other_keys(key_id text) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_secret_refs_sealed_with_other_keys';
comment on function secret_refs_sealed_with_other_keys(text) is
    'Service only: every stored secret not sealed with key_id, for re-sealing after a master key rotation.';

create function secret_ref_reseal(kind text, id uuid, old_ref text, new_ref text) returns boolean
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_secret_ref_reseal';
comment on function secret_ref_reseal(text, uuid, text, text) is
    'Service only: replaces one stored secret with its re-sealed form if it still is old_ref (kind: workspace_database, workspace_database_pending, database_server).';

create function workspace_database_backup_list(workspace_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_database_backup_list';
comment on function workspace_database_backup_list(uuid) is
    'The workspace database''s backups, newest first (any member): status, reason, size, SHA-256, schema version, row counts.';

create function workspace_database_backup_record(workspace_id uuid, claimant text, backup jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_database_backup_record';
comment on function workspace_database_backup_record(uuid, text, jsonb) is
    'Service only: records a backup the claim''s holder made (or failed to make): {status, reason, location, size_bytes, sha256, schema_version, row_counts, error, started_at}.';

create function workspace_database_backup_get(workspace_id uuid, backup_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_database_backup_get';
comment on function workspace_database_backup_get(uuid, uuid) is
    'Service only: one completed, unpruned backup with its location, for a restore.';

create function workspace_database_backup_prune(workspace_id uuid, keep integer) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_database_backup_prune';
comment on function workspace_database_backup_prune(uuid, integer) is
    'Service only: marks all but the newest `keep` completed backups pruned and returns their locations, for their files to be deleted.';

create function workspace_databases_due_for_backup(interval_seconds integer) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_databases_due_for_backup';
comment on function workspace_databases_due_for_backup(integer) is
    'Service only: ready, unclaimed workspace databases whose newest completed backup is older than the interval (or that have none).';

create function app_database_role_begin(app_id uuid, role_type text, expires_at timestamptz, claimant text) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_database_role_begin';
comment on function app_database_role_begin(uuid, text, timestamptz, text) is
    'Service only: starts making a role for the app (workspace_admin) under a claim of its workspace database; returns the work order with the role.';

create function app_database_role_revoke_begin(role_id uuid, reason text, claimant text) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_database_role_revoke_begin';
comment on function app_database_role_revoke_begin(uuid, text, text) is
    'Service only: starts revoking an app''s role (workspace_admin; the operator for expiries) under a claim; returns the work order with the role.';

create function app_database_role_report(role_id uuid, claimant text, outcome jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_database_role_report';
comment on function app_database_role_report(uuid, text, jsonb) is
    'Service only: the end of a role''s making or revoking: {"status": "active", "secret_ref"} | {"status": "revoked"} | {"status": "failed", "error"}.';

create function app_database_role_list(app_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_database_role_list';
comment on function app_database_role_list(uuid) is
    'The app''s database roles, newest first (app_view_metrics): type, name, status, expiry; never the password.';

create function app_database_roles_expired() returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_database_roles_expired';
comment on function app_database_roles_expired() is
    'Service only: active roles whose expires_at has passed, for the daemon''s sweep to revoke.';

revoke execute on function app_database_role_begin(uuid, text, timestamptz, text), app_database_role_revoke_begin(uuid, text, text),
    app_database_role_report(uuid, text, jsonb), app_database_roles_expired() from public;
grant execute on function app_database_role_begin(uuid, text, timestamptz, text), app_database_role_revoke_begin(uuid, text, text),
    app_database_role_report(uuid, text, jsonb), app_database_roles_expired() to flowgres_service;

create function execution_data_written(execution_id uuid, details jsonb) returns boolean
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_execution_data_written';
comment on function execution_data_written(uuid, jsonb) is
    'Service only: a database step of the execution wrote rows: a data_written runtime event {table, rows, node, trigger}.';
revoke execute on function execution_data_written(uuid, jsonb) from public;
grant execute on function execution_data_written(uuid, jsonb) to flowgres_service;

revoke execute on function workspace_database_backup_record(uuid, text, jsonb), workspace_database_backup_get(uuid, uuid),
    workspace_database_backup_prune(uuid, integer), workspace_databases_due_for_backup(integer) from public;
grant execute on function workspace_database_backup_record(uuid, text, jsonb), workspace_database_backup_get(uuid, uuid),
    workspace_database_backup_prune(uuid, integer), workspace_databases_due_for_backup(integer) to flowgres_service;

revoke execute on function workspace_database_claim(uuid, text, text, text, integer),
    workspace_database_stage_secret(uuid, text, text), workspace_database_report(uuid, text, jsonb),
    workspace_database_secret(uuid), secret_refs_sealed_with_other_keys(text),
    secret_ref_reseal(text, uuid, text, text) from public;
grant execute on function workspace_database_claim(uuid, text, text, text, integer),
    workspace_database_stage_secret(uuid, text, text), workspace_database_report(uuid, text, jsonb),
    workspace_database_secret(uuid), secret_refs_sealed_with_other_keys(text),
    secret_ref_reseal(text, uuid, text, text) to flowgres_service;
