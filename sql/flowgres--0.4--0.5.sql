-- flowgres 0.4 → 0.5: quotas, usage metering and budgets (issue 5 §4), the runtime's outcome
-- events, and monthly partitions with retention for the append-only tables.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.5'" to load this file. \quit

-- ---------------------------------------------------------------------------------------
-- Prices. Spend is a period's metered usage at the plan's unit prices, in micro-dollars
-- (1 USD = 1,000,000): requests per thousand, tokens per million, egress per GiB. The
-- subscription price (price_cents_per_month) is not part of it.
-- ---------------------------------------------------------------------------------------

alter table billing_plans
    add column price_per_1k_requests_micros bigint not null default 0 check (price_per_1k_requests_micros >= 0),
    add column price_per_1m_tokens_micros   bigint not null default 0 check (price_per_1m_tokens_micros >= 0),
    add column price_per_gib_egress_micros  bigint not null default 0 check (price_per_gib_egress_micros >= 0);

update billing_plans
set price_per_1k_requests_micros = 200000, price_per_1m_tokens_micros = 2000000, price_per_gib_egress_micros = 90000
where code in ('pro', 'enterprise');

-- ---------------------------------------------------------------------------------------
-- Per-workspace overrides of the plan's quotas: a row replaces the plan's figure for its
-- dimension; a NULL quota means unlimited. Set by the platform operator only.
-- ---------------------------------------------------------------------------------------

create table workspace_quotas (
    workspace_id  uuid not null references workspaces (id) on delete cascade,
    dimension     text not null check (dimension in ('requests', 'tokens', 'db_storage', 'egress')),
    quota         bigint check (quota is null or quota >= 0),
    updated_at    timestamptz not null default now(),
    primary key (workspace_id, dimension)
);
comment on table workspace_quotas is 'Operator overrides of a workspace''s plan quotas; NULL quota = unlimited.';

