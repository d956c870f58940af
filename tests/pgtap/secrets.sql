-- Workspace secrets (0.11), called as SQL: who may do what, what is stored, what is shown,
-- the state machine, the service-only reader and the per-workspace cap.
begin;
select plan(32);

select test.new_user('sec-owner@example.com') as owner \gset
select test.home_of(:'owner') as ws \gset
select test.act_as(null);
select flowgres.workspace_update(:'ws', '{"plan": "enterprise"}');
select test.new_member(:'ws', 'sec-member@example.com', 'member') as member \gset
select test.new_user('sec-outsider@example.com') as outsider \gset
select test.home_of(:'outsider') as other_ws \gset

-- create: ciphertext stored, never shown
select test.act_as(:'owner');
select flowgres.secret_create(:'ws', 'OPENAI_KEY', '{"sealed": "enc:v1:k1:bm9uY2U:Y2lwaGVy", "preview": "…wxyz"}',
                              'the team key', now() + interval '30 days') as created \gset
select is(:'created'::jsonb ->> 'name', 'OPENAI_KEY', 'create answers the secret');
select is(:'created'::jsonb ->> 'preview', '…wxyz', 'with its preview');
select is((:'created'::jsonb ->> 'version')::int, 1, 'at version 1');
select is(:'created'::jsonb ->> 'status', 'active', 'active');
select is(:'created'::jsonb ->> 'updated_by', :'owner', 'naming who changed it last');
select ok(:'created'::text not like '%enc:v1%', 'the answer never holds the sealed value');
select is((select sealed_value from flowgres.workspace_secrets where name = 'OPENAI_KEY'), 'enc:v1:k1:bm9uY2U:Y2lwaGVy',
          'the table holds the sealed value');
select is(test.audit_count(:'ws', 'secret.create'), 1::bigint, 'creation is audited');
select ok((select bool_and(a.metadata::text not like '%enc:v1%' and a.metadata::text not like '%wxyz%')
           from flowgres.audit_logs a where a.workspace_id = :'ws' and a.action like 'secret.%'),
          'audit rows carry neither the value nor its preview');

-- refused input
select is(test.error_code_of(format($$select flowgres.secret_create(%L, 'OPENAI_KEY', '{"sealed": "enc:v1:a:b:c", "preview": "…"}')$$, :'ws')),
          'SECRET_EXISTS', 'a name is used once per workspace');
select is(test.error_code_of(format($$select flowgres.secret_create(%L, '1BAD', '{"sealed": "enc:v1:a:b:c", "preview": "…"}')$$, :'ws')),
          'VALIDATION_FAILED', 'a name must start with a letter or _');
select is(test.error_code_of(format($$select flowgres.secret_create(%L, 'X''; drop table flowgres.apps; --', '{"sealed": "enc:v1:a:b:c", "preview": "…"}')$$, :'ws')),
          'VALIDATION_FAILED', 'an injected name is only a bad name');
select is(test.error_code_of(format($$select flowgres.secret_create(%L, 'PLAIN', '{"sealed": "sk-plaintext", "preview": "…"}')$$, :'ws')),
          'VALIDATION_FAILED', 'a value that is not sealed is refused');
select is(test.error_code_of(format($$select flowgres.secret_create(%L, 'PLAIN', '"sk-plaintext"')$$, :'ws')),
          'VALIDATION_FAILED', 'a bare string is refused');
select is(test.error_code_of(format($$select flowgres.secret_create(%L, 'OLD', '{"sealed": "enc:v1:a:b:c", "preview": "…"}', null, now() - interval '1 day')$$, :'ws')),
          'VALIDATION_FAILED', 'a past expiry is refused');

-- who may do what
select test.act_as(:'member');
select is(test.error_code_of(format($$select flowgres.secret_create(%L, 'MINE', '{"sealed": "enc:v1:a:b:c", "preview": "…"}')$$, :'ws')),
          'PERMISSION_DENIED', 'a member may not create secrets');
select is(jsonb_array_length(flowgres.secret_list(:'ws') -> 'items'), 1, 'a member lists them');
select is(test.error_code_of(format($$select flowgres.secret_rotate(%L, 'OPENAI_KEY', '{"sealed": "enc:v1:a:b:c", "preview": "…"}')$$, :'ws')),
          'PERMISSION_DENIED', 'a member may not rotate');
