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

-- Partition DDL waits for every reader of the parent, and every insert (admissions write
-- events) queues behind the waiting DDL: it gives up after flowgres.partition_lock_timeout_ms
-- (default 100) and the maintenance worker tries again on its next pass.
create or replace function ensure_monthly_partitions(parent text, months_ahead integer default 2) returns integer
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
    month_start date;
    created integer := 0;
    partition_name text;
    caller_lock_timeout text := current_setting('lock_timeout');
begin
    if parent not in ('audit_logs', 'runtime_events', 'usage_events') then
        raise exception 'flowgres: % is not a monthly-partitioned table', parent;
    end if;
    perform set_config('lock_timeout', coalesce(current_setting('flowgres.partition_lock_timeout_ms', true), '100') || 'ms', true);
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
    perform set_config('lock_timeout', caller_lock_timeout, true);
    return created;
end
$$;

-- {created, dropped, skipped}: skipped counts the steps that met a lock past the timeout.
create or replace function partitions_maintain(runtime_event_retention_days integer default 90) returns jsonb
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
    created integer := 0;
    dropped integer := 0;
    skipped integer := 0;
    parent text;
    part record;
    caller_lock_timeout text := current_setting('lock_timeout');
begin
    foreach parent in array array['audit_logs', 'runtime_events', 'usage_events'] loop
        begin
            created := created + flowgres.ensure_monthly_partitions(parent);
        exception when lock_not_available then
            skipped := skipped + 1;
        end;
    end loop;
    perform set_config('lock_timeout', coalesce(current_setting('flowgres.partition_lock_timeout_ms', true), '100') || 'ms', true);
    -- A runtime_events month goes once all of it is older than the retention period.
    for part in
        select c.relname
        from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = 'flowgres.runtime_events'::regclass and c.relname ~ '^runtime_events_\d{4}_\d{2}$'
          and (to_date(substring(c.relname from '\d{4}_\d{2}$'), 'YYYY_MM') + interval '1 month')::timestamp at time zone 'UTC'
              <= now() - make_interval(days => greatest(runtime_event_retention_days, 1))
    loop
        begin
            execute format('drop table flowgres.%I', part.relname);
            dropped := dropped + 1;
        exception when lock_not_available then
            skipped := skipped + 1;
        end;
    end loop;
    begin
        delete from flowgres.runtime_events_default
        where created_at < now() - make_interval(days => greatest(runtime_event_retention_days, 1));
    exception when lock_not_available then
        skipped := skipped + 1;
    end;
    perform set_config('lock_timeout', caller_lock_timeout, true);
    return jsonb_build_object('created', created, 'dropped', dropped, 'skipped', skipped);
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

-- ---------------------------------------------------------------------------------------
-- Visitor sessions past their expiry are deleted (a visitor whose session expired gets a new
-- one; the old id opens nothing), at most batch_size a call: the maintenance worker calls it
-- hourly, and again at once while a call still finds a full batch.
-- ---------------------------------------------------------------------------------------

create function app_sessions_purge(batch_size integer default 10000) returns integer
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
    removed integer;
begin
    if batch_size is null or batch_size < 1 or batch_size > 1000000 then
        raise exception 'batch_size: must be from 1 to 1000000' using errcode = 'FG001',
            detail = '{"error_code": "VALIDATION_FAILED", "details": [{"field": "batch_size", "message": "must be from 1 to 1000000"}]}';
    end if;
    delete from flowgres.app_sessions s
    where s.ctid = any (array(select ctid from flowgres.app_sessions
                              where expires_at < now() - interval '1 hour'
                              order by expires_at limit batch_size));
    get diagnostics removed = row_count;
    return removed;
end
$$;
comment on function app_sessions_purge(integer) is
    'Deletes visitor sessions that expired more than an hour ago, at most batch_size of them. Run hourly by the maintenance worker.';
revoke execute on function app_sessions_purge(integer) from public;

-- ---------------------------------------------------------------------------------------
-- Refusals past the first few per app, kind and minute are counted in shared memory, not
-- written one row each; this writes the counts as summary events (details.refusals).
-- ---------------------------------------------------------------------------------------

create function runtime_refusals_flush() returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_runtime_refusals_flush';
comment on function runtime_refusals_flush() is
    'Service only: writes the runtime refusals counted in shared memory as one summary event per workspace, app, kind and minute; {rows, refusals, lost}. Run every pass by the maintenance worker.';
revoke execute on function runtime_refusals_flush() from public;
grant execute on function runtime_refusals_flush() to flowgres_service;

-- ---------------------------------------------------------------------------------------
-- What a run did (its start, heartbeats, node logs, events, outputs and token usage) is the
-- executor's to say: these functions now refuse every actor but the service (the daemon acts
-- as the operator), so a member with app_edit cannot forge a colleague's or a visitor's run.
-- ---------------------------------------------------------------------------------------

comment on function execution_start(uuid, text) is
    'Service only: pending → running; records who runs it and the first heartbeat; returns the execution with its version''s workflow.';
comment on function execution_finish(uuid, text, jsonb, jsonb, bigint, bigint) is
    'Service only: running → completed or failed, with outputs or the error and the token usage.';
comment on function execution_heartbeat(uuid) is
    'Service only: marks a running execution alive; STATE_CONFLICT once it is no longer running (a cancel, say).';
comment on function node_logs_append(uuid, jsonb) is
    'Service only: appends node log entries (an array) in one statement; returns how many.';
comment on function execution_events_append(uuid, jsonb) is
    'Service only: appends a batch of node_started / node_finished events of a running execution; returns how many were new.';

-- ---------------------------------------------------------------------------------------
-- The provisioner's error text names pool servers, admin roles and paths: members no longer
-- read it (workspace_database_get tells them the last operation failed); the service and
-- DBAs do.
-- ---------------------------------------------------------------------------------------

revoke select (last_error) on workspace_databases from flowgres_user;

-- ---------------------------------------------------------------------------------------
-- Visitors' addresses are stored as HMAC-SHA-256 under this installation's own key, not as
-- plain SHA-256 (the IPv4 space reverses in minutes). The key is made here, from the server's
-- strong random source, and read only by the extension's own functions. blocked_ip_hashes and
-- gray_ip_hashes still list plain SHA-256 digests: people compute those.
-- ---------------------------------------------------------------------------------------

create table installation_secrets (
    name   text primary key,
    value  bytea not null check (octet_length(value) >= 32)
);
comment on table installation_secrets is 'Keys of this installation (ip_hash_key). No role but the extension''s owner reads them.';
revoke all on installation_secrets from public;
insert into installation_secrets (name, value)
values ('ip_hash_key', sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text || gen_random_uuid()::text
                                         || clock_timestamp()::text, 'UTF8')));
