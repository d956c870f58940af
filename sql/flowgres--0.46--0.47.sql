-- flowgres 0.46 → 0.47: certificates of custom domains from an ACME CA (README "Custom domains"):
-- the daemons' ACME accounts, the HTTP-01 answers any daemon serves, and each domain's
-- certificate (the chain, its key sealed by the daemon), issued, renewed and backed off.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.47'" to load this file. \quit

-- One account per ACME directory, made by whichever daemon orders first; its key is sealed with
-- the daemons' keyring (context 'acme_account:' || directory_url).
create table acme_accounts (
    directory_url text primary key check (length(directory_url) between 1 and 2000),
    email         text,
    key_sealed    text not null,
    account_url   text not null,
    created_at    timestamptz not null default now()
);

-- HTTP-01 answers while an order is open: GET /.well-known/acme-challenge/{token} at any daemon.
create table acme_challenges (
    token             text primary key check (token ~ '^[A-Za-z0-9_-]{1,255}$'),
    key_authorization text not null check (length(key_authorization) <= 512),
    domain_id         uuid not null references app_domains (id) on delete cascade,
    expires_at        timestamptz not null
);
create index acme_challenges_domain_idx on acme_challenges (domain_id);

alter table app_domains
    add column certificate_chain text,
    add column certificate_key_sealed text,  -- context 'domain_certificate:' || id
    add column ssl_issued_at timestamptz,
    add column ssl_expires_at timestamptz,
    add column ssl_attempts integer not null default 0,
    add column ssl_last_error text,
    add column ssl_next_retry_at timestamptz,
    add column ssl_claimed_by text,
    add column ssl_claimed_until timestamptz;
-- The renewal sweep's work.
create index app_domains_ssl_due_idx on app_domains (ssl_expires_at) where status in ('verified', 'active');

create or replace function app_domain_document(d app_domains) returns jsonb
language sql stable set search_path = pg_catalog, pg_temp
as $$
    select jsonb_build_object(
        'id', d.id, 'workspace_id', d.workspace_id, 'app_id', d.app_id, 'domain', d.domain,
        'display_domain', d.display_domain, 'status', d.status, 'verified_by', d.verified_by,
        'verify_attempts', d.verify_attempts, 'last_error', d.last_error, 'next_retry_at', d.next_retry_at,
        'verified_at', d.verified_at, 'activated_at', d.activated_at, 'replaced_domain_id', d.replaced_domain_id,
        'blocked_at', d.blocked_at, 'blocked_reason', d.blocked_reason, 'ssl_status', d.ssl_status,
        'ssl_issued_at', d.ssl_issued_at, 'ssl_expires_at', d.ssl_expires_at, 'ssl_attempts', d.ssl_attempts,
        'ssl_last_error', d.ssl_last_error, 'ssl_next_retry_at', d.ssl_next_retry_at,
        'created_at', d.created_at, 'updated_at', d.updated_at,
        'verification', jsonb_build_object(
            'txt', jsonb_build_object('type', 'TXT', 'name', '_flowgres.' || d.domain, 'value', d.verification_token),
            'cname', jsonb_build_object('type', 'CNAME', 'name', d.domain,
                                        'value', nullif(btrim(split_part(current_setting('flowgres.platform_hosts'), ',', 1)), ''))),
        'support_url', case when d.status = 'failed'
                                 and d.verify_attempts >= current_setting('flowgres.domain_verify_attempts')::int
                            then nullif(current_setting('flowgres.domain_support_url'), '') end)
$$;

create function app_domain_cert_begin(domain_id uuid, claimant text, renew boolean default false, app_id uuid default null,
                                      lease_seconds integer default 300) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_domain_cert_begin';
comment on function app_domain_cert_begin(uuid, text, boolean, uuid, integer) is
    'Claims a verified or active domain for a certificate order (app_publish, or the operator''s sweep): ssl_status issuing. An issued certificate is ordered again only with renew; one being ordered by another claimant is STATE_CONFLICT until its lease runs out.';

create function app_domain_cert_challenge(domain_id uuid, claimant text, token text, key_authorization text) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_domain_cert_challenge';
comment on function app_domain_cert_challenge(uuid, text, text, text) is
    'Stores an HTTP-01 answer of the claimed order, for an hour, so that any daemon serves it.';

create function acme_challenge_answer(token text) returns text
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_acme_challenge_answer';
comment on function acme_challenge_answer(text) is
    'The key authorization of an open HTTP-01 challenge, or null: what GET /.well-known/acme-challenge/{token} answers (anyone may ask).';

create function app_domain_cert_finish(domain_id uuid, claimant text, result jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_domain_cert_finish';
comment on function app_domain_cert_finish(uuid, text, jsonb) is
    'Records a claimed order''s end: {"issued": true, "chain", "key_sealed", "expires_at"} or {"issued": false, "error"}: issued, or failed with the next attempt backed off (a certificate issued before stays until it expires); audited, with the event cert.issued or cert.issue.failed.';

create function app_domain_cert_due(max_domains integer default 20) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_domain_cert_due';
comment on function app_domain_cert_due(integer) is
    'Operator only: [{id, renew}] of domains that need a certificate ordered: active ones without one, issued ones within 30 days of expiry, failed ones whose retry time has come, and orders whose claim ran out.';

create function acme_account_get(directory_url text) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_acme_account_get';
comment on function acme_account_get(text) is 'Operator only: the ACME account of a directory {key_sealed, account_url, email}, or null.';

create function acme_account_save(directory_url text, email text, key_sealed text, account_url text) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_acme_account_save';
comment on function acme_account_save(text, text, text, text) is
    'Operator only: keeps a directory''s ACME account; when another daemon kept one first, answers that one.';
