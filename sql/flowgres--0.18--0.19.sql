-- flowgres 0.18 → 0.19: the catalogue caches' triggers (0.17) fire whatever
-- session_replication_role says (README "Performance"): a bulk load or a logical-replication
-- apply that set it to replica would otherwise change the cached rows without moving the
-- caches' generation.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.19'" to load this file. \quit

alter table workspaces enable always trigger catalog_changed;
alter table apps enable always trigger catalog_changed;
alter table app_access_policies enable always trigger catalog_changed;
alter table billing_plans enable always trigger catalog_changed;
alter table workspace_quotas enable always trigger catalog_changed;
alter table budgets enable always trigger catalog_changed;
