-- flowgres 0.45 → 0.46: visitors reach an app at its active custom domain (README "Custom
-- domains"): runtime admission resolves the request's host in the same call, from a cache that
-- a change of any domain invalidates.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.46'" to load this file. \quit

create trigger catalog_changed after insert or update or delete or truncate on app_domains
    for each statement execute function catalog_changed();
