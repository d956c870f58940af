-- flowgres 0.7 → 0.8: the workspace schema from apps' db_schema, through review (issue 6 §4, §9;
-- seed §70, §114).
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.8'" to load this file. \quit

-- A change applies the provisioner's claim on the workspace database, like a migration.
alter table workspace_databases drop constraint workspace_databases_operation_check;
alter table workspace_databases add constraint workspace_databases_operation_check
    check (operation is null or operation in ('provision', 'rotate_secret', 'migrate', 'rollback', 'backup', 'restore',
                                              'app_role', 'schema_change'));

-- One reviewed change of a workspace database's schema `data`, from an app version's db_schema:
--   planning → planned → approved → applying → applied
--            ↘ unchanged (nothing to do)   ↘ rejected      ↘ failed (rolled back)
--            ↘ failed (the catalog could not be read)
-- The plan (statements and their risks) is made against the catalog as it was, whose
-- fingerprint the apply checks again: a change planned against another schema is stale.
-- Going back to an earlier schema is a change too: submit the earlier version.
create table schema_changes (
    id                   uuid primary key default gen_random_uuid(),
    workspace_id         uuid not null references workspaces (id),
    app_id               uuid not null references apps (id),
    version_id           uuid not null references app_versions (id),
    status               text not null default 'planning'
                         check (status in ('planning', 'planned', 'unchanged', 'approved', 'rejected', 'applying', 'applied', 'failed')),
    desired              jsonb not null,
    plan                 jsonb,
    destructive          boolean not null default false,
    catalog_fingerprint  text,
    allow_destructive    boolean not null default false,
    error_code           text,
    error                text,
    backup_id            uuid references workspace_database_backups (id),
    submitted_by         uuid,
    submitted_at         timestamptz not null default now(),
    reviewed_by          uuid,
    reviewed_at          timestamptz,
    review_comment       text check (review_comment is null or char_length(review_comment) <= 2000),
    applied_by           uuid,
    applied_at           timestamptz,
    updated_at           timestamptz not null default now(),
    check (status in ('planning', 'failed') or plan is not null)
);
comment on table schema_changes is 'Reviewed changes of workspace databases'' schema data from app versions'' db_schema (seed §70, §114).';
create index schema_changes_app_idx on schema_changes (app_id, submitted_at desc);
create index schema_changes_workspace_idx on schema_changes (workspace_id, submitted_at desc);
alter table schema_changes enable row level security;
create policy member_rows on schema_changes for select using (workspace_id = any (flowgres.actor_workspace_ids()));
grant select on schema_changes to flowgres_user, flowgres_service;

create function schema_change_submit(app_id uuid, version_id uuid) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_schema_change_submit';
comment on function schema_change_submit(uuid, uuid) is
    'Submits the version''s db_schema as a change of the workspace database (app_edit): status planning until the plan is recorded.';

create function schema_change_record_plan(change_id uuid, outcome jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_schema_change_record_plan';
comment on function schema_change_record_plan(uuid, jsonb) is
    'Service only: the plan of a change in planning: {"plan", "catalog_fingerprint"} → planned (unchanged when it has no steps), or {"error"} → failed.';

create function schema_change_get(change_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_schema_change_get';
comment on function schema_change_get(uuid) is 'A schema change with its plan and review (any member).';

create function schema_change_list(app_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_schema_change_list';
comment on function schema_change_list(uuid) is 'The app''s schema changes, newest first (any member).';

create function schema_change_approve(change_id uuid, allow_destructive boolean default false, comment text default null)
returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_schema_change_approve';
comment on function schema_change_approve(uuid, boolean, text) is
    'Approves a planned change (workspace_admin); a destructive plan needs allow_destructive.';

create function schema_change_reject(change_id uuid, comment text default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_schema_change_reject';
comment on function schema_change_reject(uuid, text) is 'Rejects a planned or approved change (workspace_admin).';

create function schema_change_apply_begin(change_id uuid, claimant text) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_schema_change_apply_begin';
comment on function schema_change_apply_begin(uuid, text) is
    'Service only: claims the workspace database to apply an approved change (workspace_admin) and returns the work order with the change.';

create function schema_change_report(change_id uuid, claimant text, outcome jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_schema_change_report';
comment on function schema_change_report(uuid, text, jsonb) is
    'Service only: the end of an apply: {"status": "applied", "backup_id"} or {"status": "failed", "error_code", "error"}.';

revoke execute on function schema_change_record_plan(uuid, jsonb), schema_change_apply_begin(uuid, text),
    schema_change_report(uuid, text, jsonb) from public;
grant execute on function schema_change_record_plan(uuid, jsonb), schema_change_apply_begin(uuid, text),
    schema_change_report(uuid, text, jsonb) to flowgres_service;
