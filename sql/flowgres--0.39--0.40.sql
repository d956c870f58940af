-- flowgres 0.39 → 0.40: wallets (README "Wallets"): each workspace's balance in integer
-- micro-units of the platform's currency, moved only by rows of wallet_transactions.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.40'" to load this file. \quit

-- Every movement of money, kept for good: the balance is the grants and refunds less the
-- captures. A hold of a call's worst-case cost lives in shared memory while the call runs
-- (wallet_ledger.hpp); the transaction that settles it writes its `hold` row (dated when it
-- was taken) with exactly one `capture` (the reported cost; the rest goes back) or `release`
-- (the whole hold: nothing charged), all three under the hold's id as billing_ref_id. A hold
-- that ended with its daemon, an expiry or a restart released without rows: no money moved.
create table wallet_transactions (
    workspace_id   uuid not null references workspaces (id),
    id             bigint generated always as identity,
    kind           text not null check (kind in ('grant', 'hold', 'capture', 'release', 'refund')),
    amount         bigint not null check (amount > 0),
    billing_ref_id text not null check (length(billing_ref_id) between 1 and 200),
    refers_to      text,
    reason         text check (length(reason) <= 500),
    trace_id       text check (length(trace_id) <= 64),
    actor_user_id  uuid,
    created_at     timestamptz not null default now(),
    primary key (workspace_id, id),
    unique (workspace_id, billing_ref_id, kind),
    check ((kind = 'refund') = (refers_to is not null))
);
comment on table wallet_transactions is
    'Every movement of a workspace''s wallet (README "Wallets"), in micro-units: grant, hold, capture, release, refund. Append-only; billing_ref_id makes a retried movement a no-op.';
comment on column wallet_transactions.refers_to is 'A refund: the billing_ref_id of the capture it gives back.';
create index wallet_transactions_time_idx on wallet_transactions (workspace_id, created_at);
create index wallet_transactions_refunds_idx on wallet_transactions (workspace_id, refers_to) where kind = 'refund';

-- Money rows are never changed or removed: the shared balances count on it.
create function wallet_transactions_append_only() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
    raise exception 'wallet_transactions is append-only: % refused', tg_op using errcode = 'FG003';
end $$;
create trigger append_only before update or delete on wallet_transactions
    for each row execute function wallet_transactions_append_only();
create trigger append_only_truncate before truncate on wallet_transactions
    for each statement execute function wallet_transactions_append_only();
alter table wallet_transactions enable always trigger append_only;
alter table wallet_transactions enable always trigger append_only_truncate;

alter table wallet_transactions enable row level security;
create policy member_rows on wallet_transactions for select using (workspace_id = any (flowgres.actor_workspace_ids()));
grant select on wallet_transactions to flowgres_user, flowgres_service;

create function wallet(workspace_id uuid) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_wallet';
comment on function wallet(uuid) is
    'The workspace''s wallet (plan_view): balance, frozen (held by calls in flight) and available, in micro-units.';

create function wallet_transaction_list(workspace_id uuid, filters jsonb default '{}') returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_wallet_transaction_list';
comment on function wallet_transaction_list(uuid, jsonb) is
    'The workspace''s wallet movements, newest first (plan_view); filters: kind, billing_ref_id, from, to, page, page_size.';

create function wallet_grant(workspace_id uuid, amount bigint, reason text, billing_ref_id text default null)
returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_wallet_grant';
comment on function wallet_grant(uuid, bigint, text, text) is
    'Operator only: adds amount to the wallet (a top-up or a grant), with a reason; the same billing_ref_id again is a no-op.';

create function wallet_refund(workspace_id uuid, capture_ref_id text, amount bigint, reason text,
                              billing_ref_id text default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_wallet_refund';
comment on function wallet_refund(uuid, text, bigint, text, text) is
    'Operator only: gives back up to what a capture took and earlier refunds of it did not; the same billing_ref_id again is a no-op.';

create function wallet_hold(workspace_id uuid, hold_id uuid, amount bigint, ttl_seconds integer default 600)
returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_wallet_hold';
comment on function wallet_hold(uuid, uuid, bigint, integer) is
    'Service only: freezes amount of the available balance for a call until it is settled, its backend ends or ttl_seconds pass.';

create function wallet_settle(settlements jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_wallet_settle';
comment on function wallet_settle(jsonb) is
    'Service only: ends holds, [{hold_id, captured, trace_id}]: captured > 0 captures that much and returns the rest, 0 releases the hold; each answered captured, released, settled_before or not_held.';

create function wallet_open_holds(workspace_id uuid) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_wallet_open_holds';
comment on function wallet_open_holds(uuid) is
    'The workspace''s open holds (plan_view): hold_id, amount, held_at, expires_at, settling.';
