-- flowgres 0.48 → 0.49: requests shed at a custom domain are recorded as the app's
-- runtime.load_shed events too (README "Custom domains").
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.49'" to load this file. \quit

-- [{workspace, app, count, daemon}] by slug, or [{domain, count, daemon}] by an app's domain.
create or replace function runtime_load_shed_record(entries jsonb) returns integer
language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
    with shed as (
        insert into flowgres.runtime_events (workspace_id, app_id, event_type, severity, details)
        select coalesce(d.workspace_id, w.id),
               coalesce(d.app_id, a.id, case when e ->> 'app' is null and d.id is null then w.default_app_id end),
               'runtime.load_shed', 'warn',
               jsonb_build_object('count', least(greatest((e ->> 'count')::bigint, 1), 1000000000),
                                  'daemon', left(e ->> 'daemon', 200))
        from jsonb_array_elements(case when jsonb_typeof(entries) = 'array' then entries else '[]' end) e
        left join flowgres.app_domains d on d.domain = e ->> 'domain' and d.status in ('active', 'blocked')
        left join flowgres.workspaces w on w.slug = e ->> 'workspace'
        left join flowgres.apps a on a.workspace_id = w.id and a.slug = e ->> 'app'
        where jsonb_typeof(e -> 'count') = 'number' and (d.id is not null or w.id is not null)
        returning 1)
    select count(*)::integer from shed
$$;
comment on function runtime_load_shed_record(jsonb) is
    'Service only: records requests a daemon shed (503 OVERLOADED) as runtime.load_shed events, one per app: [{workspace, app, count, daemon}], or [{domain, count, daemon}] for a custom domain.';
