-- Members: invite, accept, list, change role, remove; owner rules; the plan's member limit.
begin;
select plan(21);

select test.new_user('boss@example.com') as boss \gset
select test.home_of(:'boss') as ws \gset
select test.new_user('ann@example.com') as ann \gset
select test.new_user('bob@example.com') as bob \gset
select test.act_as(:'boss');

select is(flowgres.member_invite(:'ws', 'ann@example.com', 'admin') ->> 'status', 'invited', 'member_invite creates an invitation');
select is(flowgres.has_permission(:'ann', :'ws', 'app_edit'), false, 'an invitation grants nothing yet');
select is(test.error_code_of(format('select flowgres.member_invite(%L, %L)', :'ws', 'ann@example.com')), 'MEMBER_EXISTS', 'inviting twice is refused');
select is(test.error_code_of(format('select flowgres.member_invite(%L, %L)', :'ws', 'nobody@example.com')), 'USER_NOT_FOUND', 'only existing users are invited');
select is(test.error_code_of(format('select flowgres.member_invite(%L, %L, %L)', :'ws', 'bob@example.com', 'superhero')), 'VALIDATION_FAILED', 'unknown roles are refused');

select test.act_as(:'ann');
select is(flowgres.member_accept(:'ws') ->> 'status', 'active', 'the invited user accepts');
select is(flowgres.has_permission(:'ann', :'ws', 'members_manage'), true, 'and holds the role''s permissions');
select is(test.error_code_of(format('select flowgres.member_accept(%L)', :'ws')), 'MEMBER_NOT_FOUND', 'accepting twice finds no invitation');

-- An admin manages members but never the owner role.
select is(test.error_code_of(format('select flowgres.member_invite(%L, %L, %L)', :'ws', 'bob@example.com', 'owner')), 'PERMISSION_DENIED', 'an admin cannot invite an owner');
select is(flowgres.member_invite(:'ws', 'bob@example.com', 'member') ->> 'role', 'member', 'an admin invites a member');
select test.act_as(:'bob');
select flowgres.member_accept(:'ws');
select test.act_as(:'ann');
select is(jsonb_array_length(flowgres.member_list(:'ws')), 3, 'member_list lists everyone');
select is(test.error_code_of(format('select flowgres.member_update_role(%L, %L, %L)', :'ws', :'boss', 'member')), 'PERMISSION_DENIED', 'an admin cannot demote an owner');

select test.act_as(:'boss');
select is(test.error_code_of(format('select flowgres.member_update_role(%L, %L, %L)', :'ws', :'boss', 'admin')), 'LAST_OWNER', 'the last owner cannot be demoted');
select is(test.error_code_of(format('select flowgres.member_remove(%L, %L)', :'ws', :'boss')), 'LAST_OWNER', 'nor leave');
select is(flowgres.member_update_role(:'ws', :'ann', 'owner') ->> 'role', 'owner', 'an owner makes another owner');
select is(flowgres.member_update_role(:'ws', :'boss', 'member') ->> 'role', 'member', 'then the first owner can step down');
select is((select owner_user_id from flowgres.workspaces where id = :'ws'), :'ann'::uuid, 'owner_user_id moves to a remaining owner');
select is(test.audit_count(:'ws', 'member.update_role'), 2::bigint, 'role changes are audited');

select test.act_as(:'bob');
select is(test.error_code_of(format('select flowgres.member_remove(%L, %L)', :'ws', :'boss')), 'PERMISSION_DENIED', 'a member cannot remove others');
select is(flowgres.member_remove(:'ws', :'bob') ->> 'user_id', :'bob', 'but can leave');

-- The free plan allows 5 members (invitations included).
select test.act_as(:'ann');
select test.new_user('c1@example.com'), test.new_user('c2@example.com'), test.new_user('c3@example.com'), test.new_user('c4@example.com');
select test.act_as(:'ann');
select flowgres.member_invite(:'ws', 'c1@example.com'), flowgres.member_invite(:'ws', 'c2@example.com'), flowgres.member_invite(:'ws', 'c3@example.com');
select is(test.error_code_of(format('select flowgres.member_invite(%L, %L)', :'ws', 'c4@example.com')), 'MEMBER_QUOTA_EXCEEDED', 'the sixth member of a free workspace is refused');

select * from finish();
rollback;