-- ---------------------------------------------------------------------------------------
-- Usage, append-only. A row is written in the transaction that consumes it (the admitted
-- execution's request; its tokens and response bytes when it finishes), so usage commits or
-- vanishes with what it measures: a crash loses nothing and doubles nothing. The running
-- totals live in shared memory (usage_ledger.cpp) and are rebuilt from this table on first
-- use after a restart. Periods are calendar months in UTC. Rows are written only through
-- flowgres's functions: one inserted by hand reaches the running totals at the next restart.
-- ---------------------------------------------------------------------------------------

create table usage_events (
    workspace_id  uuid not null,
    id            bigint generated always as identity,
    app_id        uuid,
    execution_id  uuid,
    dimension     text not null check (dimension in ('requests', 'tokens', 'egress')),
    quantity      bigint not null check (quantity > 0),
    created_at    timestamptz not null default now(),
    primary key (workspace_id, created_at, id)
) partition by range (created_at);
comment on table usage_events is 'Append-only metered usage (requests, tokens, egress bytes) by workspace, app and execution; partitioned by month.';
create table usage_events_default partition of usage_events default;
create index usage_events_app_idx on usage_events (app_id, created_at);

create table budgets (
    workspace_id         uuid primary key references workspaces (id) on delete cascade,
    spend_limit_cents    bigint check (spend_limit_cents is null or spend_limit_cents >= 0),
    spend_limit_enabled  boolean not null default false,
    alert_thresholds     integer[] not null default '{50,80,100}'
                         check (cardinality(alert_thresholds) <= 10 and 1 <= all (alert_thresholds)
                                and 100 >= all (alert_thresholds)),
    updated_at           timestamptz not null default now(),
    check (not spend_limit_enabled or spend_limit_cents is not null)
);
comment on table budgets is 'A workspace''s spend limit per month (blocks runtime requests past it when enabled) and its alert thresholds in percent.';

-- One row per threshold crossed per period: each alert is raised once.
create table budget_alerts (
    workspace_id   uuid not null references workspaces (id) on delete cascade,
    period_start   date not null,
    threshold      integer not null,
    spend_micros   bigint not null,
    limit_micros   bigint not null,
    created_at     timestamptz not null default now(),
    primary key (workspace_id, period_start, threshold)
);
comment on table budget_alerts is 'Budget thresholds crossed, once per threshold and month; each also written as a budget.alert runtime event.';

alter table workspace_quotas enable row level security;
alter table usage_events enable row level security;
alter table budgets enable row level security;
alter table budget_alerts enable row level security;
create policy member_rows on workspace_quotas for select using (workspace_id = any (flowgres.actor_workspace_ids()));
create policy member_rows on usage_events for select using (workspace_id = any (flowgres.actor_workspace_ids()));
create policy member_rows on budgets for select using (workspace_id = any (flowgres.actor_workspace_ids()));
create policy member_rows on budget_alerts for select using (workspace_id = any (flowgres.actor_workspace_ids()));
grant select on workspace_quotas, usage_events, budgets, budget_alerts to flowgres_user, flowgres_service;

-- The limits a workspace runs under: the plan's, overridden per dimension, and its budget.
create function workspace_limits(workspace_id uuid) returns jsonb
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
    select jsonb_build_object(
        'plan', p.code,
        'quota', jsonb_build_object(
            'requests',   coalesce((select coalesce(to_jsonb(q.quota), 'null') from flowgres.workspace_quotas q
                                    where q.workspace_id = w.id and q.dimension = 'requests'), to_jsonb(p.monthly_requests)),
            'tokens',     coalesce((select coalesce(to_jsonb(q.quota), 'null') from flowgres.workspace_quotas q
                                    where q.workspace_id = w.id and q.dimension = 'tokens'), to_jsonb(p.monthly_tokens)),
            'egress',     coalesce((select coalesce(to_jsonb(q.quota), 'null') from flowgres.workspace_quotas q
                                    where q.workspace_id = w.id and q.dimension = 'egress'), to_jsonb(p.monthly_egress_bytes)),
            'db_storage', coalesce((select coalesce(to_jsonb(q.quota), 'null') from flowgres.workspace_quotas q
                                    where q.workspace_id = w.id and q.dimension = 'db_storage'), to_jsonb(p.db_storage_bytes))),
        'prices', jsonb_build_object('requests', p.price_per_1k_requests_micros, 'tokens', p.price_per_1m_tokens_micros,
                                     'egress', p.price_per_gib_egress_micros),
        'budget', (select jsonb_build_object('spend_limit_cents', b.spend_limit_cents,
                                             'spend_limit_enabled', b.spend_limit_enabled,
                                             'alert_thresholds', to_jsonb(b.alert_thresholds))
                   from flowgres.budgets b where b.workspace_id = w.id))
    from flowgres.workspaces w join flowgres.billing_plans p on p.code = w.plan
    where w.id = workspace_limits.workspace_id
$$;
comment on function workspace_limits(uuid) is
    'Service only: {plan, quota: {requests, tokens, egress, db_storage} (null = unlimited), prices (micro-USD per 1k requests, 1M tokens, GiB), budget}.';
revoke execute on function workspace_limits(uuid) from public;
grant execute on function workspace_limits(uuid) to flowgres_service;

create function workspace_usage(workspace_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_usage';
comment on function workspace_usage(uuid) is
    'This month''s usage against the quotas (plan_view): {plan, period, usage: {requests, tokens, egress: {used, quota, remaining}, db_storage: {quota}}, spend, budget, apps}.';

create function workspace_quota_set(workspace_id uuid, dimension text, setting jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_quota_set';
comment on function workspace_quota_set(uuid, text, jsonb) is
    'Operator only: overrides one dimension''s quota ({"quota": n}, or {"quota": null} for unlimited). Returns the workspace''s limits.';

create function workspace_quota_clear(workspace_id uuid, dimension text) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_workspace_quota_clear';
comment on function workspace_quota_clear(uuid, text) is 'Operator only: the dimension goes back to the plan''s quota. Returns the workspace''s limits.';

create function budget_get(workspace_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_budget_get';
comment on function budget_get(uuid) is 'The workspace''s budget with this month''s spend and the alerts raised (plan_view).';

create function budget_update(workspace_id uuid, changes jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_budget_update';
comment on function budget_update(uuid, jsonb) is
    'Changes spend_limit_cents, spend_limit_enabled, alert_thresholds (billing_manage).';

create function app_metrics(app_id uuid, days integer default 7) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_metrics';
comment on function app_metrics(uuid, integer) is
    'An app''s executions over the last days (app_view_metrics): requests, errors, error rate, p50/p95 duration, tokens, per day.';

create function app_access_stats(app_id uuid, days integer default 30) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_access_stats';
comment on function app_access_stats(uuid, integer) is
    'An app''s runtime events over the last days (app_view_metrics): counts by type, visitors, sessions, per day.';

create function usage_ledger(workspace_id uuid) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_usage_ledger';
comment on function usage_ledger(uuid) is
    'Service only: the shared-memory running totals of the workspace this month, loaded from usage_events when absent: {period_start, committed, in_flight}.';
revoke execute on function usage_ledger(uuid) from public;
grant execute on function usage_ledger(uuid) to flowgres_service;

-- ---------------------------------------------------------------------------------------
-- How runtime executions end, as runtime events (seed §31.5: execute success / failed).
-- ---------------------------------------------------------------------------------------

create or replace function execution_finished_event() returns trigger
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
    if new.trigger = 'runtime' then
        insert into flowgres.runtime_events (workspace_id, app_id, session_id, execution_id, event_type, severity, details)
        values (new.workspace_id, new.app_id, new.session_id, new.id,
                case new.status when 'completed' then 'runtime.execute_succeeded'
                                when 'failed' then 'runtime.execute_failed' else 'runtime.execute_cancelled' end,
                case new.status when 'completed' then 'info' else 'warn' end,
                jsonb_strip_nulls(jsonb_build_object(
                    'duration_ms', round(extract(epoch from (new.finished_at - coalesce(new.started_at, new.created_at))) * 1000),
                    'error_code', new.error ->> 'error_code')));
    end if;
    perform pg_notify('flowgres_execution_events', new.id::text);
    return null;
end
$$;

-- Requests a daemon shed without asking the database (503 OVERLOADED, max_in_flight), as
-- one runtime.load_shed event per app and flush: [{workspace, app, count, daemon}] by slug.
create function runtime_load_shed_record(entries jsonb) returns integer
language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
    with shed as (
        insert into flowgres.runtime_events (workspace_id, app_id, event_type, severity, details)
        select w.id, coalesce(a.id, case when e ->> 'app' is null then w.default_app_id end), 'runtime.load_shed', 'warn',
               jsonb_build_object('count', least(greatest((e ->> 'count')::bigint, 1), 1000000000),
                                  'daemon', left(e ->> 'daemon', 200))
        from jsonb_array_elements(case when jsonb_typeof(entries) = 'array' then entries else '[]' end) e
        join flowgres.workspaces w on w.slug = e ->> 'workspace'
        left join flowgres.apps a on a.workspace_id = w.id and a.slug = e ->> 'app'
        where jsonb_typeof(e -> 'count') = 'number'
        returning 1)
    select count(*)::integer from shed
$$;
comment on function runtime_load_shed_record(jsonb) is
    'Service only: records requests a daemon shed (503 OVERLOADED) as runtime.load_shed events, one per app: [{workspace, app, count, daemon}].';
revoke execute on function runtime_load_shed_record(jsonb) from public;
grant execute on function runtime_load_shed_record(jsonb) to flowgres_service;

-- ---------------------------------------------------------------------------------------
-- Monthly partitions for the append-only tables, and retention for runtime events. The
-- maintenance worker calls partitions_maintain() on every pass; rows of a month without a
-- partition land in the default partition, whose month then stays there.
-- ---------------------------------------------------------------------------------------

create function ensure_monthly_partitions(parent text, months_ahead integer default 2) returns integer
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
    month_start date;
    created integer := 0;
    partition_name text;
begin
    if parent not in ('audit_logs', 'runtime_events', 'usage_events') then
        raise exception 'flowgres: % is not a monthly-partitioned table', parent;
    end if;
    for i in 0 .. least(greatest(months_ahead, 0), 24) loop
        month_start := (date_trunc('month', now() at time zone 'UTC') + make_interval(months => i))::date;
        partition_name := parent || '_' || to_char(month_start, 'YYYY_MM');
        if to_regclass('flowgres.' || partition_name) is null then
            begin
                execute format('create table flowgres.%I partition of flowgres.%I for values from (%L) to (%L)',
                               partition_name, parent, (month_start::timestamp at time zone 'UTC'),
                               ((month_start + interval '1 month')::timestamp at time zone 'UTC'));
                created := created + 1;
            exception when check_violation then
                -- The default partition already holds rows of that month: they stay there.
                null;
            end;
        end if;
    end loop;
    return created;
end
$$;
comment on function ensure_monthly_partitions(text, integer) is
    'Creates the monthly partitions (UTC months) of audit_logs, runtime_events or usage_events from this month to months_ahead ahead.';
revoke execute on function ensure_monthly_partitions(text, integer) from public;

create function partitions_maintain(runtime_event_retention_days integer default 90) returns jsonb
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
    created integer := 0;
    dropped integer := 0;
    part record;
begin
    created := flowgres.ensure_monthly_partitions('audit_logs') + flowgres.ensure_monthly_partitions('runtime_events')
             + flowgres.ensure_monthly_partitions('usage_events');
    -- A runtime_events month goes once all of it is older than the retention period.
    for part in
        select c.relname
        from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = 'flowgres.runtime_events'::regclass and c.relname ~ '^runtime_events_\d{4}_\d{2}$'
          and (to_date(substring(c.relname from '\d{4}_\d{2}$'), 'YYYY_MM') + interval '1 month')::timestamp at time zone 'UTC'
              <= now() - make_interval(days => greatest(runtime_event_retention_days, 1))
    loop
        execute format('drop table flowgres.%I', part.relname);
        dropped := dropped + 1;
    end loop;
    delete from flowgres.runtime_events_default
    where created_at < now() - make_interval(days => greatest(runtime_event_retention_days, 1));
    return jsonb_build_object('created', created, 'dropped', dropped);
end
$$;
comment on function partitions_maintain(integer) is
    'Creates next months'' partitions of the append-only tables and drops runtime_events months past retention. Run by the maintenance worker.';
revoke execute on function partitions_maintain(integer) from public;

select partitions_maintain(90);
