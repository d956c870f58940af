-- flowgres 0.44 → 0.45: custom domains bound to apps, proved by DNS, activated one per app
-- (README "Custom domains").
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.45'" to load this file. \quit

create table app_domains (
    id                   uuid primary key default gen_random_uuid(),
    workspace_id         uuid not null references workspaces (id) on delete cascade,
    app_id               uuid not null references apps (id) on delete cascade,
    domain               text not null unique check (domain ~ '^[a-z0-9.-]{1,253}$'),  -- A-labels
    display_domain       text not null,  -- U-labels, as people read it
    status               text not null default 'pending'
                         check (status in ('pending', 'verifying', 'verified', 'failed', 'active', 'blocked')),
    status_before_block  text check (status_before_block in ('pending', 'verifying', 'verified', 'failed', 'active')),
    verification_token   text not null,
    verified_by          text check (verified_by in ('txt', 'cname')),
    verify_attempts      integer not null default 0,
    last_error           text,
    next_retry_at        timestamptz,
    verify_claimed_by    text,
    verify_claimed_until timestamptz,
    verified_at          timestamptz,
    activated_at         timestamptz,
    replaced_domain_id   uuid,  -- the app's active domain this one replaced: what a rollback restores
    blocked_at           timestamptz,
    blocked_reason       text,
    ssl_status           text not null default 'none' check (ssl_status in ('none', 'issuing', 'issued', 'failed')),
    created_by           uuid references users (id),
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    check ((status = 'blocked') = (status_before_block is not null))
);
-- At most one active domain per app.
create unique index app_domains_one_active on app_domains (app_id) where status = 'active';
create index app_domains_app_idx on app_domains (app_id, created_at, id);
create index app_domains_status_idx on app_domains (status);
-- The verification sweep's work: names still to prove whose retry time has come.
create index app_domains_verify_due_idx on app_domains (next_retry_at) where status in ('pending', 'failed', 'verifying');
comment on table app_domains is
    'Custom domains of apps: pending → verifying → verified | failed; verified → active (one per app) → verified (rollback); any → blocked (operator) → as before.';

-- A domain as its functions answer it: with what to put in DNS to prove it, and where to ask
-- for help once the automatic checks have given up.
create function app_domain_document(d app_domains) returns jsonb
language sql stable set search_path = pg_catalog, pg_temp
as $$
    select jsonb_build_object(
        'id', d.id, 'workspace_id', d.workspace_id, 'app_id', d.app_id, 'domain', d.domain,
        'display_domain', d.display_domain, 'status', d.status, 'verified_by', d.verified_by,
        'verify_attempts', d.verify_attempts, 'last_error', d.last_error, 'next_retry_at', d.next_retry_at,
        'verified_at', d.verified_at, 'activated_at', d.activated_at, 'replaced_domain_id', d.replaced_domain_id,
        'blocked_at', d.blocked_at, 'blocked_reason', d.blocked_reason, 'ssl_status', d.ssl_status,
        'created_at', d.created_at, 'updated_at', d.updated_at,
        'verification', jsonb_build_object(
            'txt', jsonb_build_object('type', 'TXT', 'name', '_flowgres.' || d.domain, 'value', d.verification_token),
            'cname', jsonb_build_object('type', 'CNAME', 'name', d.domain,
                                        'value', nullif(btrim(split_part(current_setting('flowgres.platform_hosts'), ',', 1)), ''))),
        'support_url', case when d.status = 'failed'
                                 and d.verify_attempts >= current_setting('flowgres.domain_verify_attempts')::int
                            then nullif(current_setting('flowgres.domain_support_url'), '') end)
$$;
revoke execute on function app_domain_document(app_domains) from public;

create function app_domain_bind(app_id uuid, domain text) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_domain_bind';
comment on function app_domain_bind(uuid, text) is
    'Binds a domain to an app (app_publish): the name checked and converted to punycode, refused when it is a platform host (flowgres.platform_hosts) or below one; answers the domain with its DNS instructions (a TXT record at _flowgres.<domain>, or a CNAME to the platform''s first host).';

create function app_domain_list(app_id uuid, filters jsonb default '{}') returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_domain_list';
comment on function app_domain_list(uuid, jsonb) is 'The app''s domains, oldest first (members); filters: status, page, page_size.';

create function app_domain_get(domain_id uuid, app_id uuid default null) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_domain_get';
comment on function app_domain_get(uuid, uuid) is
    'One domain with its DNS instructions (members of its workspace); with app_id, it must be that app''s.';

create function app_domain_delete(domain_id uuid, app_id uuid default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_domain_delete';
comment on function app_domain_delete(uuid, uuid) is
    'Unbinds a domain (app_publish); a blocked domain only by the operator, so that a block cannot be shed by binding the name again.';

create function app_domain_verify_begin(domain_id uuid, claimant text, app_id uuid default null,
                                        lease_seconds integer default 60) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_domain_verify_begin';
comment on function app_domain_verify_begin(uuid, text, uuid, integer) is
    'Claims a pending or failed domain for a DNS check (app_publish, or the operator''s sweep): verifying, with what to look up. A domain another claimant checks is STATE_CONFLICT until its lease runs out.';

create function app_domain_verify_finish(domain_id uuid, claimant text, result jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_domain_verify_finish';
comment on function app_domain_verify_finish(uuid, text, jsonb) is
    'Records a DNS check the claimant made: {"verified": true, "method": "txt"|"cname"} or {"verified": false, "error": "…"}: verified, or failed with the next retry backed off exponentially; audited, with the event domain.verified or domain.verify.failed.';

create function app_domain_verify_due(max_domains integer default 20) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_domain_verify_due';
comment on function app_domain_verify_due(integer) is
    'Operator only: ids of domains whose next check is due (pending or failed, fewer than flowgres.domain_verify_attempts failures), for the daemons'' sweep.';

create function app_domain_activate(domain_id uuid, app_id uuid default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_domain_activate';
comment on function app_domain_activate(uuid, uuid) is
    'Makes a verified domain the app''s active one (app_publish); the one active before goes back to verified and is remembered for a rollback.';

create function app_domain_rollback(domain_id uuid, app_id uuid default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_domain_rollback';
comment on function app_domain_rollback(uuid, uuid) is
    'Takes an active domain back to verified (app_publish) and makes the domain it replaced active again when that one is still verified.';

create function app_domain_block(domain_id uuid, reason text, app_id uuid default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_domain_block';
comment on function app_domain_block(uuid, text, uuid) is
    'Operator only: blocks a domain with a reason; it is refused by routing and at the TLS handshake until unblocked.';

create function app_domain_unblock(domain_id uuid, reason text, app_id uuid default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_domain_unblock';
comment on function app_domain_unblock(uuid, text, uuid) is
    'Operator only: lifts a block with a reason; the domain returns to the state it had (verified when it was active and the app has another active domain now, pending when a check was under way).';
