// Workspace members (seed §6.3, §30): invite by email, accept, list, change role, remove.
// Invariants: only owners grant or take the owner role; a workspace always keeps an active
// owner; workspaces.owner_user_id always names one of its active owners.
#include "audit.hpp"
#include "boundary.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/permissions.hpp"
#include "functions.hpp"
#include "permission.hpp"
#include "spi.hpp"

namespace flowgres {
namespace {

constexpr std::string_view kMemberDocument = R"sql(
    select jsonb_build_object('workspace_id', m.workspace_id, 'user_id', m.user_id, 'email', u.email,
                              'display_name', u.display_name, 'role', r.name, 'status', m.status,
                              'invited_by', m.invited_by, 'joined_at', m.joined_at, 'created_at', m.created_at,
                              'updated_at', m.updated_at)
    from flowgres.workspace_members m
    join flowgres.users u on u.id = m.user_id
    join flowgres.workspace_roles r on r.id = m.role_id
    where m.workspace_id = $1::uuid and m.user_id = $2::uuid)sql";

std::string member_document(const std::string &workspace_id, const std::string &user_id) {
    auto document = query_value(kMemberDocument, {workspace_id, user_id});
    if (!document) throw Error(ErrorCode::MEMBER_NOT_FOUND, "user " + user_id + " is not a member");
    return *document;
}

std::string role_id_for(const std::string &workspace_id, const std::string &role) {
    auto id = query_value("select id from flowgres.workspace_roles where workspace_id = $1::uuid and name = $2",
                          {workspace_id, role});
    if (!id) throw field_error("role", "is not a role of this workspace (owner, admin, member)");
    return *id;
}

// The member's current role name and status, with the workspace row locked so that two
// concurrent demotions cannot both see "another owner remains" (spi.hpp: lock, then count).
struct Membership {
    std::string role;
    std::string status;
};
Membership locked_membership(const std::string &workspace_id, const std::string &user_id) {
    query("select 1 from flowgres.workspaces where id = $1::uuid for update", {workspace_id});
    auto result = query_latest_snapshot(R"sql(
        select r.name, m.status from flowgres.workspace_members m
        join flowgres.workspace_roles r on r.id = m.role_id
        where m.workspace_id = $1::uuid and m.user_id = $2::uuid)sql",
                        {workspace_id, user_id});
    if (result.rows.empty()) throw Error(ErrorCode::MEMBER_NOT_FOUND, "user " + user_id + " is not a member");
    return {result.rows[0].text(0), result.rows[0].text(1)};
}

void refuse_if_last_owner(const std::string &workspace_id, const std::string &user_id) {
    auto others = query_value_latest_snapshot(R"sql(
        select count(*) from flowgres.workspace_members m
        join flowgres.workspace_roles r on r.id = m.role_id
        where m.workspace_id = $1::uuid and m.user_id <> $2::uuid and r.name = 'owner' and m.status = 'active')sql",
                              {workspace_id, user_id});
    if (others.value_or("0") == "0")
        throw Error(ErrorCode::LAST_OWNER, "user " + user_id + " is the workspace's last owner");
}

// Keeps workspaces.owner_user_id on an active owner after `leaving_user_id` stops being one.
void hand_over_ownership(const std::string &workspace_id, const std::string &leaving_user_id) {
    query(R"sql(
        update flowgres.workspaces w set owner_user_id = (
            select m.user_id from flowgres.workspace_members m
            join flowgres.workspace_roles r on r.id = m.role_id
            where m.workspace_id = w.id and m.user_id <> $2::uuid and r.name = 'owner' and m.status = 'active'
            order by m.joined_at, m.user_id limit 1), updated_at = now()
        where w.id = $1::uuid and w.owner_user_id = $2::uuid)sql",
          {workspace_id, leaving_user_id});
}

void require_owner_for_owner_role(const WorkspaceAccess &access, std::string_view what) {
    if (access.role != "owner" && access.role != "operator")
        throw Error(ErrorCode::PERMISSION_DENIED, "only an owner may " + std::string(what),
                    "{\"permission\":\"owner\"}");
}

}  // namespace

SqlValue member_invite(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string email = args.required_text(1, "email");
    std::string role = args.text(2).value_or("member");
    check_email("email", email);
    Actor actor = require_actor();
    WorkspaceAccess access = require_workspace_permission(actor, workspace_id, permission::members_manage, WorkspaceUse::write);
    std::string role_id = role_id_for(workspace_id, role);
    if (role == "owner") require_owner_for_owner_role(access, "invite an owner");

    auto user_id = query_value("select id from flowgres.users where lower(email) = lower($1) and status = 'active'", {email});
    if (!user_id) throw Error(ErrorCode::USER_NOT_FOUND, "no active user has email " + email, "{\"field\":\"email\"}");
    query("select 1 from flowgres.workspaces where id = $1::uuid for update", {workspace_id});
    if (query_value_latest_snapshot(
            "select 1 from flowgres.workspace_members where workspace_id = $1::uuid and user_id = $2::uuid",
            {workspace_id, *user_id}))
        throw Error(ErrorCode::MEMBER_EXISTS, email + " is already a member or invited");

    auto limit = query_latest_snapshot(R"sql(
        select p.max_members, (select count(*) from flowgres.workspace_members m where m.workspace_id = w.id)
        from flowgres.workspaces w join flowgres.billing_plans p on p.code = w.plan where w.id = $1::uuid)sql",
                       {workspace_id});
    const SqlRow &row = limit.rows.at(0);
    if (row[0] && std::stoll(*row[0]) <= std::stoll(row.text(1)))
        throw Error(ErrorCode::MEMBER_QUOTA_EXCEEDED, "the plan allows " + *row[0] + " members",
                    "{\"plan\":" + json_quote(access.plan) + ",\"limit\":" + *row[0] + ",\"current\":" + row.text(1) + "}");

    query(R"sql(
        insert into flowgres.workspace_members (workspace_id, user_id, role_id, status, invited_by)
        values ($1::uuid, $2::uuid, $3::uuid, 'invited', $4::uuid))sql",
          {workspace_id, *user_id, role_id, actor.user_param()});
    write_audit(actor, workspace_id, "member.invite", "user", *user_id, "{\"role\":" + json_quote(role) + "}");
    return SqlValue::jsonb(member_document(workspace_id, *user_id));
}

