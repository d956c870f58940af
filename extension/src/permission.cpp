// Workspace and app permission checks, and the SQL function has_permission.
#include "permission.hpp"

#include "boundary.hpp"
#include "catalog_cache.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/permissions.hpp"

namespace flowgres {
namespace {

// One statement: the workspace, and the actor's active role with its permission list.
constexpr std::string_view kWorkspaceWithRole = R"sql(
    select w.status, w.plan, r.name,
           coalesce(r.permissions ? $3, false)
    from flowgres.workspaces w
    left join flowgres.workspace_members m
           on m.workspace_id = w.id and m.user_id = $2::uuid and m.status = 'active'
    left join flowgres.workspace_roles r on r.id = m.role_id
    where w.id = $1::uuid)sql";

// The same for an app's workspace, with the app, in one statement.
constexpr std::string_view kAppWithRole = R"sql(
    select w.status, w.plan, r.name,
           coalesce(r.permissions ? $3, false),
           a.workspace_id, a.status, a.slug, a.current_version_id,
           coalesce(a.current_version_id,
                    (select v.id from flowgres.app_versions v where v.app_id = a.id order by v.sequence desc limit 1))
    from flowgres.apps a
    join flowgres.workspaces w on w.id = a.workspace_id
    left join flowgres.workspace_members m
           on m.workspace_id = w.id and m.user_id = $2::uuid and m.status = 'active'
    left join flowgres.workspace_roles r on r.id = m.role_id
    where a.id = $1::uuid)sql";

// kWorkspaceWithRole's or kAppWithRole's row for (`id`, the actor, `permission`), read once
// per backend until the catalogue changes (catalog_cache.hpp: workspaces, apps, members and
// roles all move its generation, and so does a new version, which kAppWithRole's version to
// run may be): most requests of the management API check one of them.
std::optional<SqlRow> row_with_role(CatalogCache<SqlRow> &cache, std::string_view statement, const std::string &id,
                                    const Actor &actor, std::string_view permission) {
    std::string key = id + "|" + (actor.is_system() ? std::string() : actor.user_id) + "|" + std::string(permission);
    return cache.get(key, [&]() -> std::optional<SqlRow> {
        SqlResult result = query(statement, {id, actor.user_param(), std::string(permission)});
        if (result.rows.empty()) return std::nullopt;
        return std::move(result.rows[0]);
    });
}

// The actor's access to the workspace from kWorkspaceWithRole's first four columns.
WorkspaceAccess check_workspace_access(const Actor &actor, const std::string &workspace_id, const SqlRow &row,
                                       std::string_view permission, WorkspaceUse use) {
    WorkspaceAccess access{workspace_id, row.text(0), row.text(1), actor.is_system() ? "operator" : row[2].value_or("")};
    if (!actor.is_system() && access.role.empty())
        throw Error(ErrorCode::WORKSPACE_NOT_FOUND, "workspace " + workspace_id + " not found");
    if (access.status == "deleted" && use != WorkspaceUse::restore)
        throw Error(ErrorCode::WORKSPACE_NOT_FOUND, "workspace " + workspace_id + " is deleted");
    if (use == WorkspaceUse::write && access.status != "active")
        throw Error(ErrorCode::WORKSPACE_INACTIVE, "workspace " + workspace_id + " is " + access.status);
    if (!actor.is_system() && !permission.empty() && row.text(3) != "t")
        throw Error(ErrorCode::PERMISSION_DENIED,
                    "role " + access.role + " lacks permission " + std::string(permission),
                    "{\"permission\":\"" + std::string(permission) + "\"}");
    return access;
}

}  // namespace

WorkspaceAccess require_workspace_permission(const Actor &actor, const std::string &workspace_id,
                                             std::string_view permission, WorkspaceUse use) {
    static CatalogCache<SqlRow> cache(4096);
    std::optional<SqlRow> row = row_with_role(cache, kWorkspaceWithRole, workspace_id, actor, permission);
    if (!row) throw Error(ErrorCode::WORKSPACE_NOT_FOUND, "workspace " + workspace_id + " not found");
    return check_workspace_access(actor, workspace_id, *row, permission, use);
}

AppAccess require_app_permission(const Actor &actor, const std::string &app_id, std::string_view permission,
                                 WorkspaceUse use) {
    static CatalogCache<SqlRow> cache(4096);
    std::optional<SqlRow> found = row_with_role(cache, kAppWithRole, app_id, actor, permission);
    if (!found) throw Error(ErrorCode::APP_NOT_FOUND, "app " + app_id + " not found");
    const SqlRow &row = *found;
    AppAccess access;
    try {
        access.workspace = check_workspace_access(actor, row.text(4), row, permission, use);
    } catch (const Error &error) {
        // The app's workspace is invisible to this actor: so is the app.
        if (error.code() == ErrorCode::WORKSPACE_NOT_FOUND)
            throw Error(ErrorCode::APP_NOT_FOUND, "app " + app_id + " not found");
        throw;
    }
    access.app_id = app_id;
    access.status = row.text(5);
    access.slug = row.text(6);
    access.current_version_id = row[7];
    access.version_to_run = row[8];
    return access;
}

// has_permission(user_id, workspace_id, permission) → boolean. Answers for the actor itself,
// for fellow members of the workspace, and for the operator; others learn nothing.
SqlValue has_permission(CallArgs &args) {
    std::string user_id = args.required_uuid(0, "user_id");
    std::string workspace_id = args.required_uuid(1, "workspace_id");
    std::string permission = args.required_text(2, "permission");
    if (!is_known_permission(permission)) throw field_error("permission", "is not a known permission");
    Actor actor = require_actor();
    if (!actor.is_system() && actor.user_id != user_id)
        require_workspace_permission(actor, workspace_id, "", WorkspaceUse::read);
    auto granted = query_value(R"sql(
        select coalesce(bool_or(r.permissions ? $3), false)
        from flowgres.workspace_members m
        join flowgres.workspace_roles r on r.id = m.role_id
        join flowgres.workspaces w on w.id = m.workspace_id and w.status <> 'deleted'
        where m.workspace_id = $1::uuid and m.user_id = $2::uuid and m.status = 'active')sql",
                               {workspace_id, user_id, permission});
    return SqlValue::boolean(granted && *granted == "t");
}

Actor require_scope_permission(const std::optional<std::string> &workspace_id, std::string_view permission,
                               WorkspaceUse use) {
    if (!workspace_id) return require_system_actor();
    Actor actor = require_actor();
    require_workspace_permission(actor, *workspace_id, permission, use);
    return actor;
}

}  // namespace flowgres
