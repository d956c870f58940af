-- flowgres 0.14 → 0.15: apps generated from a prompt (README "Apps from a prompt").
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.15'" to load this file. \quit

create function app_document_problems(document jsonb) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_document_problems';
comment on function app_document_problems(jsonb) is
    'Checks a document of seed §59''s protocol (app_metadata, workflow_definition, ui_schema, db_schema, access_policy) with the validators versions use: {valid, problems}.';

create function app_generation_begin(workspace_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_generation_begin';
comment on function app_generation_begin(uuid) is
    'Before a generation: the actor may create apps in the workspace and its tokens are not used up; answers the models it may use.';

create function app_create_generated(workspace_id uuid, document jsonb, generation jsonb default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_create_generated';
comment on function app_create_generated(uuid, jsonb, jsonb) is
    'Creates an app and its draft version 0.1.0 from a checked generated document, in one transaction, audited as app.generate.';

create function generation_usage_record(workspace_id uuid, calls jsonb) returns bigint
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_generation_usage_record';
comment on function generation_usage_record(uuid, jsonb) is
    'Service only: records a generation''s model calls in model_usage and its tokens as the workspace''s usage.';
revoke execute on function generation_usage_record(uuid, jsonb) from public;
grant execute on function generation_usage_record(uuid, jsonb) to flowgres_service;
