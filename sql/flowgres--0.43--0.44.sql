-- flowgres 0.43 → 0.44: usage records one by one (README "Gateway").
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.44'" to load this file. \quit

-- Usage records one by one (the model calls of runs and of the gateway), a page at a time.
create index model_usage_key_idx on model_usage (workspace_id, api_key_id, id) where api_key_id is not null;
create function model_usage_list(workspace_id uuid, filters jsonb default '{}') returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_model_usage_list';
comment on function model_usage_list(uuid, jsonb) is
    'The workspace''s model calls, newest first (app_view_metrics); filters: api_key_id, model, trace_id, from, to, page, page_size.';
