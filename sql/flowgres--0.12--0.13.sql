-- flowgres 0.12 → 0.13: the llm step's routes and its model usage (README "The llm step").
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.13'" to load this file. \quit

-- Every model call a run made: provider, model, the tokens the provider reported, what they
-- cost at the model's prices, how long it took and how it ended. Written with the run's
-- outcome, in its one durable commit.
create table model_usage (
    workspace_id       uuid not null references workspaces (id),
    id                 bigint generated always as identity,
    app_id             uuid,
    execution_id       uuid,
    node_id            text,
    provider           text not null,
    model              text not null,
    prompt_tokens      bigint not null default 0 check (prompt_tokens >= 0),
    completion_tokens  bigint not null default 0 check (completion_tokens >= 0),
    cost_micros        bigint not null default 0 check (cost_micros >= 0),
    latency_ms         bigint not null default 0 check (latency_ms >= 0),
    ok                 boolean not null,
    error_code         text,
    usage_reported     boolean not null default true,
    created_at         timestamptz not null default now(),
    primary key (workspace_id, id)
);
comment on table model_usage is 'One row per model call of a run (seed §88.3): tokens as the provider reported them, cost at the model''s prices.';
create index model_usage_time_idx on model_usage (workspace_id, created_at);
create index model_usage_execution_idx on model_usage (execution_id);

alter table model_usage enable row level security;
create policy member_rows on model_usage for select using (workspace_id = any (flowgres.actor_workspace_ids()));
grant select on model_usage to flowgres_user, flowgres_service;

create function llm_routes_for_run(workspace_id uuid, models jsonb) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_llm_routes_for_run';
comment on function llm_routes_for_run(uuid, jsonb) is
    'Service only: for each named model, the providers that offer it to the workspace (its own first), with how to reach them and the prices.';
revoke execute on function llm_routes_for_run(uuid, jsonb) from public;
grant execute on function llm_routes_for_run(uuid, jsonb) to flowgres_service;

create function model_usage_record(execution_id uuid, calls jsonb) returns integer
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_model_usage_record';
comment on function model_usage_record(uuid, jsonb) is
    'Service only: records a run''s model calls [{node_id, provider, model, prompt_tokens, completion_tokens, cost_micros, latency_ms, ok, error_code, usage_reported}].';
revoke execute on function model_usage_record(uuid, jsonb) from public;
grant execute on function model_usage_record(uuid, jsonb) to flowgres_service;

create function model_usage(workspace_id uuid, "from" timestamptz default null, "to" timestamptz default null) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_model_usage';
comment on function model_usage(uuid, timestamptz, timestamptz) is
    'A workspace''s model calls in a period (default: the last 30 days), grouped by provider and model (app_view_metrics).';

-- Streamed model text is an event of its own: node_delta.
alter table execution_events drop constraint execution_events_event_check;
alter table execution_events add constraint execution_events_event_check
    check (event in ('node_started', 'node_finished', 'node_delta', 'execution_finished'));
