-- The gateway's calls into the extension (0.41), as SQL: service only, keys bound to the
-- workspace that pays (scope llm:execute, an owner or admin's), and each refusal answered in
-- the shape the daemon turns into OpenAI's errors. Calls with money moving are in
-- tests/integration/gateway_test.py.
begin;
select plan(17);

select test.new_user('gateway-owner@example.com') as owner \gset
select test.home_of(:'owner') as ws \gset
select test.new_member(:'ws', 'gateway-member@example.com', 'member') as member \gset

select test.act_as(:'owner');
select is(test.error_code_of($$select flowgres.gateway_admit('{"key_hash": "00"}')$$), 'PERMISSION_DENIED',
          'admission is the service''s');
select is(test.error_code_of($$select flowgres.api_key_create('k', '["llm:execute"]')$$), 'VALIDATION_FAILED',
          'a key with llm:execute names the workspace that pays');
select is(test.error_code_of(format($$select flowgres.api_key_create('k', '["read"]', null, null, %L)$$, :'ws')), 'VALIDATION_FAILED',
          'and only such a key names one');
select is(test.error_code_of($$select flowgres.api_key_create('k', '["llm:run"]')$$), 'VALIDATION_FAILED', 'scopes are known ones');
select flowgres.api_key_create('gw', '["llm:execute"]', null, null, :'ws') as created \gset
select is(:'created'::jsonb -> 'api_key' ->> 'workspace_id', :'ws', 'an owner binds a key to the workspace');
select flowgres.api_key_create('rw', '["read"]') as plain \gset
select is(test.error_code_of(format($$select flowgres.api_key_set_limits(%L, '{"requests_per_minute": 5}')$$,
                                    :'plain'::jsonb -> 'api_key' ->> 'id')), 'VALIDATION_FAILED', 'limits are for gateway keys');
select is(flowgres.api_key_set_limits((:'created'::jsonb -> 'api_key' ->> 'id')::uuid,
                                      '{"models": ["m1"], "tokens_per_minute": 1000}') ->> 'tokens_per_minute', '1000',
          'a gateway key gets limits');
select is(test.error_code_of(format($$select flowgres.api_key_set_limits(%L, '{"ip_allow": ["300.1.1.1"]}')$$,
                                    :'created'::jsonb -> 'api_key' ->> 'id')), 'VALIDATION_FAILED', 'addresses are checked');
select test.act_as(:'member');
select is(test.error_code_of(format($$select flowgres.api_key_create('k', '["llm:execute"]', null, null, %L)$$, :'ws')), 'PERMISSION_DENIED',
          'a member may not spend the wallet');

select is(flowgres.conversation_list(:'ws') -> 'meta' ->> 'total', '0', 'a workspace starts with no conversations');
select is(test.error_code_of(format($$select flowgres.conversation_messages(%L, gen_random_uuid())$$, :'ws')),
          'CONVERSATION_NOT_FOUND', 'an unknown conversation is not found');

select test.act_as(null);
select is(test.error_code_of($$select flowgres.gateway_admit('{"key_hash": "not hex"}')$$), 'VALIDATION_FAILED',
          'a key hash is a SHA-256');
select is(flowgres.gateway_admit(jsonb_build_object('key_hash', repeat('a', 64), 'model', 'm')) ->> 'code', 'invalid_api_key',
          'an unknown key is refused as OpenAI refuses one');
select is(flowgres.gateway_admit(jsonb_build_object('key_hash', (select key_hash from flowgres.api_keys where id = (:'created'::jsonb -> 'api_key' ->> 'id')::uuid),
                                                    'model', 'no-such-model')) - 'message',
          '{"decision": "refuse", "status": 404, "type": "invalid_request_error", "code": "model_not_found"}'::jsonb,
          'a model nobody offers is model_not_found');
select is(flowgres.gateway_admit(jsonb_build_object('key_hash', (select key_hash from flowgres.api_keys where id = (:'created'::jsonb -> 'api_key' ->> 'id')::uuid),
                                                    'action', 'models')) ->> 'decision', 'allow', 'the key lists its workspace''s models');
select is(test.error_code_of($$select flowgres.gateway_record('[]')$$), 'VALIDATION_FAILED', 'a record batch is not empty');
select is(test.error_code_of(format($$select flowgres.gateway_record('[{"workspace_id": "%s", "api_key_id": "%s", "trace_id": "x", "provider": "p", "model": "m", "ok": true}]')$$,
                                    :'ws', gen_random_uuid())), 'VALIDATION_FAILED', 'a trace id is 32 hex digits');

select * from finish();
rollback;
