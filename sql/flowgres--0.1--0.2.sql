-- flowgres 0.1 → 0.2: what the daemon needs. API keys (seed §35.3), idempotency keys
-- (seed §105), the audit-log reader, and the 'operator' actor a bootstrap admin key acts as.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.2'" to load this file. \quit

-- ---------------------------------------------------------------------------------------
-- API keys: only the SHA-256 of a key is stored, with a preview for people to recognise it.
-- user_id is the user the key acts for. Keys are personal, not per workspace: the user's
-- workspace roles decide what a call may do, the key's scopes narrow it further.
-- ---------------------------------------------------------------------------------------

create table api_keys (
    id              uuid primary key default gen_random_uuid(),
    user_id         uuid not null references users (id),
    name            text not null check (char_length(name) between 1 and 100),
    key_hash        text not null constraint api_keys_key_hash_key unique check (key_hash ~ '^[0-9a-f]{64}$'),
    key_preview     text not null,
    scopes          text[] not null check (cardinality(scopes) > 0 and scopes <@ array['read', 'write']),
    expires_at      timestamptz,
    last_used_at    timestamptz,
    created_by      uuid,
    created_at      timestamptz not null default now(),
    rotated_at      timestamptz,
    revoked_at      timestamptz,
    revoked_by      uuid,
    revoked_reason  text check (revoked_reason is null or char_length(revoked_reason) <= 500)
);
comment on table api_keys is 'API keys (seed §35.3): SHA-256 hash and preview only; the key itself is shown once at creation or rotation.';
create index api_keys_user_idx on api_keys (user_id, created_at);

-- ---------------------------------------------------------------------------------------
-- Idempotency keys (seed §105): one row per (actor, key). in_progress while the first request
-- runs (committed on its own, so a concurrent duplicate sees it); completed with the stored
-- response once the call commits. Rows expire after 24 hours.
-- ---------------------------------------------------------------------------------------

create table idempotency_keys (
    actor_key      text not null,     -- the acting user's id, or 'operator'
    key            text not null check (char_length(key) between 1 and 255),
    route          text not null,
    request_hash   text not null,
    status         text not null default 'in_progress' check (status in ('in_progress', 'completed')),
    response_status integer,
    response       jsonb,
    created_at     timestamptz not null default now(),
    expires_at     timestamptz not null default now() + interval '24 hours',
    primary key (actor_key, key)
);
comment on table idempotency_keys is 'Idempotency-Key records (seed §105): request hash, stored response, 24 h expiry.';
create index idempotency_keys_expiry_idx on idempotency_keys (expires_at);

alter table api_keys enable row level security;
alter table idempotency_keys enable row level security;
create policy own_keys on api_keys for select using (user_id = flowgres.current_actor());
grant select on api_keys to flowgres_user, flowgres_service;
-- idempotency_keys has no policy: only the SECURITY DEFINER functions read it.

-- ---------------------------------------------------------------------------------------
-- Functions
-- ---------------------------------------------------------------------------------------

create function api_key_create(name text, scopes jsonb default null, expires_at timestamptz default null,
                               user_id uuid default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_api_key_create';
comment on function api_key_create(text, jsonb, timestamptz, uuid) is
    'Creates an API key for the actor (or, for the operator, for user_id). The key is in the result once and never again.';

create function api_key_list(user_id uuid default null) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_api_key_list';
comment on function api_key_list(uuid) is 'The actor''s API keys (the operator: user_id''s), previews only.';

create function api_key_rotate(key_id uuid) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_api_key_rotate';
comment on function api_key_rotate(uuid) is 'Replaces a key''s secret: the old key stops working at once; the new one is returned once.';

create function api_key_revoke(key_id uuid, reason text default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_api_key_revoke';
comment on function api_key_revoke(uuid, text) is 'Revokes a key with a reason; it stops working at once.';

create function api_key_authenticate(key_hash text, required_scope text) returns text
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_api_key_authenticate';
comment on function api_key_authenticate(text, text) is
    'Service only: resolves a key hash to its user, checks expiry, revocation and scope, and sets flowgres.actor for the transaction. Returns the key id.';

create function api_key_touch(key_ids jsonb) returns integer
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_api_key_touch';
comment on function api_key_touch(jsonb) is 'Service only: sets last_used_at for keys used since the last call (batched by the daemon).';

create function idempotency_claim(key text, route text, request_hash text) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_idempotency_claim';
comment on function idempotency_claim(text, text, text) is
    'Claims an Idempotency-Key for the actor: {"state":"claimed"}, or {"state":"replay", status, response}; IDEMPOTENCY_CONFLICT / IDEMPOTENCY_IN_PROGRESS otherwise.';

create function idempotency_complete(key text, response_status integer, response jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_idempotency_complete';
comment on function idempotency_complete(text, integer, jsonb) is
    'Stores the response of a claimed key in the transaction of the call itself; returns the response.';

create function idempotency_release(key text) returns boolean
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_idempotency_release';
comment on function idempotency_release(text) is 'Drops an in-progress claim whose call failed, so a retry runs again.';

create function idempotency_purge() returns integer
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_idempotency_purge';
comment on function idempotency_purge() is 'Service only: deletes expired idempotency keys; returns how many.';

create function audit_log_list(workspace_id uuid, filters jsonb default '{}') returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_audit_log_list';
comment on function audit_log_list(uuid, jsonb) is
    'A workspace''s audit rows, newest first (audit_view): filters action, actor_user_id, target_type, target_id, from, to, page, page_size.';

revoke execute on function api_key_authenticate(text, text), api_key_touch(jsonb), idempotency_purge() from public;
grant execute on function api_key_authenticate(text, text), api_key_touch(jsonb), idempotency_purge() to flowgres_service;
