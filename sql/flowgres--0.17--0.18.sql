-- flowgres 0.17 → 0.18: the per-workspace count of trial and API runs in flight (README
-- "Performance"). execution_create counts a workspace's pending and running runs outside the
-- public runtime while it holds the workspace's row, so that the cap
-- (flowgres.max_concurrent_runs_per_workspace) is exact; this index makes that count read only
-- the workspace's own runs in flight, so the row is held for a fraction of the time.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.18'" to load this file. \quit

create index executions_in_flight_idx on executions (workspace_id)
    where status in ('pending', 'running') and trigger <> 'runtime';