select is(test.error_code_of(format($$select flowgres.secret_revoke(%L, 'OPENAI_KEY')$$, :'ws')), 'PERMISSION_DENIED', 'nor revoke');
select test.act_as(:'outsider');
select is(test.error_code_of(format($$select flowgres.secret_list(%L)$$, :'ws')), 'WORKSPACE_NOT_FOUND', 'an outsider sees no workspace');

-- the sealed column is readable by no role but the owner of the extension (rows: row_security_walk.sql)
select is(has_column_privilege('flowgres_user', 'flowgres.workspace_secrets', 'sealed_value', 'select'), false,
          'flowgres_user cannot read sealed_value');
select is(has_column_privilege('flowgres_service', 'flowgres.workspace_secrets', 'sealed_value', 'select'), false,
          'nor can flowgres_service');

-- rotate, revoke, delete
select test.act_as(:'owner');
select flowgres.secret_rotate(:'ws', 'OPENAI_KEY', '{"sealed": "enc:v1:k1:bmV3:bmV3", "preview": "…new1"}') as rotated \gset
select is((:'rotated'::jsonb ->> 'version')::int, 2, 'a rotation raises the version');
select is(:'rotated'::jsonb -> 'expires_at', 'null'::jsonb, 'and, without expires_at, clears the expiry');
select flowgres.secret_revoke(:'ws', 'OPENAI_KEY', 'leaked in a screenshot') as revoked \gset
select is(:'revoked'::jsonb ->> 'status', 'revoked', 'revoke marks it revoked');
select is(test.error_code_of(format($$select flowgres.secret_rotate(%L, 'OPENAI_KEY', '{"sealed": "enc:v1:a:b:c", "preview": "…"}')$$, :'ws')),
          'STATE_CONFLICT', 'a revoked secret cannot be rotated');
select is(test.error_code_of(format($$select flowgres.secret_revoke(%L, 'OPENAI_KEY')$$, :'ws')), 'STATE_CONFLICT', 'nor revoked twice');
select flowgres.secret_delete(:'ws', 'OPENAI_KEY');
select is(test.error_code_of(format($$select flowgres.secret_get(%L, 'OPENAI_KEY')$$, :'ws')), 'SECRET_NOT_FOUND', 'a deleted secret is gone');

-- secrets_for_run: the service's reader, with each secret's state
select flowgres.secret_create(:'ws', 'LIVE', '{"sealed": "enc:v1:k1:bGl2ZQ:bGl2ZQ", "preview": "…"}');
select flowgres.secret_create(:'ws', 'SOON', '{"sealed": "enc:v1:k1:c29vbg:c29vbg", "preview": "…"}', null, now() + interval '1 hour');
update flowgres.workspace_secrets set expires_at = now() - interval '1 second' where name = 'SOON';
select is(test.error_code_of(format($$select flowgres.secrets_for_run(%L, '["LIVE"]')$$, :'ws')), 'PERMISSION_DENIED',
          'secrets_for_run is the service''s alone');
select test.act_as(null);
select is(flowgres.secrets_for_run(:'ws', '["LIVE", "SOON", "GONE"]'),
          '{"LIVE": {"status": "active", "sealed": "enc:v1:k1:bGl2ZQ:bGl2ZQ", "version": 1}, "SOON": {"status": "expired"}}'::jsonb,
          'it answers active ones sealed, expired ones without a value, unknown ones not at all');
select is(flowgres.secrets_for_run(:'other_ws', '["LIVE"]'), '{}'::jsonb, 'and only the named workspace''s');

-- the cap: 100 per workspace
select test.act_as(:'owner');
select count(flowgres.secret_create(:'ws', 'K' || i, '{"sealed": "enc:v1:a:b:c", "preview": "…"}')) from generate_series(1, 98) i;
select is(test.error_code_of(format($$select flowgres.secret_create(%L, 'ONE_TOO_MANY', '{"sealed": "enc:v1:a:b:c", "preview": "…"}')$$, :'ws')),
          'VALIDATION_FAILED', 'the 101st secret is refused');

select * from finish();
rollback;
