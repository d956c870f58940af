-- flowgres 0.9 → 0.10: hardening (README "Security").
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.10'" to load this file. \quit

-- ---------------------------------------------------------------------------------------
-- Partitions are reached only through their parent, whose row security applies. 0.1 granted
-- SELECT on every table that existed then, the first audit_logs partitions included, and a
-- partition has no row security of its own: any mapped role read every workspace's audit rows
-- there. Every partition, present and future, gets no privileges and row security that shows
-- nothing (no policy) to whoever reaches it directly.
-- ---------------------------------------------------------------------------------------

create function protect_partition(partition regclass) returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
    execute format('revoke all on table %s from public, flowgres_user, flowgres_service', partition);
    execute format('alter table %s enable row level security', partition);
end
$$;
comment on function protect_partition(regclass) is
    'Takes every privilege on a partition away and turns its row security on: partitions are read through their parent.';
revoke execute on function protect_partition(regclass) from public;

select flowgres.protect_partition(i.inhrelid::regclass)
from pg_inherits i join pg_class parent on parent.oid = i.inhparent join pg_class child on child.oid = i.inhrelid
where parent.relnamespace = 'flowgres'::regnamespace and child.relkind in ('r', 'p');

create or replace function ensure_monthly_partitions(parent text, months_ahead integer default 2) returns integer
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
                perform flowgres.protect_partition(format('flowgres.%I', partition_name)::regclass);
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

-- 0.1's own partition maker, superseded by ensure_monthly_partitions: it now makes protected
-- partitions too, and only the service and DBAs may call it.
create or replace function audit_logs_ensure_partitions(months_ahead integer default 2) returns integer
language sql security definer set search_path = pg_catalog, pg_temp as $$
    select flowgres.ensure_monthly_partitions('audit_logs', months_ahead)
$$;
revoke execute on function audit_logs_ensure_partitions(integer) from public;

-- ---------------------------------------------------------------------------------------
-- A restore returns a workspace to the status it had when it was deleted, so deleting and
-- restoring never lifts an operator's suspension. Workspaces deleted before 0.10 take theirs
-- from the audit row their deletion wrote.
-- ---------------------------------------------------------------------------------------

alter table workspaces add column status_before_delete text
    check (status_before_delete in ('active', 'suspended', 'cold_storage'));
comment on column workspaces.status_before_delete is 'The status a deleted workspace had; workspace_restore returns it there.';
update workspaces w set status_before_delete = coalesce((
    select a.metadata ->> 'previous_status' from audit_logs a
    where a.workspace_id = w.id and a.action = 'workspace.delete'
      and a.metadata ->> 'previous_status' in ('active', 'suspended', 'cold_storage')
    order by a.created_at desc limit 1), 'active')
where w.status = 'deleted';
comment on function workspace_update(uuid, jsonb) is 'Changes name, slug (old slug kept as alias), icon, region, settings (workspace_admin); plan and status are the operator''s.';
comment on function workspace_delete(uuid) is 'Soft-deletes a workspace (not a suspended one, unless the operator); it can be restored within flowgres.workspace_restore_days.';
comment on function workspace_restore(uuid) is 'Restores a soft-deleted workspace within the grace window, to the status it had (the operator''s, if that was suspended).';
