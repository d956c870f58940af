-- flowgres 0.49 → 0.50: the HTTPS listener knows which names it may answer for before any
-- handshake asks (README "Custom domains"): a name that is not an active domain with a
-- certificate is refused from memory, so a storm of made-up names costs no database call.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.50'" to load this file. \quit

create function app_domain_tls_names() returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_domain_tls_names';
comment on function app_domain_tls_names() is
    'Operator only: the names a TLS handshake may be answered for, as a JSON array: every active domain that has a certificate (app_domain_tls gives one''s certificate).';
