-- Output safety rules (0.14), called as SQL: the platform's defaults and the operator's rules,
-- a workspace's own (app_publish), checks on category, kind, text and patterns, what a
-- workspace sees, the service-only reader and deletion.
begin;
select plan(16);

select test.new_user('safety-owner@example.com') as owner \gset
select test.home_of(:'owner') as ws \gset
select test.new_member(:'ws', 'safety-member@example.com', 'member') as member \gset
select test.new_user('safety-outsider@example.com') as outsider \gset

select test.act_as(null);
select ok(jsonb_array_length(flowgres.safety_rule_list() -> 'items') >= 10, 'the platform starts with a default list');
select ok((select count(distinct category) from flowgres.safety_rules where workspace_id is null) = 5,
          'covering all five categories');
select flowgres.safety_rule_add('violence', '(?i)detonat(e|ion) sequence', 'pattern') as platform_rule \gset
select is(:'platform_rule'::jsonb ->> 'scope', 'platform', 'the operator adds platform rules');
select is(flowgres.safety_rule_add('violence', '(?i)detonat(e|ion) sequence', 'pattern') ->> 'id', :'platform_rule'::jsonb ->> 'id',
          'adding the same rule again changes nothing');

select test.act_as(:'owner');
select is(test.error_code_of($$select flowgres.safety_rule_add('hate', 'x')$$), 'PERMISSION_DENIED', 'members of a workspace do not add platform rules');
select flowgres.safety_rule_add('illegal', 'Acme trade secret', null, :'ws') as own \gset
select is(:'own'::jsonb ->> 'kind', 'phrase', 'a phrase by default');
select is(test.error_code_of(format($$select flowgres.safety_rule_add('spam', 'x', null, %L)$$, :'ws')), 'VALIDATION_FAILED', 'an unknown category is refused');
select is(test.error_code_of(format($$select flowgres.safety_rule_add('hate', 'x', 'regex', %L)$$, :'ws')), 'VALIDATION_FAILED', 'an unknown kind is refused');
select is(test.error_code_of(format($$select flowgres.safety_rule_add('hate', '(a)\1', 'pattern', %L)$$, :'ws')), 'VALIDATION_FAILED',
          'a pattern RE2 cannot compile is refused');
select is(test.error_code_of(format($$select flowgres.safety_rule_add('hate', repeat('x', 201), null, %L)$$, :'ws')), 'VALIDATION_FAILED',
          'a rule is at most 200 bytes');

select test.act_as(:'member');
select is(test.error_code_of(format($$select flowgres.safety_rule_add('hate', 'y', null, %L)$$, :'ws')), 'PERMISSION_DENIED', 'a member does not add rules');
select ok(exists (select 1 from jsonb_array_elements(flowgres.safety_rule_list(:'ws') -> 'items') i
                  where i ->> 'text' = 'Acme trade secret') and
          exists (select 1 from jsonb_array_elements(flowgres.safety_rule_list(:'ws') -> 'items') i where i ->> 'scope' = 'platform'),
          'a member sees the workspace''s rules and the platform''s');
select is(test.error_code_of(format('select flowgres.safety_rule_delete(%L)', :'own'::jsonb ->> 'id')), 'PERMISSION_DENIED',
          'a member does not delete rules');
select test.act_as(:'outsider');
select is(test.error_code_of(format('select flowgres.safety_rule_delete(%L)', :'own'::jsonb ->> 'id')), 'SAFETY_RULE_NOT_FOUND',
          'another workspace''s rule is not there for an outsider');

select test.act_as(null);
select ok(flowgres.safety_rules_for_run(:'ws') @> '[{"category": "illegal", "kind": "phrase", "text": "Acme trade secret"}]',
          'the service reads the workspace''s rules with the platform''s');
select test.act_as(:'owner');
select flowgres.safety_rule_delete((:'own'::jsonb ->> 'id')::uuid);
select is(test.error_code_of(format('select flowgres.safety_rule_delete(%L)', :'own'::jsonb ->> 'id')), 'SAFETY_RULE_NOT_FOUND',
          'a deleted rule is gone');

select * from finish();
rollback;
