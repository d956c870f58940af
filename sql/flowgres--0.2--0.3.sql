-- flowgres 0.2 → 0.3: workflow and UI schema validation callable on their own (issue 4 §8).
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.3'" to load this file. \quit

create function workflow_validate(workflow jsonb, ui_schema jsonb default '{}') returns jsonb
language c immutable
as 'MODULE_PATHNAME', 'flowgres_workflow_validate';
comment on function workflow_validate(jsonb, jsonb) is
    'Checks a workflow and a UI schema without saving them: {"valid", "problems": [{field, message, node_id}], "input_mapping", "order"}.';

-- ---------------------------------------------------------------------------------------
-- Executions and node logs (issue 4 §4). High-volume: workspace_id leads the primary keys so
-- the tables can be distributed by workspace later. Rows are written only through the
-- functions below, which enforce the state machine of core/execution_state.
-- ---------------------------------------------------------------------------------------

create table executions (
    id             uuid not null default gen_random_uuid(),
    workspace_id   uuid not null,
    app_id         uuid not null,
    version_id     uuid not null,
    status         text not null default 'pending'
                   check (status in ('pending', 'running', 'completed', 'failed', 'cancelled')),
    trigger        text not null check (trigger in ('trial', 'api', 'runtime', 'schedule')),
    triggered_by   uuid,
    session_id     uuid,
    inputs         jsonb not null default '{}' check (jsonb_typeof(inputs) = 'object'),
    outputs        jsonb,
    error          jsonb check (error is null or jsonb_typeof(error) = 'object'),
    prompt_tokens      bigint not null default 0 check (prompt_tokens >= 0),
    completion_tokens  bigint not null default 0 check (completion_tokens >= 0),
    queued         boolean not null default false,  -- waits for any daemon to claim it
    claimed_by     text,
    created_at     timestamptz not null default now(),
    started_at     timestamptz,
    heartbeat_at   timestamptz,
    finished_at    timestamptz,
    primary key (workspace_id, id),
    constraint executions_id_key unique (id)
);
comment on table executions is 'Workflow executions: pending → running → completed | failed | cancelled (core/execution_state).';
create index executions_app_idx on executions (app_id, created_at desc);
create index executions_unfinished_idx on executions (status, heartbeat_at) where status in ('pending', 'running');
create index executions_queue_idx on executions (created_at) where status = 'pending' and queued;

create table node_logs (
    workspace_id   uuid not null,
    execution_id   uuid not null,
    sequence       integer not null check (sequence >= 0),
    node_id        text not null,
    node_type      text not null,
    status         text not null check (status in ('running', 'completed', 'failed', 'skipped')),
    attempt        integer not null default 1 check (attempt >= 1),
    started_at     timestamptz,
    finished_at    timestamptz,
    duration_ms    bigint check (duration_ms is null or duration_ms >= 0),
    input          jsonb,
    output         jsonb,
    error          jsonb,
    variables      jsonb check (variables is null or jsonb_typeof(variables) = 'array'),
    created_at     timestamptz not null default now(),
    primary key (workspace_id, execution_id, sequence)
);
comment on table node_logs is 'One row per node attempt (or skip) of an execution, appended in batches by the executor.';
create index node_logs_type_idx on node_logs (execution_id, node_type);

alter table executions enable row level security;
alter table node_logs enable row level security;
create policy member_rows on executions for select using (workspace_id = any (flowgres.actor_workspace_ids()));
create policy member_rows on node_logs for select using (workspace_id = any (flowgres.actor_workspace_ids()));
grant select on executions, node_logs to flowgres_user, flowgres_service;

create function execution_create(app_id uuid, inputs jsonb default '{}', version_id uuid default null,
                                 trigger text default 'trial', queued boolean default false) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_execution_create';
comment on function execution_create(uuid, jsonb, uuid, text, boolean) is
    'A pending execution of a version (default: the current one, else the newest) with its inputs (app_edit). Queued ones are announced on channel flowgres_executions for any daemon to claim.';

create function execution_claim(claimed_by text) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_execution_claim';
comment on function execution_claim(text) is
    'Service only: takes the oldest queued pending execution (FOR UPDATE SKIP LOCKED: daemons never take the same one), marks it running and returns it with its workflow; NULL when none waits.';
revoke execute on function execution_claim(text) from public;
grant execute on function execution_claim(text) to flowgres_service;

create function execution_start(execution_id uuid, claimed_by text default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_execution_start';
comment on function execution_start(uuid, text) is 'pending → running; records who runs it and the first heartbeat; returns the execution with its version''s workflow.';

create function execution_finish(execution_id uuid, status text, outputs jsonb default null, error jsonb default null,
                                 prompt_tokens bigint default 0, completion_tokens bigint default 0) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_execution_finish';
comment on function execution_finish(uuid, text, jsonb, jsonb, bigint, bigint) is
    'running → completed | failed, with outputs or the error and token usage.';

create function execution_cancel(execution_id uuid) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_execution_cancel';
comment on function execution_cancel(uuid) is 'pending | running → cancelled (app_edit).';

create function execution_heartbeat(execution_id uuid) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_execution_heartbeat';
comment on function execution_heartbeat(uuid) is 'Marks a running execution alive; STATE_CONFLICT once it is no longer running (a cancel, say).';

create function node_logs_append(execution_id uuid, logs jsonb) returns integer
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_node_logs_append';
comment on function node_logs_append(uuid, jsonb) is 'Appends node log entries (an array) in one statement; returns how many.';

create function execution_get(execution_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_execution_get';
comment on function execution_get(uuid) is 'An execution with its node logs in order (logs_view).';

create function execution_list(app_id uuid, filters jsonb default '{}') returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_execution_list';
comment on function execution_list(uuid, jsonb) is
    'An app''s executions, newest first (logs_view): filters status, trigger, node_type, from, to, page, page_size.';
