-- flowgres 0.37 → 0.38
--
-- The CHECK constraints of the tables a run's recording inserts into become domains. A table's
-- CHECK constraints are read from their stored text, planned and compiled anew by every
-- statement that inserts into it; a domain's are kept, planned, per backend. The recording's
-- statement inserts into four such tables whatever its batch's size, so for a batch of one run
-- (a quiet daemon, a run at a time) the twelve constraints below were an eighth of its
-- PostgreSQL time (0.85-0.90 → 0.75-0.78 ms per call with them gone). Each rule is the same,
-- and a row that breaks one is refused with the same check_violation (SQLSTATE 23514).
--
-- executions.status and .trigger keep their CHECK constraints: partial indexes name those
-- columns in their predicates. Changing a column to a domain with a constraint rewrites its
-- table (PostgreSQL checks every row): on a large installation this upgrade takes a while and
-- holds each table's lock meanwhile.

create domain count_nonnegative as bigint check (value >= 0);
comment on domain count_nonnegative is 'A count or amount that is never negative (tokens, micro-units, milliseconds).';
create domain count_positive as bigint check (value > 0);
comment on domain count_positive is 'A quantity that is always above zero (a usage row''s).';
create domain json_object as jsonb check (jsonb_typeof(value) = 'object');
comment on domain json_object is 'A JSON object (or NULL where the column allows it).';
create domain json_array as jsonb check (jsonb_typeof(value) = 'array');
comment on domain json_array is 'A JSON array.';
create domain usage_dimension as text check (value in ('requests', 'tokens', 'egress'));
comment on domain usage_dimension is 'What a usage row counts: requests, tokens or egress (bytes).';

alter table executions
    drop constraint executions_prompt_tokens_check,
    drop constraint executions_completion_tokens_check,
    drop constraint executions_inputs_check,
    drop constraint executions_error_check,
    alter column prompt_tokens type count_nonnegative,
    alter column completion_tokens type count_nonnegative,
    alter column inputs type json_object,
    alter column error type json_object;

alter table usage_events
    drop constraint usage_events_dimension_check,
    drop constraint usage_events_quantity_check,
    alter column dimension type usage_dimension,
    alter column quantity type count_positive;

alter table model_usage
    drop constraint model_usage_prompt_tokens_check,
    drop constraint model_usage_completion_tokens_check,
    drop constraint model_usage_cost_micros_check,
    drop constraint model_usage_latency_ms_check,
    alter column prompt_tokens type count_nonnegative,
    alter column completion_tokens type count_nonnegative,
    alter column cost_micros type count_nonnegative,
    alter column latency_ms type count_nonnegative;

alter table execution_trails
    drop constraint execution_trails_events_check,
    drop constraint execution_trails_node_logs_check,
    alter column events type json_array,
    alter column node_logs type json_array;
