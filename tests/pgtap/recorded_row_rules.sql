-- The rules of the rows a run's recording writes (0.38: domains, kept planned per backend,
-- rather than CHECK constraints compiled by every statement): each still refuses a row that
-- breaks it with check_violation (23514), whoever writes it. Run as the superuser, straight at
-- the tables. Everything in one transaction, rolled back.
begin;
select plan(17);

create function pg_temp.execution_with(columns text, vals text) returns text
language sql as $$
    select format('insert into flowgres.executions (id, workspace_id, app_id, version_id, status, trigger, inputs%s)
                   values (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), ''running'', ''api'', %s)',
                  columns, vals)
$$;

-- executions
select is(test.sqlstate_of(pg_temp.execution_with(', prompt_tokens', '''{}'', -1')), '23514', 'negative prompt tokens are refused');
select is(test.sqlstate_of(pg_temp.execution_with(', completion_tokens', '''{}'', -5')), '23514', 'so are negative completion tokens');
select is(test.sqlstate_of(pg_temp.execution_with('', '''[]''')), '23514', 'inputs must be an object');
select is(test.sqlstate_of(pg_temp.execution_with(', error', '''{}'', ''"boom"''')), '23514', 'an error must be an object');
select is(test.sqlstate_of($$insert into flowgres.executions (id, workspace_id, app_id, version_id, status, trigger, inputs)
                             values (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'done', 'api', '{}')$$),
          '23514', 'an unknown status is refused');
select is(test.sqlstate_of($$select (-1)::flowgres.count_nonnegative$$), '23514', 'the domain itself refuses a negative count');

-- usage_events
select is(test.sqlstate_of($$insert into flowgres.usage_events (workspace_id, dimension, quantity)
                             values (gen_random_uuid(), 'requests', 0)$$), '23514', 'a usage row counts more than nothing');
select is(test.sqlstate_of($$insert into flowgres.usage_events (workspace_id, dimension, quantity)
                             values (gen_random_uuid(), 'bytes', 1)$$), '23514', 'of a known dimension');

-- model_usage
select is(test.sqlstate_of($$insert into flowgres.model_usage (workspace_id, provider, model, cost_micros)
                             values (gen_random_uuid(), 'p', 'm', -1)$$), '23514', 'a model call costs nothing negative');
select is(test.sqlstate_of($$insert into flowgres.model_usage (workspace_id, provider, model, latency_ms)
                             values (gen_random_uuid(), 'p', 'm', -1)$$), '23514', 'nor takes negative time');
select is(test.sqlstate_of($$insert into flowgres.model_usage (workspace_id, provider, model, prompt_tokens)
                             values (gen_random_uuid(), 'p', 'm', -1)$$), '23514', 'nor negative prompt tokens');

-- execution_trails
select is(test.sqlstate_of($$insert into flowgres.execution_trails (execution_id, workspace_id, events, node_logs)
                             values (gen_random_uuid(), gen_random_uuid(), '{}', '[]')$$), '23514', 'a trail''s events are an array');
select is(test.sqlstate_of($$insert into flowgres.execution_trails (execution_id, workspace_id, events, node_logs)
                             values (gen_random_uuid(), gen_random_uuid(), '[]', 'null')$$), '23514', 'so are its node logs');

-- What keeps the rules passes them.
select is(test.sqlstate_of($$insert into flowgres.usage_events (workspace_id, dimension, quantity)
                             values (gen_random_uuid(), 'egress', 1)$$), 'ok', 'a usage row of one byte is kept');
select is(test.sqlstate_of($$insert into flowgres.model_usage (workspace_id, provider, model, ok, prompt_tokens, completion_tokens,
                                                              cost_micros, latency_ms)
                             values (gen_random_uuid(), 'p', 'm', true, 0, 0, 0, 0)$$), 'ok', 'a model call of zeroes is kept');
select is(test.sqlstate_of($$select (-1)::flowgres.count_positive$$), '23514', 'and a quantity of -1 is not');

-- The documents every run writes are compressed with lz4, not pglz (0.26; 0.39 again after
-- 0.38's domains reset four of them): pglz cost several percent of the server's CPU per run.
select is((select string_agg(a.attrelid::regclass || '.' || a.attname, ', ' order by 1)
           from pg_attribute a
           where a.attrelid in ('flowgres.executions'::regclass, 'flowgres.execution_trails'::regclass,
                                'flowgres.execution_events'::regclass, 'flowgres.node_logs'::regclass)
             and a.attnum > 0 and not a.attisdropped and a.attstorage = 'x' and a.atttypid <> 'text'::regtype
             and a.attcompression <> 'l'),
          null, 'every JSON document a run writes is compressed with lz4');

select * from finish();
rollback;
