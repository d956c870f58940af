-- flowgres 0.34 → 0.35
--
-- API keys and members' roles join the catalogue caches (catalog_cache.hpp): every request of
-- the management API authenticates its key, and most check the caller's role in a workspace
-- or an app's workspace; each backend now keeps what it read of them until a committed change
-- to the tables they come from moves the catalogue's generation. These triggers move it:
--   - api_keys: a new, deleted or truncated key, and an update of what authentication reads
--     (its hash, owner, scopes, expiry or revocation); not the touch of last_used_at that
--     every use of a key brings;
--   - users: any update, delete or truncate (a disabled user's keys stop at the next request);
--   - workspace_members and workspace_roles: any change.
-- Enabled ALWAYS, as the others are (0.19): a bulk load under session_replication_role =
-- replica must not change cached rows without moving the generation.
create trigger catalog_changed after insert or delete or truncate on api_keys
    for each statement execute function catalog_changed();
create trigger catalog_changed_key after update on api_keys
    for each row
    when (old.key_hash is distinct from new.key_hash or old.user_id is distinct from new.user_id
          or old.scopes is distinct from new.scopes or old.expires_at is distinct from new.expires_at
          or old.revoked_at is distinct from new.revoked_at)
    execute function catalog_changed();
create trigger catalog_changed after update or delete or truncate on users
    for each statement execute function catalog_changed();
create trigger catalog_changed after insert or update or delete or truncate on workspace_members
    for each statement execute function catalog_changed();
create trigger catalog_changed after insert or update or delete or truncate on workspace_roles
    for each statement execute function catalog_changed();
alter table api_keys enable always trigger catalog_changed;
alter table api_keys enable always trigger catalog_changed_key;
alter table users enable always trigger catalog_changed;
alter table workspace_members enable always trigger catalog_changed;
alter table workspace_roles enable always trigger catalog_changed;
