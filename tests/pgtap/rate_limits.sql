-- The shared-memory rate limiter: exact counts in a window, the reset at the window's end,
-- windows aligned to the epoch, many keys apart, bounded memory that never forgets a live count, and who may use it.
begin;
select plan(20);

select test.act_as(null);  -- the operator
-- A fixed moment (epoch seconds) on a 60 s boundary, plus a run-unique key prefix: the table
-- is shared by the whole server and outlives transactions.
select 1800000000 as t0, 'tap:' || gen_random_uuid() || ':' as k \gset

select is((select count(*) from generate_series(1, 120) as i
           where (flowgres.rate_limit_hit(:'k' || 'ip', 120, 60, :t0 + i % 50)) ->> 'allowed' = 'true'), 120::bigint,
          'the first 120 hits of a 60 s window are allowed');
select is(flowgres.rate_limit_hit(:'k' || 'ip', 120, 60, :t0 + 59) - 'reset_at',
          '{"allowed": false, "count": 121, "limit": 120, "remaining": 0, "retry_after": 1}'::jsonb,
          'the 121st is refused, with the seconds left in the window');
select is((flowgres.rate_limit_hit(:'k' || 'ip', 120, 60, :t0 + 30) ->> 'reset_at')::bigint, :t0 + 60::bigint,
          'the window ends on the next 60 s boundary');
select is((flowgres.rate_limit_hit(:'k' || 'ip', 120, 60, :t0 + 30) ->> 'retry_after')::int, 30,
          'and Retry-After counts down to it');
select is(flowgres.rate_limit_hit(:'k' || 'ip', 120, 60, :t0 + 60) ->> 'count', '1', 'the next window starts over');
select is(flowgres.rate_limit_hit(:'k' || 'ip', 120, 60, :t0 + 61) ->> 'remaining', '118', 'and counts down again');

-- keys and policies apart
select is(flowgres.rate_limit_hit(:'k' || 'other', 120, 60, :t0 + 61) ->> 'count', '1', 'another key has its own counter');
select is(flowgres.rate_limit_hit(:'k' || 'ip', 5, 10, :t0 + 61) ->> 'count', '1', 'a changed window starts the key over');
select is(flowgres.rate_limit_hit(:'k' || 'one', 1, 1, :t0) ->> 'allowed', 'true', 'a limit of 1 allows one');
select is(flowgres.rate_limit_hit(:'k' || 'one', 1, 1, :t0) ->> 'allowed', 'false', 'and refuses the second');
select is(flowgres.rate_limit_hit(:'k' || 'one', 1, 1, :t0 + 1) ->> 'allowed', 'true', 'until the next second');

-- many keys: memory stays bounded, and a flood of new keys never lowers a live key's count
select (flowgres.rate_limit_stats() ->> 'slots')::bigint as slots, (flowgres.rate_limit_stats() ->> 'spills')::bigint as spills_before \gset
select ok(:slots >= 64, 'the table has its slots');
-- The flood happens a year ago in one-second windows, so its windows are over for everyone else
-- on the server and for a later run of this test (the table outlives this transaction): only
-- this test's own clock sees them open.
select extract(epoch from now())::bigint - 31536000 as past \gset
select is((select count(*) from generate_series(1, 5) where (flowgres.rate_limit_hit(:'k' || 'victim', 5, 1, :past)) ->> 'allowed' = 'true'),
          5::bigint, 'a victim uses up its limit');
select is((select count(*) from generate_series(1, 3 * :slots) as i
           where (flowgres.rate_limit_hit(:'k' || 'many' || i, 10, 1, :past)) ->> 'count' >= '1'),
          3 * :slots::bigint, 'three times as many keys as slots are all counted');
select ok((flowgres.rate_limit_stats() ->> 'spills')::bigint > :spills_before, 'those that found no room counted in the shared spill slots');
select is(flowgres.rate_limit_hit(:'k' || 'victim', 5, 1, :past) ->> 'allowed', 'false',
          'and the victim''s count survived the flood: still refused');
select ok((flowgres.rate_limit_stats() ->> 'in_use')::bigint <= :slots, 'never more keys in use than slots');

-- bad input and who may call
select is(test.error_code_of(format('select flowgres.rate_limit_hit(%L, 0, 60)', :'k')), 'VALIDATION_FAILED', 'a limit below 1 is refused');
select is(test.error_code_of(format('select flowgres.rate_limit_hit(%L, 5, 0)', :'k')), 'VALIDATION_FAILED', 'so is an empty window');
select test.act_as(test.new_user('limited@example.com'));
select is(test.error_code_of(format('select flowgres.rate_limit_hit(%L, 5, 60)', :'k')), 'PERMISSION_DENIED', 'a user cannot count hits');

select * from finish();
rollback;