SqlValue member_accept(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Actor actor = require_actor();
    if (actor.is_system()) throw Error(ErrorCode::PERMISSION_DENIED, "the operator accepts no invitations");
    auto status = query_value(R"sql(
        select w.status from flowgres.workspace_members m join flowgres.workspaces w on w.id = m.workspace_id
        where m.workspace_id = $1::uuid and m.user_id = $2::uuid and m.status = 'invited')sql",
                              {workspace_id, actor.user_id});
    if (!status || *status == "deleted")
        throw Error(ErrorCode::MEMBER_NOT_FOUND, "no pending invitation to workspace " + workspace_id);
    query(R"sql(
        update flowgres.workspace_members set status = 'active', joined_at = now(), updated_at = now()
        where workspace_id = $1::uuid and user_id = $2::uuid)sql",
          {workspace_id, actor.user_id});
    write_audit(actor, workspace_id, "member.accept", "user", actor.user_id);
    return SqlValue::jsonb(member_document(workspace_id, actor.user_id));
}

SqlValue member_list(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, permission::members_manage, WorkspaceUse::read);
    auto list = query_value(R"sql(
        select coalesce(jsonb_agg(jsonb_build_object('user_id', m.user_id, 'email', u.email, 'display_name', u.display_name,
                                                     'role', r.name, 'status', m.status, 'invited_by', m.invited_by,
                                                     'joined_at', m.joined_at, 'created_at', m.created_at)
                                  order by m.created_at, m.user_id), '[]')
        from flowgres.workspace_members m
        join flowgres.users u on u.id = m.user_id
        join flowgres.workspace_roles r on r.id = m.role_id
        where m.workspace_id = $1::uuid)sql",
                            {workspace_id});
    return SqlValue::jsonb(list.value_or("[]"));
}

SqlValue member_update_role(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string user_id = args.required_uuid(1, "user_id");
    std::string role = args.required_text(2, "role");
    Actor actor = require_actor();
    WorkspaceAccess access = require_workspace_permission(actor, workspace_id, permission::members_manage, WorkspaceUse::write);
    std::string role_id = role_id_for(workspace_id, role);
    Membership current = locked_membership(workspace_id, user_id);
    if (current.role == role) return SqlValue::jsonb(member_document(workspace_id, user_id));
    if (role == "owner" || current.role == "owner") require_owner_for_owner_role(access, "grant or take the owner role");
    if (current.role == "owner") {
        refuse_if_last_owner(workspace_id, user_id);
    }
    query("update flowgres.workspace_members set role_id = $3::uuid, updated_at = now() where workspace_id = $1::uuid and user_id = $2::uuid",
          {workspace_id, user_id, role_id});
    if (current.role == "owner") hand_over_ownership(workspace_id, user_id);
    write_audit(actor, workspace_id, "member.update_role", "user", user_id,
                "{\"from\":" + json_quote(current.role) + ",\"to\":" + json_quote(role) + "}");
    return SqlValue::jsonb(member_document(workspace_id, user_id));
}

SqlValue member_remove(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string user_id = args.required_uuid(1, "user_id");
    Actor actor = require_actor();
    // Leaving needs no permission beyond membership; removing others needs members_manage.
    bool leaving = !actor.is_system() && actor.user_id == user_id;
    WorkspaceAccess access = require_workspace_permission(actor, workspace_id, leaving ? "" : permission::members_manage,
                                                          WorkspaceUse::read);
    Membership current = locked_membership(workspace_id, user_id);
    if (current.role == "owner") {
        if (!leaving) require_owner_for_owner_role(access, "remove an owner");
        refuse_if_last_owner(workspace_id, user_id);
    }
    std::string removed = member_document(workspace_id, user_id);
    query("delete from flowgres.workspace_members where workspace_id = $1::uuid and user_id = $2::uuid", {workspace_id, user_id});
    if (current.role == "owner") hand_over_ownership(workspace_id, user_id);
    write_audit(actor, workspace_id, "member.remove", "user", user_id,
                "{\"role\":" + json_quote(current.role) + ",\"status\":" + json_quote(current.status) + "}");
    return SqlValue::jsonb(removed);
}

}  // namespace flowgres
