-- flowgres 0.2 → 0.3: workflow and UI schema validation callable on their own (issue 4 §8).
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.3'" to load this file. \quit

create function workflow_validate(workflow jsonb, ui_schema jsonb default '{}') returns jsonb
language c immutable
as 'MODULE_PATHNAME', 'flowgres_workflow_validate';
comment on function workflow_validate(jsonb, jsonb) is
    'Checks a workflow and a UI schema without saving them: {"valid", "problems": [{field, message, node_id}], "input_mapping", "order"}.';
