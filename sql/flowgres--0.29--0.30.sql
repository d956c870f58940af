-- flowgres 0.29 → 0.30: visitors' sessions cached per backend.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.30'" to load this file. \quit

-- Runtime admission reads a visitor's session on every request. Backends now keep the sessions
-- they read (catalog_cache.hpp), under a generation counter of their own that moves when a
-- transaction that changed what admission decides on commits: a session blocked or unblocked
-- (or its reason changed), moved to another app, given an earlier expiry, or deleted
-- (TRUNCATE included). Renewals (last_seen_at, a later expiry: once a minute per session) move
-- nothing: a backend trusts an entry only while its renewal is not due. New sessions move
-- nothing either: only rows that exist are kept. Enabled always, so changes replicated or made
-- under session_replication_role = replica count too.
create function sessions_changed() returns trigger
language c security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_sessions_changed';
comment on function sessions_changed() is
    'Trigger on app_sessions: the transaction''s commit moves the cached sessions'' generation.';
revoke execute on function sessions_changed() from public;

create trigger sessions_changed after update on app_sessions
    for each row
    when (old.blocked_at is distinct from new.blocked_at or old.blocked_reason is distinct from new.blocked_reason
          or old.app_id is distinct from new.app_id or old.id is distinct from new.id
          or old.session_type is distinct from new.session_type or new.expires_at < old.expires_at)
    execute function sessions_changed();
create trigger sessions_removed after delete or truncate on app_sessions
    for each statement execute function sessions_changed();
alter table app_sessions enable always trigger sessions_changed;
alter table app_sessions enable always trigger sessions_removed;
