-- Apps: create within the plan's limit, get, list with filters and pagination, update with
-- aliases, duplicate.
begin;
select plan(27);

select test.new_user('maker@example.com') as maker \gset
select test.home_of(:'maker') as ws \gset
select test.act_as(:'maker');

select flowgres.app_create(:'ws', 'Greeter', null, 'Says hello') ->> 'id' as greeter \gset
select is((select slug from flowgres.apps where id = :'greeter'), 'greeter', 'the slug is made from the name');
select is((select status from flowgres.apps where id = :'greeter'), 'draft', 'a new app is a draft');
select is((select access_mode from flowgres.app_access_policies where app_id = :'greeter'), 'private', 'with a private access policy');
select is((select default_app_id from flowgres.workspaces where id = :'ws'), :'greeter'::uuid, 'the first app becomes the workspace''s default');
select is(test.audit_count(:'ws', 'app.create'), 1::bigint, 'app.create is audited');
select is((flowgres.app_get(:'greeter')) -> 'access_policy' ->> 'access_mode', 'private', 'app_get includes the policy');

select is(test.error_code_of(format('select flowgres.app_create(%L, %L, %L)', :'ws', 'Twin', 'greeter')), 'APP_SLUG_TAKEN', 'slugs are unique in a workspace');
select is(test.error_code_of(format('select flowgres.app_create(%L, %L)', :'ws', '')), 'VALIDATION_FAILED', 'an empty name is refused');
select is(test.error_code_of(format('select flowgres.app_create(%L, null)', :'ws')), 'VALIDATION_FAILED', 'a NULL name is refused');
select is(test.error_code_of(format('select flowgres.app_create(%L, %L, %L)', :'ws', 'X', 'Robert''); DROP TABLE flowgres.apps;--')), 'VALIDATION_FAILED', 'an injection string is not a slug');
select is(test.error_code_of(format('select flowgres.app_create(%L, %L, null, %L)', :'ws', 'X', repeat('d', 2001))), 'VALIDATION_FAILED', 'descriptions are bounded');

select flowgres.app_create(:'ws', 'Alpha Tool') ->> 'id' as alpha \gset
select flowgres.app_create(:'ws', 'Beta Tool') ->> 'id' as beta \gset
select is(test.error_code_of(format('select flowgres.app_create(%L, %L)', :'ws', 'Fourth')), 'APP_QUOTA_EXCEEDED', 'the free plan stops at 3 apps');
select is((select count(*) from flowgres.apps where workspace_id = :'ws'), 3::bigint, 'and nothing was created');

select is((flowgres.app_list(:'ws')) -> 'meta' ->> 'total', '3', 'app_list counts every app');
select is((flowgres.app_list(:'ws', '{"q": "tool", "sort_by": "name", "order": "asc"}')) -> 'items' -> 0 ->> 'name', 'Alpha Tool', 'q filters and sort_by orders');
select is(jsonb_array_length((flowgres.app_list(:'ws', '{"page": 2, "page_size": 2, "sort_by": "name"}')) -> 'items'), 1, 'page 2 of size 2 holds the rest');
select is((flowgres.app_list(:'ws', '{"page_size": 2}')) -> 'meta' ->> 'total_pages', '2', 'total_pages is reported');
select is((flowgres.app_list(:'ws', '{"status": "published"}')) -> 'meta' ->> 'total', '0', 'status filters');
select is(test.error_code_of(format('select flowgres.app_list(%L, %L)', :'ws', '{"sort_by": "name; drop table x", "page_size": 1000, "colour": 1}')), 'VALIDATION_FAILED', 'bad filters are refused, not ignored');
select is(test.error_code_of(format('select flowgres.app_list(%L, %L)', :'ws', '[1]')), 'VALIDATION_FAILED', 'filters must be an object');

select is(flowgres.app_update(:'greeter', '{"slug": "hello", "description": null}') ->> 'slug', 'hello', 'app_update changes the slug');
select is((select app_id from flowgres.app_slug_aliases where workspace_id = :'ws' and slug = 'greeter'), :'greeter'::uuid, 'the old slug becomes an alias');
select is(test.error_code_of(format('select flowgres.app_update(%L, %L)', :'alpha', '{"slug": "greeter"}')), 'APP_SLUG_TAKEN', 'no other app takes the alias');
select is(test.error_code_of(format('select flowgres.app_update(%L, %L)', :'alpha', '{"status": "published"}')), 'VALIDATION_FAILED', 'status is not an updatable field');

-- Archived apps do not count toward the limit; a copy takes the freed place.
select flowgres.app_archive(:'beta');
select is(test.error_code_of(format('select flowgres.app_update(%L, %L)', :'beta', '{"name": "Zombie"}')), 'STATE_CONFLICT', 'archived apps are read-only');
select flowgres.version_create(:'greeter', '1.0.0', test.workflow());
select flowgres.app_duplicate(:'greeter') ->> 'id' as copy \gset
select is((select name || ' / ' || status from flowgres.apps where id = :'copy'), 'Greeter (copy) / draft', 'app_duplicate makes a draft copy');
select is((select version from flowgres.app_versions where app_id = :'copy'), '1.0.0', 'with the newest version');

select * from finish();
rollback;
