-- Workspaces: create, get, list, update with aliases, status, soft delete and restore.
begin;
select plan(37);

select test.new_user('owner@example.com') as owner \gset
select test.new_user('other@example.com') as other \gset
select test.home_of(:'other') as other_home \gset
select test.act_as(:'owner');

select flowgres.workspace_create('Acme Labs') ->> 'id' as acme \gset
select is((select slug from flowgres.workspaces where id = :'acme'), 'acme-labs', 'the slug is made from the name');
select is((flowgres.workspace_get(:'acme')) ->> 'role', 'owner', 'workspace_get tells the actor''s role');
select is(test.audit_count(:'acme', 'workspace.create'), 1::bigint, 'workspace.create is audited');
select is(flowgres.workspace_create('Beta', 'beta-team') ->> 'slug', 'beta-team', 'an explicit slug is kept');
select is(test.error_code_of($$select flowgres.workspace_create('Gamma', 'beta-team')$$), 'WORKSPACE_SLUG_TAKEN', 'a taken slug is refused');
select is(test.error_code_of($$select flowgres.workspace_create('Gamma', 'api')$$), 'VALIDATION_FAILED', 'a reserved slug is refused');
select is(test.error_code_of($$select flowgres.workspace_create('Gamma', 'x''; drop table flowgres.apps; --')$$), 'VALIDATION_FAILED', 'an injection string is not a slug');
select is(test.error_code_of($$select flowgres.workspace_create(repeat('n', 101))$$), 'VALIDATION_FAILED', 'names over 100 characters are refused');
select is(test.error_code_of($$select flowgres.workspace_create('<script>alert(1)</script>', 'html-name')$$), 'ok', 'HTML in a name is stored as text');
select is((select name from flowgres.workspaces where slug = 'html-name'), '<script>alert(1)</script>', 'and comes back unchanged');
select ok(to_regclass('flowgres.apps') is not null, 'the apps table is intact');

select is(jsonb_array_length(flowgres.workspace_list()), 4, 'workspace_list shows the actor''s workspaces only');
select is(test.error_code_of(format('select flowgres.workspace_get(%L)', :'other_home')), 'WORKSPACE_NOT_FOUND', 'another tenant''s workspace does not exist for the actor');
select is(test.error_code_of(format('select flowgres.workspace_update(%L, %L)', :'other_home', '{"name": "mine"}')), 'WORKSPACE_NOT_FOUND', 'nor can it be updated');

select is(flowgres.workspace_update(:'acme', '{"slug": "acme", "name": "Acme"}') ->> 'slug', 'acme', 'update changes the slug');
select is((select workspace_id from flowgres.workspace_slug_aliases where slug = 'acme-labs'), :'acme'::uuid, 'the old slug becomes an alias');
select is(test.error_code_of($$select flowgres.workspace_create('Squatter', 'acme-labs')$$), 'WORKSPACE_SLUG_TAKEN', 'nobody can take an alias');
select is(flowgres.workspace_update(:'acme', '{"slug": "acme-labs"}') ->> 'slug', 'acme-labs', 'the workspace can take its own alias back');
select is((select count(*) from flowgres.workspace_slug_aliases where workspace_id = :'acme' and slug = 'acme-labs'), 0::bigint, 'that alias is retired');
select is(test.error_code_of(format('select flowgres.workspace_update(%L, %L)', :'acme', '{"colour": "red", "name": 5}')), 'VALIDATION_FAILED', 'unknown and mistyped fields are refused');
select is(test.error_code_of(format('select flowgres.workspace_update(%L, %L)', :'acme', '{"plan": "enterprise"}')), 'PERMISSION_DENIED', 'owners do not change the plan (it would lift every limit)');
select is(flowgres.workspace_update(:'acme', '{"icon": "🚀"}') ->> 'plan', 'free', 'the plan stays');
select test.act_as(null);
select is(test.error_code_of(format('select flowgres.workspace_update(%L, %L)', :'acme', '{"plan": "platinum"}')), 'VALIDATION_FAILED', 'unknown plans are refused');
select is(flowgres.workspace_update(:'acme', '{"plan": "pro"}') ->> 'plan', 'pro', 'the operator changes the plan');
select test.act_as(:'owner');
select is(test.error_code_of(format('select flowgres.workspace_update(%L, %L)', :'acme', '{"status": "suspended"}')), 'PERMISSION_DENIED', 'owners do not change status');

select test.act_as(null);
select is(flowgres.workspace_update(:'acme', '{"status": "suspended"}') ->> 'status', 'suspended', 'the operator suspends a workspace');
select test.act_as(:'owner');
select is(test.error_code_of(format('select flowgres.app_create(%L, %L)', :'acme', 'App')), 'WORKSPACE_INACTIVE', 'a suspended workspace takes no changes');
select is(test.error_code_of(format('select flowgres.workspace_delete(%L)', :'acme')), 'WORKSPACE_SUSPENDED', 'its owner cannot delete it');
select test.act_as(null);
select is(flowgres.workspace_delete(:'acme') ->> 'status', 'deleted', 'the operator can');
select test.act_as(:'owner');
select is(test.error_code_of(format('select flowgres.workspace_restore(%L)', :'acme')), 'WORKSPACE_SUSPENDED', 'nor can its owner restore it out of the suspension');
select test.act_as(null);
select is(flowgres.workspace_restore(:'acme') ->> 'status', 'suspended', 'a restore returns it to the status it had: suspended');
select is((select metadata ->> 'status' from flowgres.audit_logs where workspace_id = :'acme' and action = 'workspace.restore'), 'suspended', 'and the audit says so');

select test.act_as(null);
select flowgres.workspace_update(:'acme', '{"status": "active"}');
select test.act_as(:'owner');
select is(flowgres.workspace_delete(:'acme') ->> 'status', 'deleted', 'workspace_delete soft-deletes');
select is(test.error_code_of(format('select flowgres.workspace_get(%L)', :'acme')), 'WORKSPACE_NOT_FOUND', 'a deleted workspace is gone for reads');
select is(flowgres.workspace_restore(:'acme') ->> 'status', 'active', 'it can be restored within the window');
select is(test.error_code_of(format('select flowgres.workspace_restore(%L)', :'acme')), 'STATE_CONFLICT', 'restoring an active workspace is a state conflict');

select flowgres.workspace_delete(:'acme');
update flowgres.workspaces set deleted_at = now() - interval '31 days' where id = :'acme';
select is(test.error_code_of(format('select flowgres.workspace_restore(%L)', :'acme')), 'WORKSPACE_RESTORE_EXPIRED', 'past the window it cannot be restored');

select * from finish();
rollback;
