-- flowgres 0.35 → 0.36
--
-- An app's permission check, cached per backend (0.35), also answers which version a run of the
-- app runs when none is named: the published one, or, when none is, the latest one made. A new
-- or deleted version moves the catalogue's generation, so that answer is never stale (versions
-- are never updated). Enabled ALWAYS, as the other catalogue triggers are.
create trigger catalog_changed after insert or delete or truncate on app_versions
    for each statement execute function catalog_changed();
alter table app_versions enable always trigger catalog_changed;
