-- Wallets (0.40), called as SQL inside one transaction: who may read and move money, the
-- checks on amounts, reasons and billing_ref_ids, replays and conflicts, refunds bounded by
-- their capture, the append-only table, and that money moves only when its transaction
-- commits (what needs commits and parallel sessions is in tests/integration/wallet_test.py).
begin;
select plan(30);

select test.new_user('wallet-owner@example.com') as owner \gset
select test.home_of(:'owner') as ws \gset
select test.new_member(:'ws', 'wallet-member@example.com', 'member') as member \gset
select test.new_user('wallet-outsider@example.com') as outsider \gset

select test.act_as(:'member');
select is(flowgres.wallet(:'ws'), jsonb_build_object('workspace_id', :'ws', 'balance', 0, 'frozen', 0, 'available', 0),
          'a member reads the wallet: empty at first');
select is(test.error_code_of(format($$select flowgres.wallet_grant(%L, 100, 'gift')$$, :'ws')), 'PERMISSION_DENIED',
          'a member grants nothing');
select test.act_as(:'owner');
select is(test.error_code_of(format($$select flowgres.wallet_grant(%L, 100, 'gift')$$, :'ws')), 'PERMISSION_DENIED',
          'nor does an owner: grants are the operator''s');
select is(test.error_code_of(format($$select flowgres.wallet_refund(%L, 'x', 1, 'r')$$, :'ws')), 'PERMISSION_DENIED',
          'refunds too');
select is(test.error_code_of(format($$select flowgres.wallet_hold(%L, gen_random_uuid(), 1)$$, :'ws')), 'PERMISSION_DENIED',
          'holds are the service''s');
select test.act_as(:'outsider');
select is(test.error_code_of(format($$select flowgres.wallet(%L)$$, :'ws')), 'WORKSPACE_NOT_FOUND',
          'an outsider does not see the wallet');
select is(test.error_code_of(format($$select flowgres.wallet_transaction_list(%L)$$, :'ws')), 'WORKSPACE_NOT_FOUND',
          'nor its movements');

select test.act_as(null);
select is(test.error_code_of(format($$select flowgres.wallet_grant(%L, 0, 'gift')$$, :'ws')), 'VALIDATION_FAILED',
          'an amount is at least 1');
select is(test.error_code_of(format($$select flowgres.wallet_grant(%L, 1000000000000001, 'gift')$$, :'ws')), 'VALIDATION_FAILED',
          'and at most 10^15 micro-units');
select is(test.error_code_of(format($$select flowgres.wallet_grant(%L, 5, '')$$, :'ws')), 'VALIDATION_FAILED',
          'a reason is required');
select is(test.error_code_of(format($$select flowgres.wallet_grant(%L, 5, repeat('é', 501))$$, :'ws')), 'VALIDATION_FAILED',
          'of at most 500 characters');
select is(test.error_code_of(format($$select flowgres.wallet_grant(%L, 5, 'x', 'a b')$$, :'ws')), 'VALIDATION_FAILED',
          'a billing_ref_id has no spaces');
select is(test.error_code_of(format($$select flowgres.wallet_grant(%L, 5, 'x', '''; drop table flowgres.wallet_transactions; --')$$, :'ws')),
          'VALIDATION_FAILED', 'nor quotes');
select is(test.error_code_of($$select flowgres.wallet_grant(gen_random_uuid(), 5, 'x')$$), 'WORKSPACE_NOT_FOUND',
          'a grant needs a workspace');

select flowgres.wallet_grant(:'ws', 1000, 'top-up <script>alert(1)</script>', 'grant-1') as first \gset
select is((:'first'::jsonb -> 'movement') - 'id' - 'created_at',
          jsonb_build_object('kind', 'grant', 'amount', 1000, 'billing_ref_id', 'grant-1', 'refers_to', null,
                             'reason', 'top-up <script>alert(1)</script>', 'trace_id', null, 'actor_user_id', null),
          'a grant is a movement, its reason kept as text');
select is((flowgres.wallet_grant(:'ws', 1000, 'again', 'grant-1') -> 'replayed')::boolean, true,
          'the same billing_ref_id again is a replay');
select is(test.error_code_of(format($$select flowgres.wallet_grant(%L, 999, 'x', 'grant-1')$$, :'ws')), 'BILLING_REF_CONFLICT',
          'with another amount it is a conflict');
select is((select count(*) from flowgres.wallet_transactions where workspace_id = :'ws'), 1::bigint, 'one row for the two');
select is(flowgres.wallet(:'ws') ->> 'balance', '0', 'a grant counts when its transaction commits, not before');
select is(flowgres.wallet_hold(:'ws', gen_random_uuid(), 1) - 'available', '{"held": false, "refused": "insufficient"}'::jsonb,
          'so nothing can be held against it yet');
select is(test.audit_count(:'ws', 'wallet.grant'), 1::bigint, 'the grant is audited');

select is(test.error_code_of(format($$select flowgres.wallet_refund(%L, 'no-such-capture', 1, 'r')$$, :'ws')), 'CAPTURE_NOT_FOUND',
          'a refund names a capture');
select is(test.error_code_of(format($$select flowgres.wallet_refund(%L, 'grant-1', 1, 'r')$$, :'ws')), 'CAPTURE_NOT_FOUND',
          'a grant is not a capture');

select is(test.error_code_of($$select flowgres.wallet_settle('[]')$$), 'VALIDATION_FAILED', 'a settlement batch is not empty');
select is(test.error_code_of(format($$select flowgres.wallet_settle('[{"workspace_id": "%s", "hold_id": "%s", "captured": -1}]')$$,
                                    :'ws', gen_random_uuid())), 'VALIDATION_FAILED', 'captures are not negative');
select is(test.error_code_of(format($$select flowgres.wallet_settle('[{"workspace_id": "%s", "hold_id": "x", "captured": 1}]')$$, :'ws')),
          'VALIDATION_FAILED', 'holds are named by id');
select is(flowgres.wallet_settle(format('[{"workspace_id": "%s", "hold_id": "00000000-0000-0000-0000-000000000001", "captured": 5}]', :'ws')::jsonb),
          '[{"hold_id": "00000000-0000-0000-0000-000000000001", "outcome": "not_held", "captured": 0}]'::jsonb,
          'a hold that is not open settles as not_held: nothing charged');

select is(test.sqlstate_of(format($$update flowgres.wallet_transactions set amount = 1 where workspace_id = %L$$, :'ws')), 'FG003',
          'movements are never changed');
select is(test.sqlstate_of(format($$delete from flowgres.wallet_transactions where workspace_id = %L$$, :'ws')), 'FG003',
          'nor deleted');
select is(test.sqlstate_of('truncate flowgres.wallet_transactions'), 'FG003', 'nor truncated');

select * from finish();
rollback;
