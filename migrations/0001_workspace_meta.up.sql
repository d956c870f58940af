-- What flowgres keeps in every workspace database, beside the tenant's own schema `data`:
-- schema flowgres_meta, owned by the administrator, readable by the tenant role. The
-- migration runner made flowgres_meta.workspace_db_migrations before this ran.
create table flowgres_meta.workspace_meta (
    key         text primary key check (key ~ '^[a-z][a-z0-9_]{0,62}$'),
    value       jsonb not null,
    updated_at  timestamptz not null default now()
);
comment on table flowgres_meta.workspace_meta is 'Facts about this workspace database flowgres keeps here (created_at, …).';
insert into flowgres_meta.workspace_meta (key, value) values ('created_at', to_jsonb(now()));
