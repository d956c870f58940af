-- flowgres 0.40 → 0.41: the OpenAI-compatible gateway (README "Gateway"): keys that may call
-- models for a workspace that pays, admission in one call (key, model, wallet hold), and each
-- call recorded with its trace id.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.41'" to load this file. \quit

-- The scope llm:execute lets a key call /v1/chat/completions and /v1/models, paid by the
-- workspace it is bound to (and nothing of /api/v1 unless it also has read or write).
alter table api_keys
    drop constraint api_keys_scopes_check,
    add constraint api_keys_scopes_check
        check (cardinality(scopes) > 0 and scopes <@ array['read', 'write', 'llm:execute']),
    add column workspace_id uuid references workspaces (id),
    add constraint api_keys_llm_workspace check (not ('llm:execute' = any (scopes)) or workspace_id is not null);
comment on column api_keys.workspace_id is
    'The workspace whose wallet pays for the key''s model calls (scope llm:execute); set at creation.';

-- A gateway call's usage row: no run, but the key that made it and its trace id.
alter table model_usage
    add column trace_id text check (trace_id is null or trace_id ~ '^[0-9a-f]{32}$'),
    add column api_key_id uuid;
create index model_usage_trace_idx on model_usage (trace_id) where trace_id is not null;

drop function api_key_create(text, jsonb, timestamptz, uuid);
create function api_key_create(name text, scopes jsonb default null, expires_at timestamptz default null,
                               user_id uuid default null, workspace_id uuid default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_api_key_create';
comment on function api_key_create(text, jsonb, timestamptz, uuid, uuid) is
    'Creates an API key for the actor (or, for the operator, for user_id). The key is in the result once and never again. A key with the scope llm:execute names the workspace that pays for its model calls (its owner must have app_publish there).';

create function gateway_admit(request jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_gateway_admit';
comment on function gateway_admit(jsonb) is
    'Service only: one gateway call''s admission: {key_hash, model, prompt_tokens, max_tokens, hold_id}: the key (llm:execute), its workspace, the model''s routes and the wallet hold of the worst-case cost; or {key_hash, action: "models"}.';

create function gateway_record(calls jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_gateway_record';
comment on function gateway_record(jsonb) is
    'Service only: ended gateway calls, each settling its hold (its cost captured, or released when nothing was charged) and written to model_usage with its trace id.';
