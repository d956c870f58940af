-- flowgres 0.15 → 0.16: new versions generated from an instruction (README "Apps from a prompt").
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.16'" to load this file. \quit

create function version_generation_begin(app_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_version_generation_begin';
comment on function version_generation_begin(uuid) is
    'Before a version is generated (app_edit): the current version in the protocol''s shape and the models the workspace may use.';

create function version_create_generated(app_id uuid, document jsonb, generation jsonb default null,
                                         instruction text default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_version_create_generated';
comment on function version_create_generated(uuid, jsonb, jsonb, text) is
    'Adds the next minor version of an app from a checked generated document (app_edit), audited as version.generate; its access_policy and app_metadata are not applied.';
