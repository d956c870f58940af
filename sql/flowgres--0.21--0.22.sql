-- flowgres 0.21 → 0.22: executions_record writes its runs' execution_finished events, NOTIFYs
-- and outcome counts in its own set-based statement (README "Performance"); the executions
-- trigger (one PL/pgSQL call and three statements a row) now does so only for the other ways an
-- execution ends (execution_finish, a cancel, the abandoned-run sweep, a hand-written UPDATE).
-- executions_recording() is true only inside executions_record's outcome statement, in the
-- backend running it.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.22'" to load this file. \quit

create function executions_recording() returns boolean
language c volatile as 'MODULE_PATHNAME', 'flowgres_executions_recording';
comment on function executions_recording() is
    'Internal: true while this backend runs executions_record''s outcome statement (the executions trigger''s WHEN).';
revoke execute on function executions_recording() from public;

drop trigger execution_finished_event on executions;
create trigger execution_finished_event
    after update of status on executions
    for each row
    when (new.status in ('completed', 'failed', 'cancelled') and old.status is distinct from new.status
          and not flowgres.executions_recording())
    execute function execution_finished_event();
