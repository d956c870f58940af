-- flowgres 0.31 → 0.32: a TRUNCATE of usage_events counted by the usage totals.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.32'" to load this file. \quit

-- Each workspace's usage of the month is totalled in shared memory (usage_ledger.hpp), a cache
-- of usage_events kept exact by the transactions that write it. A TRUNCATE of the table (a
-- development reset, a restore) left the totals as they were, so workspaces stayed at their
-- quotas until the server restarted. This statement trigger makes the TRUNCATE's commit count
-- this database's workspaces again. On the partitioned table: it fires for a TRUNCATE of the
-- whole table, not of one month's partition. Enabled always, as a TRUNCATE in replica mode
-- removes rows too.
create function usage_truncated() returns trigger
language c security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_usage_truncated';
comment on function usage_truncated() is
    'Statement trigger after TRUNCATE on usage_events: its commit counts the usage of this database''s workspaces again.';
revoke execute on function usage_truncated() from public;

create trigger usage_truncated after truncate on usage_events
    for each statement execute function usage_truncated();
alter table usage_events enable always trigger usage_truncated;
