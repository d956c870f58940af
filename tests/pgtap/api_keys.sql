-- API keys, idempotency keys and the audit-log reader (extension 0.2), called as SQL.
begin;
select plan(26);

select test.new_user('keys@example.com') as who \gset
select test.new_user('other-keys@example.com') as other \gset
select test.home_of(:'who') as ws \gset

-- create: the key once, a hash and a preview stored
select test.act_as(:'who');
select flowgres.api_key_create('cli') as created \gset
select ok((:'created'::jsonb ->> 'key') ~ '^fgk_[A-Za-z0-9_-]{43}$', 'a created key is fgk_ and 43 base64url characters');
select is((select key_hash from flowgres.api_keys where id = (:'created'::jsonb -> 'api_key' ->> 'id')::uuid),
          encode(sha256(convert_to(:'created'::jsonb ->> 'key', 'UTF8')), 'hex'), 'only its SHA-256 is stored');
select ok(not (:'created'::jsonb -> 'api_key' ? 'key_hash'), 'the hash is never returned');
select is(:'created'::jsonb -> 'api_key' -> 'scopes', '["read", "write"]'::jsonb, 'read and write by default');
select is(test.audit_count(:'ws', 'api_key.create'), 1::bigint, 'creation is audited in the personal workspace');
select is(jsonb_array_length(flowgres.api_key_list() -> 'items'), 1, 'the list shows the key');
select ok(flowgres.api_key_list()::text not like '%' || (:'created'::jsonb ->> 'key') || '%', 'the list never shows the key itself');

select is(test.error_code_of($$select flowgres.api_key_create('x', '["root"]')$$), 'VALIDATION_FAILED', 'unknown scopes are refused');
select is(test.error_code_of($$select flowgres.api_key_create('x', null, now() - interval '1 day')$$), 'VALIDATION_FAILED', 'a past expiry is refused');
select is(test.error_code_of(format('select flowgres.api_key_create(%L, null, null, %L)', 'x', :'other')), 'PERMISSION_DENIED',
          'a user cannot make keys for another');

-- authenticate: sets the actor, checks scope, expiry, revocation
select test.act_as(null);
select is(flowgres.api_key_authenticate(encode(sha256(convert_to(:'created'::jsonb ->> 'key', 'UTF8')), 'hex'), 'write'),
          :'created'::jsonb -> 'api_key' ->> 'id', 'authenticate returns the key id');
select is(current_setting('flowgres.actor'), :'who', 'and sets flowgres.actor for the transaction');
select is(jsonb_array_length(flowgres.api_key_list() -> 'items'), 1, 'the key''s user acts for the rest of the transaction');
-- Its user was checked with the key, and only that user: another one named as the actor in
-- the same transaction is checked again (here, a user no longer active).
select test.new_user('gone-keys@example.com') as gone \gset
update flowgres.users set status = 'disabled' where id = :'gone';
select test.act_as(:'gone');
select is(test.error_code_of($$select flowgres.api_key_list()$$), 'UNAUTHENTICATED',
          'after a key''s check, another user named as the actor is still checked');
select test.act_as(null);
select is(test.error_code_of($$select flowgres.api_key_authenticate(repeat('0', 64), 'read')$$), 'UNAUTHENTICATED', 'an unknown hash is refused');
select test.act_as(:'who');
select flowgres.api_key_create('reader2', '["read"]') ->> 'key' as reader \gset
select test.act_as(null);
select is(test.error_code_of(format('select flowgres.api_key_authenticate(%L, %L)', encode(sha256(convert_to(:'reader', 'UTF8')), 'hex'), 'write')),
          'PERMISSION_DENIED', 'a read key cannot write');

-- rotate and revoke
select test.act_as(:'who');
select flowgres.api_key_rotate((:'created'::jsonb -> 'api_key' ->> 'id')::uuid) ->> 'key' as rotated \gset
select isnt(:'rotated'::text, :'created'::jsonb ->> 'key', 'rotation makes a new key');
select test.act_as(null);
select is(test.error_code_of(format('select flowgres.api_key_authenticate(%L, %L)', encode(sha256(convert_to(:'created'::jsonb ->> 'key', 'UTF8')), 'hex'), 'read')),
          'UNAUTHENTICATED', 'the old key stops working');
select test.act_as(:'who');
select flowgres.api_key_revoke((:'created'::jsonb -> 'api_key' ->> 'id')::uuid, 'leaked') ->> 'revoked_reason' as reason \gset
select is(:'reason'::text, 'leaked', 'revocation keeps its reason');
select is(test.error_code_of(format('select flowgres.api_key_rotate(%L)', :'created'::jsonb -> 'api_key' ->> 'id')), 'STATE_CONFLICT', 'a revoked key cannot be rotated');
select test.act_as(:'other');
select is(test.error_code_of(format('select flowgres.api_key_revoke(%L)', :'created'::jsonb -> 'api_key' ->> 'id')), 'API_KEY_NOT_FOUND', 'another user''s key looks absent');

-- idempotency: claim, conflict, in progress, complete, replay
select test.act_as(:'who');
select is(flowgres.idempotency_claim('k1', 'createApp', 'h1') ->> 'state', 'claimed', 'a new key is claimed');
select is(test.error_code_of($$select flowgres.idempotency_claim('k1', 'createApp', 'h1')$$), 'IDEMPOTENCY_IN_PROGRESS', 'a duplicate in flight is told so');
select is(test.error_code_of($$select flowgres.idempotency_claim('k1', 'createApp', 'h2')$$), 'IDEMPOTENCY_CONFLICT', 'another request with the key conflicts');
select flowgres.idempotency_complete('k1', 201, '{"id": 7}');
select is(flowgres.idempotency_claim('k1', 'createApp', 'h1'), '{"state": "replay", "status": 201, "response": {"id": 7}}'::jsonb, 'a completed key replays its response');

-- audit log reader
select is((flowgres.audit_log_list(:'ws', '{"action": "api_key.revoke"}') -> 'meta' ->> 'total')::int, 1, 'audit rows filter by action');
select test.act_as(null);
select * from finish();
rollback;
