-- flowgres 0.20 → 0.21: runtime admission caches what a visitor's run needs before it starts,
-- the routes to its models and the safety rules (README "Performance"), so the tables those
-- come from move the catalogue caches' generation too: providers, their models, model
-- switches, workspace secrets (a provider's key may be one) and safety rules.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.21'" to load this file. \quit

create trigger catalog_changed after insert or update or delete or truncate on llm_providers
    for each statement execute function catalog_changed();
create trigger catalog_changed after insert or update or delete or truncate on llm_models
    for each statement execute function catalog_changed();
create trigger catalog_changed after insert or update or delete or truncate on llm_model_switches
    for each statement execute function catalog_changed();
create trigger catalog_changed after insert or update or delete or truncate on workspace_secrets
    for each statement execute function catalog_changed();
create trigger catalog_changed after insert or update or delete or truncate on safety_rules
    for each statement execute function catalog_changed();
alter table llm_providers enable always trigger catalog_changed;
alter table llm_models enable always trigger catalog_changed;
alter table llm_model_switches enable always trigger catalog_changed;
alter table workspace_secrets enable always trigger catalog_changed;
alter table safety_rules enable always trigger catalog_changed;

-- A run nobody streamed while it ran (its events were never flushed before it ended) keeps its
-- events and node logs as one row of execution_trails, written with its outcome, instead of a
-- row per event and per node attempt (README "Performance"). execution_events(), an
-- execution's node_logs and the node_type filter read both; execution_finished stays a row of
-- execution_events, numbered after the trail's events.
create table execution_trails (
    execution_id uuid primary key,
    workspace_id uuid not null,
    events       jsonb not null default '[]' check (jsonb_typeof(events) = 'array'),
    node_logs    jsonb not null default '[]' check (jsonb_typeof(node_logs) = 'array'),
    created_at   timestamptz not null default now()
);
comment on table execution_trails is
    'The events ({sequence, event, data}) and node logs (as node_logs rows show them) of a run that ended before any was stored, written with its outcome in one row.';
alter table execution_trails enable row level security;
create policy member_rows on execution_trails for select using (workspace_id = any (flowgres.actor_workspace_ids()));
grant select on execution_trails to flowgres_user, flowgres_service;

create or replace function execution_finished_event() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp
as $$
begin
    insert into flowgres.execution_events (workspace_id, execution_id, sequence, event, data)
    values (new.workspace_id, new.id,
            greatest(coalesce((select max(sequence) from flowgres.execution_events
                               where workspace_id = new.workspace_id and execution_id = new.id), 0),
                     coalesce((select max((entry ->> 'sequence')::integer)
                               from flowgres.execution_trails t cross join lateral jsonb_array_elements(t.events) as entry
                               where t.execution_id = new.id), 0)) + 1,
            'execution_finished',
            jsonb_strip_nulls(jsonb_build_object('status', new.status, 'outputs', new.outputs, 'error', new.error,
                                                 'finished_at', new.finished_at)));
    if new.trigger = 'runtime' then
        perform flowgres.runtime_outcome_count(new.workspace_id, new.app_id, new.status);
    end if;
    perform pg_notify('flowgres_execution_events', new.id::text);
    return null;
end
$$;

create or replace function execution_events_prune(retention_days integer, batch_size integer default 10000) returns integer
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
    removed integer;
    emptied integer;
begin
    if retention_days is null or retention_days < 1 then
        raise exception 'retention_days: must be at least 1' using errcode = 'FG001',
            detail = '{"error_code": "VALIDATION_FAILED", "details": [{"field": "retention_days", "message": "must be at least 1"}]}';
    end if;
    if batch_size is null or batch_size < 1 or batch_size > 1000000 then
        raise exception 'batch_size: must be from 1 to 1000000' using errcode = 'FG001',
            detail = '{"error_code": "VALIDATION_FAILED", "details": [{"field": "batch_size", "message": "must be from 1 to 1000000"}]}';
    end if;
    delete from flowgres.execution_events e
    where e.ctid = any (array(
        select ev.ctid
        from flowgres.execution_events ev
        join flowgres.executions x on x.id = ev.execution_id
        where ev.created_at < now() - make_interval(days => retention_days)
          and ev.event <> 'execution_finished'
          and x.finished_at < now() - make_interval(days => retention_days)
        limit batch_size));
    get diagnostics removed = row_count;
    -- Trails: their events go the same way (the node logs stay, as node_logs rows do).
    update flowgres.execution_trails t set events = '[]'
    where t.execution_id = any (array(
        select tr.execution_id
        from flowgres.execution_trails tr
        join flowgres.executions x on x.id = tr.execution_id
        where tr.events <> '[]' and x.finished_at < now() - make_interval(days => retention_days)
        limit greatest(batch_size - removed, 0)));
    get diagnostics emptied = row_count;
    return removed + emptied;
end
$$;
comment on function execution_events_prune(integer, integer) is
    'Deletes node events of executions that ended more than retention_days ago (at most batch_size rows or trails); keeps execution_finished. Run by the maintenance worker.';

-- executions_record takes its batch as json: the function reads the text itself, so the
-- document is not built as jsonb first only to be written out again as text.
drop function executions_record(jsonb);
create function executions_record(runs json) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_executions_record';
comment on function executions_record(json) is
    'Service only: records up to 200 finished runs ([{execution_id, status, outputs, error, prompt_tokens, completion_tokens, events, logs, model_calls, release_tokens, view, fold}]); answers {runs: [{execution_id, execution} | {execution_id, error}]} in order, one run''s problem being its own. fold: the run stored no events or node logs while it ran, so they are kept as one execution_trails row.';
revoke execute on function executions_record(json) from public;
grant execute on function executions_record(json) to flowgres_service;
