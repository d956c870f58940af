-- flowgres 0.11 → 0.12: model providers and the model catalogue (README "Model providers").
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.12'" to load this file. \quit

-- ---------------------------------------------------------------------------------------
-- Providers of the platform (workspace_id null, the operator's) and of workspaces (owners and
-- admins). A platform provider holds its key sealed by flowgresd (bound to its name); a
-- workspace provider names one of the workspace's secrets, so rotating or revoking that
-- secret applies to the provider at once.
-- ---------------------------------------------------------------------------------------

create table llm_providers (
    id               uuid primary key default gen_random_uuid(),
    workspace_id     uuid references workspaces (id),
    name             text not null check (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    protocol         text not null default 'openai' check (protocol in ('openai')),
    base_url         text not null check (base_url ~ '^https?://' and length(base_url) <= 2048),
    sealed_api_key   text check (sealed_api_key like 'enc:v1:%'),
    api_key_preview  text,
    api_key_secret   text check (api_key_secret ~ '^[A-Za-z_][A-Za-z0-9_]{0,63}$'),
    timeout_ms       integer not null default 60000 check (timeout_ms between 1000 and 600000),
    enabled          boolean not null default true,
    created_by       uuid references users (id),
    created_at       timestamptz not null default now(),
    updated_by       uuid references users (id),
    updated_at       timestamptz not null default now(),
    check (workspace_id is null or sealed_api_key is null),
    check (workspace_id is not null or api_key_secret is null)
);
comment on table llm_providers is
    'Model providers (seed §40.2, §88): the platform''s (workspace_id null) and workspaces'' own; the sealed key is readable by no role.';
create unique index llm_providers_name_idx on llm_providers (coalesce(workspace_id, '00000000-0000-0000-0000-000000000000'), name);

create table llm_models (
    provider_id           uuid not null references llm_providers (id) on delete cascade,
    workspace_id          uuid references workspaces (id),
    model                 text not null check (length(model) between 1 and 200),
    input_micros_per_1m   bigint not null default 0 check (input_micros_per_1m between 0 and 1000000000000),
    output_micros_per_1m  bigint not null default 0 check (output_micros_per_1m between 0 and 1000000000000),
    context_tokens        integer not null default 8192 check (context_tokens between 1 and 10000000),
    quality               integer not null default 5 check (quality between 1 and 10),
    enabled               boolean not null default true,
    primary key (provider_id, model)
);
comment on table llm_models is 'The models of each provider with their prices (USD micros per million tokens), context size and quality tier.';

-- Models the operator has switched off everywhere, whichever provider offers them.
create table llm_model_switches (
    model        text primary key check (length(model) between 1 and 200),
    reason       text,
    disabled_by  uuid references users (id),
    disabled_at  timestamptz not null default now()
);
comment on table llm_model_switches is 'Models switched off platform-wide by the operator.';
revoke all on llm_model_switches from public;

alter table llm_providers enable row level security;
create policy member_rows on llm_providers for select using (workspace_id = any (flowgres.actor_workspace_ids()));
grant select (id, workspace_id, name, protocol, base_url, api_key_preview, api_key_secret, timeout_ms, enabled,
              created_by, created_at, updated_by, updated_at)
    on llm_providers to flowgres_user, flowgres_service;
alter table llm_models enable row level security;
create policy member_rows on llm_models for select using (workspace_id = any (flowgres.actor_workspace_ids()));
grant select on llm_models to flowgres_user, flowgres_service;

create function llm_provider_create(name text, base_url text, protocol text default null, api_key jsonb default null,
                                    api_key_secret text default null, timeout_ms integer default null,
                                    enabled boolean default null, models jsonb default null,
                                    workspace_id uuid default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_llm_provider_create';
comment on function llm_provider_create(text, text, text, jsonb, text, integer, boolean, jsonb, uuid) is
    'Adds a model provider: the platform''s (operator; api_key sealed by flowgresd) or, with workspace_id, the workspace''s (secrets_manage; api_key_secret names a secret).';

create function llm_provider_list(workspace_id uuid default null) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_llm_provider_list';
comment on function llm_provider_list(uuid) is 'The platform''s providers (operator) or a workspace''s (app_edit), with their models; never a key.';

create function llm_provider_get(name text, workspace_id uuid default null) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_llm_provider_get';
comment on function llm_provider_get(text, uuid) is 'One provider with its models; never its key.';

create function llm_provider_update(name text, changes jsonb, workspace_id uuid default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_llm_provider_update';
comment on function llm_provider_update(text, jsonb, uuid) is
    'Changes base_url, timeout_ms, enabled, api_key_secret or the whole models list of a provider.';

create function llm_provider_delete(name text, workspace_id uuid default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_llm_provider_delete';
comment on function llm_provider_delete(text, uuid) is 'Removes a provider and its models.';

create function llm_provider_rotate_key(name text, api_key jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_llm_provider_rotate_key';
comment on function llm_provider_rotate_key(text, jsonb) is
    'Operator: replaces a platform provider''s key ({"sealed", "preview"} as flowgresd seals it), or removes it with null.';

create function llm_model_set_enabled(model text, enabled boolean, reason text default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_llm_model_set_enabled';
comment on function llm_model_set_enabled(text, boolean, text) is
    'Operator: switches a model off (or on again) platform-wide, whichever provider offers it.';

create function workspace_models(workspace_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_models';
comment on function workspace_models(uuid) is
    'The models a workspace may use (any member): its own providers'' first, then the platform''s; enabled and not switched off.';
