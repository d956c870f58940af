-- flowgres 0.41 → 0.42: what a gateway call did, by its trace id (README "Gateway").
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.42'" to load this file. \quit

create index wallet_transactions_trace_idx on wallet_transactions (workspace_id, trace_id) where trace_id is not null;

create function trace_get(trace_id text) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_trace_get';
comment on function trace_get(text) is
    'What the gateway call with this trace id did (logs_view in the workspace that paid): its model calls, its wallet movements and its audit row.';

-- A gateway key's own limits (README "Gateway"): the models it may call, requests and tokens
-- per minute (counted in shared memory, as the runtime's rate limits are), and the addresses
-- it may be used from. NULL: no limit.
alter table api_keys
    add column allowed_models text[]
        check (allowed_models is null or cardinality(allowed_models) between 1 and 100),
    add column requests_per_minute integer
        check (requests_per_minute is null or requests_per_minute between 1 and 1000000),
    add column tokens_per_minute bigint
        check (tokens_per_minute is null or tokens_per_minute between 1 and 1000000000),
    add column ip_allow text[] check (ip_allow is null or cardinality(ip_allow) between 1 and 100);

-- Authentication caches what it reads of a key per backend: a change of its limits moves the
-- catalogue's generation too.
drop trigger catalog_changed_key on api_keys;
create trigger catalog_changed_key after update on api_keys
    for each row
    when (old.key_hash is distinct from new.key_hash or old.user_id is distinct from new.user_id
          or old.scopes is distinct from new.scopes or old.expires_at is distinct from new.expires_at
          or old.revoked_at is distinct from new.revoked_at or old.workspace_id is distinct from new.workspace_id
          or old.allowed_models is distinct from new.allowed_models
          or old.requests_per_minute is distinct from new.requests_per_minute
          or old.tokens_per_minute is distinct from new.tokens_per_minute or old.ip_allow is distinct from new.ip_allow)
    execute function catalog_changed();
alter table api_keys enable always trigger catalog_changed_key;

create function api_key_set_limits(key_id uuid, limits jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_api_key_set_limits';
comment on function api_key_set_limits(uuid, jsonb) is
    'A gateway key''s limits, replaced whole (the key''s owner or the operator): {models, requests_per_minute, tokens_per_minute, ip_allow}; a member left out or null is no limit.';
