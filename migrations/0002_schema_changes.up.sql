-- The DDL applied to schema `data` from apps' db_schema after review (issue 6 §4), kept where
-- the change happened: what ran, from which reviewed change, and when.
create table flowgres_meta.schema_changes (
    id          bigint generated always as identity primary key,
    change_id   uuid not null,
    statements  text[] not null,
    applied_at  timestamptz not null default now()
);
comment on table flowgres_meta.schema_changes is 'DDL applied to schema data from reviewed schema changes.';
