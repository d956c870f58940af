-- flowgres 0.47 → 0.48: the HTTPS listener presents a custom domain's own certificate (SNI),
-- read once per daemon and name, then kept in memory until a change of the domain is announced
-- (README "Custom domains").
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.48'" to load this file. \quit

create function app_domain_tls(domain text) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_domain_tls';
comment on function app_domain_tls(text) is
    'Operator only: what a TLS handshake for the name may present: {id, status, chain, key_sealed, expires_at} of the domain, or null when no domain has the name.';
