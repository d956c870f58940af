-- Model providers and the model catalogue (0.12), called as SQL: the platform's (operator) and
-- a workspace's (secrets_manage), validation, the platform-wide model switch, what a workspace
-- may use, and keys that no role can read.
begin;
select plan(27);

select test.new_user('llm-owner@example.com') as owner \gset
select test.home_of(:'owner') as ws \gset
select test.new_member(:'ws', 'llm-member@example.com', 'member') as member \gset
select test.new_user('llm-outsider@example.com') as outsider \gset

-- the platform's providers: the operator's
select test.act_as(null);
select flowgres.llm_provider_create('openai', 'https://api.openai.com/v1', 'openai',
                                    '{"sealed": "enc:v1:k1:bm9uY2U:a2V5", "preview": "…abcd"}', null, 30000, true,
                                    '[{"model": "gpt-4o-mini", "input_micros_per_1m": 150000, "output_micros_per_1m": 600000,
                                       "context_tokens": 128000, "quality": 6},
                                      {"model": "gpt-4o", "input_micros_per_1m": 2500000, "output_micros_per_1m": 10000000,
                                       "context_tokens": 128000, "quality": 9}]') as platform \gset
select is(:'platform'::jsonb ->> 'scope', 'platform', 'a platform provider');
select is((:'platform'::jsonb ->> 'has_api_key')::boolean, true, 'holding a key');
select ok(:'platform'::text not like '%enc:v1%', 'never answered');
select is(jsonb_array_length(:'platform'::jsonb -> 'models'), 2, 'with its models');
select is(has_column_privilege('flowgres_user', 'flowgres.llm_providers', 'sealed_api_key', 'select'), false,
          'no role reads the sealed key');
select is(test.error_code_of($$select flowgres.llm_provider_create('openai', 'https://other.example/v1')$$), 'LLM_PROVIDER_EXISTS',
          'a name is used once on the platform');

select test.act_as(:'owner');
select is(test.error_code_of($$select flowgres.llm_provider_create('mine', 'https://x.example/v1')$$), 'PERMISSION_DENIED',
          'members of a workspace do not add platform providers');
select is(test.error_code_of($$select flowgres.llm_provider_list()$$), 'PERMISSION_DENIED', 'nor list them');

-- a workspace's providers: owners and admins; the key is a workspace secret
select flowgres.llm_provider_create('team-gateway', 'http://127.0.0.1:9/v1', null, null, 'TEAM_KEY', null, null,
                                    '[{"model": "team-model", "quality": 7}]', :'ws') as own \gset
select is(:'own'::jsonb ->> 'scope', 'workspace', 'a workspace provider');
select is(:'own'::jsonb ->> 'api_key_secret', 'TEAM_KEY', 'naming its secret');
select is(test.error_code_of(format($$select flowgres.llm_provider_create('keyed', 'https://x.example/v1', null,
          '{"sealed": "enc:v1:a:b:c", "preview": "…"}', null, null, null, null, %L)$$, :'ws')), 'VALIDATION_FAILED',
          'a workspace provider holds no key of its own');
select is(test.error_code_of(format($$select flowgres.llm_provider_create('team-gateway', 'https://x.example/v1', null, null,
          null, null, null, null, %L)$$, :'ws')), 'LLM_PROVIDER_EXISTS', 'a name is used once per workspace');
select test.act_as(:'member');
select is(test.error_code_of(format($$select flowgres.llm_provider_create('by-member', 'https://x.example/v1', null, null,
          null, null, null, null, %L)$$, :'ws')), 'PERMISSION_DENIED', 'a member does not add providers');
select is(jsonb_array_length(flowgres.llm_provider_list(:'ws') -> 'items'), 1, 'but lists the workspace''s');
select test.act_as(:'outsider');
select is(test.error_code_of(format($$select flowgres.llm_provider_list(%L)$$, :'ws')), 'WORKSPACE_NOT_FOUND',
          'an outsider sees no workspace');

-- validation: every problem at once
select test.act_as(:'owner');
select is(jsonb_array_length(test.error_detail_of(format($$select flowgres.llm_provider_create('bad', 'ftp://x.example', 'grpc',
          null, '1nope', 5, null, '[{"model": "a b"}, {"model": "m", "input_micros_per_1m": -1}, {"model": "m"}]', %L)$$, :'ws')) -> 'details'),
          7, 'scheme, protocol, secret name, timeout, model id, price and a repeated model are all reported');
select is(test.error_code_of(format($$select flowgres.llm_provider_create('Bad Name', 'https://x.example', null, null, null,
          null, null, null, %L)$$, :'ws')), 'VALIDATION_FAILED', 'names are lowercase');
select is(test.error_code_of(format($$select flowgres.llm_provider_create('creds', 'https://user:pw@x.example/v1', null, null,
          null, null, null, null, %L)$$, :'ws')), 'VALIDATION_FAILED', 'a URL with credentials is refused');
select is(test.error_code_of(format($$select flowgres.llm_provider_update('team-gateway', '{"name": "renamed"}', %L)$$, :'ws')),
          'VALIDATION_FAILED', 'a provider is not renamed');

-- what the workspace may use: its own first, then the platform's
select is(array(select i ->> 'model' from jsonb_array_elements(flowgres.workspace_models(:'ws') -> 'items') i),
          array['team-model', 'gpt-4o', 'gpt-4o-mini'], 'the workspace''s models, then the platform''s');
select test.act_as(null);
select flowgres.llm_model_set_enabled('gpt-4o', false, 'deprecated');
select test.act_as(:'member');
select is(array(select i ->> 'model' from jsonb_array_elements(flowgres.workspace_models(:'ws') -> 'items') i),
          array['team-model', 'gpt-4o-mini'], 'a model switched off platform-wide is gone everywhere');
select is(test.error_code_of($$select flowgres.llm_model_set_enabled('gpt-4o', true)$$), 'PERMISSION_DENIED',
          'only the operator switches models');
select test.act_as(:'owner');
select flowgres.llm_provider_update('team-gateway', '{"enabled": false}', :'ws');
select is(array(select i ->> 'model' from jsonb_array_elements(flowgres.workspace_models(:'ws') -> 'items') i),
          array['gpt-4o-mini'], 'a disabled provider offers nothing');
select flowgres.llm_provider_update('team-gateway', '{"enabled": true, "models": [{"model": "other", "enabled": false}, {"model": "new-model"}]}', :'ws');
select is(array(select i ->> 'model' from jsonb_array_elements(flowgres.workspace_models(:'ws') -> 'items') i),
          array['new-model', 'gpt-4o-mini'], 'models are replaced as a list; a disabled model is left out');
select test.act_as(null);
select flowgres.llm_model_set_enabled('gpt-4o', true);
select test.act_as(:'owner');
select is(jsonb_array_length(flowgres.workspace_models(:'ws') -> 'items'), 3, 'switched on again, it is back');

select flowgres.llm_provider_delete('team-gateway', :'ws');
select is(test.error_code_of(format($$select flowgres.llm_provider_get('team-gateway', %L)$$, :'ws')), 'LLM_PROVIDER_NOT_FOUND',
          'a deleted provider is gone');
select is(test.audit_count(:'ws', 'llm_provider.create') + test.audit_count(:'ws', 'llm_provider.update')
          + test.audit_count(:'ws', 'llm_provider.delete'), 4::bigint, 'every change is audited');

select * from finish();
rollback;
