-- flowgres 0.3 → 0.4: execution events, the durable stream behind
-- GET /api/v1/executions/{id}/events (issue 4 §7).
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.4'" to load this file. \quit

-- ---------------------------------------------------------------------------------------
-- One row per event of an execution, numbered 1, 2, … in the order they happened: the SSE
-- event id. The executor appends node_started / node_finished in batches (it numbers them);
-- execution_finished is written by the trigger below on every way an execution can end
-- (finish, cancel, the maintenance worker's abandon), so a stream always gets its last event.
-- Every insert is announced on channel flowgres_execution_events (payload: the execution id).
-- ---------------------------------------------------------------------------------------

create table execution_events (
    workspace_id   uuid not null,
    execution_id   uuid not null,
    sequence       integer not null check (sequence >= 1),
    event          text not null check (event in ('node_started', 'node_finished', 'execution_finished')),
    data           jsonb not null check (jsonb_typeof(data) = 'object'),
    created_at     timestamptz not null default now(),
    primary key (workspace_id, execution_id, sequence)
);
comment on table execution_events is
    'Events of an execution in order (the SSE stream): node_started, node_finished from the executor; execution_finished from trigger execution_finished_event.';
create index execution_events_execution_idx on execution_events (execution_id, sequence);

alter table execution_events enable row level security;
create policy member_rows on execution_events for select using (workspace_id = any (flowgres.actor_workspace_ids()));
grant select on execution_events to flowgres_user, flowgres_service;

create function execution_finished_event() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp
as $$
begin
    insert into flowgres.execution_events (workspace_id, execution_id, sequence, event, data)
    values (new.workspace_id, new.id,
            coalesce((select max(sequence) from flowgres.execution_events
                      where workspace_id = new.workspace_id and execution_id = new.id), 0) + 1,
            'execution_finished',
            jsonb_strip_nulls(jsonb_build_object('status', new.status, 'outputs', new.outputs, 'error', new.error,
                                                 'finished_at', new.finished_at)));
    perform pg_notify('flowgres_execution_events', new.id::text);
    return null;
end
$$;
comment on function execution_finished_event() is 'Appends execution_finished when an execution reaches completed, failed or cancelled.';

create trigger execution_finished_event
    after update of status on executions
    for each row
    when (new.status in ('completed', 'failed', 'cancelled') and old.status is distinct from new.status)
    execute function execution_finished_event();

create function execution_events_append(execution_id uuid, events jsonb) returns integer
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_execution_events_append';
comment on function execution_events_append(uuid, jsonb) is
    'Appends the executor''s events ([{sequence, event, data}]) of a running execution; ones already stored are skipped, and an execution that has ended takes none. Returns how many were added.';

create function execution_events(execution_id uuid, after integer default 0, max_events integer default 500) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_execution_events';
comment on function execution_events(uuid, integer, integer) is
    'An execution''s events after the given id (logs_view): {"execution_id", "status", "events": [{id, event, data}], "complete"}; complete once the execution has ended and nothing follows them.';

-- ---------------------------------------------------------------------------------------
-- Rate limits in shared memory (issue 5 §3; rate_limiter.cpp): fixed windows aligned to the
-- epoch, one table for the whole server (flowgres.rate_limit_slots entries), bounded, with
-- eviction of the least recent key when a partition is full.
-- ---------------------------------------------------------------------------------------

create function rate_limit_hit(key text, max_requests integer, window_seconds integer, now_seconds bigint default null)
returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_rate_limit_hit';
comment on function rate_limit_hit(text, integer, integer, bigint) is
    'Service only: counts one hit of key in its current window: {allowed, count, limit, remaining, reset_at (epoch s), retry_after}. now_seconds (epoch) defaults to the clock.';
revoke execute on function rate_limit_hit(text, integer, integer, bigint) from public;
grant execute on function rate_limit_hit(text, integer, integer, bigint) to flowgres_service;

create function rate_limit_stats() returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_rate_limit_stats';
comment on function rate_limit_stats() is 'Service only: {slots, in_use, evictions} of the shared-memory rate-limit table.';
revoke execute on function rate_limit_stats() from public;
grant execute on function rate_limit_stats() to flowgres_service;

-- ---------------------------------------------------------------------------------------
-- The public runtime (issue 5): visitor sessions, runtime events, and admission in one call.
-- ---------------------------------------------------------------------------------------

create table app_sessions (
    workspace_id     uuid not null,
    id               uuid not null default gen_random_uuid(),
    app_id           uuid not null,
    session_type     text not null check (session_type in ('anon', 'auth')),
    subject          text check (subject is null or char_length(subject) <= 256),  -- auth: the JWT's sub
    ip_hash          text not null,  -- sha256 hex of the address: never the address itself
    user_agent_hash  text,
    created_at       timestamptz not null default now(),
    last_seen_at     timestamptz not null default now(),
    expires_at       timestamptz not null,
    limit_hits       integer not null default 0,  -- requests refused by a rate limit
    blocked_at       timestamptz,
    blocked_reason   text,
    primary key (workspace_id, id),
    constraint app_sessions_id_key unique (id)
);
comment on table app_sessions is 'Runtime visitor sessions: 24 h, renewed on use, blocked after repeated rate-limit hits (seed §25.4).';
create index app_sessions_app_idx on app_sessions (app_id, created_at desc);
create index app_sessions_expiry_idx on app_sessions (expires_at);

create table runtime_events (
    workspace_id   uuid not null,
    id             bigint generated always as identity,
    app_id         uuid,
    session_id     uuid,
    execution_id   uuid,
    event_type     text not null check (event_type ~ '^[a-z][a-z0-9_.]{1,63}$'),
    severity       text not null default 'info' check (severity in ('info', 'warn', 'error')),
    ip_hash        text,
    details        jsonb not null default '{}' check (jsonb_typeof(details) = 'object'),
    created_at     timestamptz not null default now(),
    primary key (workspace_id, id, created_at)
) partition by range (created_at);
comment on table runtime_events is 'Append-only runtime events (seed §31.5): entry, schema, execute, access_blocked, rate_limited, captcha_required, …; partitioned by month.';
create table runtime_events_default partition of runtime_events default;
create index runtime_events_app_idx on runtime_events (app_id, created_at desc);

alter table app_sessions enable row level security;
alter table runtime_events enable row level security;
create policy member_rows on app_sessions for select using (workspace_id = any (flowgres.actor_workspace_ids()));
create policy member_rows on runtime_events for select using (workspace_id = any (flowgres.actor_workspace_ids()));
grant select on app_sessions, runtime_events to flowgres_user, flowgres_service;

create function runtime_admit(request jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_runtime_admit';
comment on function runtime_admit(jsonb) is
    'Service only: admits one runtime request ({action entry|schema|execute, workspace, app, ip, user_agent, origin, session_id, user, captcha, inputs, claimed_by}) in one call. Never raises for a refusal: {decision allow|deny|redirect, status, error, app, version_id, session, rate_limit, execution}.';
revoke execute on function runtime_admit(jsonb) from public;
grant execute on function runtime_admit(jsonb) to flowgres_service;
