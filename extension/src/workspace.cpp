// Workspaces: create, get, list, update (with slug aliases), soft delete and restore (seed §6).
#include "workspace.hpp"

#include "audit.hpp"
#include "boundary.hpp"
#include "documents.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/permissions.hpp"
#include "functions.hpp"
#include "permission.hpp"
#include "spi.hpp"

namespace flowgres {
namespace {

// A slug is taken by any workspace's current slug and by any workspace's old slug, so links
// to a renamed workspace never start pointing at someone else's.
bool workspace_slug_taken(const std::string &slug, const std::optional<std::string> &except_workspace_id = {}) {
    auto taken = query_value(R"sql(
        select exists (select 1 from flowgres.workspaces where slug = $1 and id is distinct from $2::uuid)
            or exists (select 1 from flowgres.workspace_slug_aliases where slug = $1 and workspace_id is distinct from $2::uuid))sql",
                             {slug, except_workspace_id});
    return taken && *taken == "t";
}

// Serialises claims of one slug across transactions (aliases have no cross-table constraint).
void lock_slug(const std::string &slug) {
    query("select pg_advisory_xact_lock(hashtext('flowgres.workspace_slug:' || $1))", {slug});
}

std::string permissions_array(std::string_view role) {
    std::string out = "[";
    for (auto name : system_role_permissions(role)) {
        if (out.size() > 1) out += ",";
        out += json_quote(name);
    }
    return out + "]";
}

constexpr std::string_view kStatusValues[] = {"active", "suspended", "cold_storage"};

}  // namespace

void check_icon(std::string_view field, std::string_view icon) {
    check_display_text(field, icon, kIconMaxLength);
}

void check_region(std::string_view field, std::string_view region) {
    if (region.empty() || region.size() > 50) throw field_error(field, "must be 1 to 50 characters");
    for (char c : region)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            throw field_error(field, "may contain only lowercase letters, digits and hyphens");
}

std::string create_workspace(const Actor &actor, const NewWorkspace &request) {
    check_display_text("name", request.name, kNameMaxLength);
    if (request.icon) check_icon("icon", *request.icon);
    if (request.region) check_region("region", *request.region);

    std::string slug;
    if (request.slug) {
        check_slug("slug", *request.slug);
        lock_slug(*request.slug);
        if (workspace_slug_taken(*request.slug))
            throw Error(ErrorCode::WORKSPACE_SLUG_TAKEN, "workspace slug " + *request.slug + " is taken",
                        "{\"field\":\"slug\"}");
        slug = *request.slug;
    } else {
        slug = first_free_slug(slug_from_text(request.slug_source, "team"),
                               [](const std::string &candidate) { return workspace_slug_taken(candidate); });
        lock_slug(slug);
    }

    std::string workspace_id = query_value(R"sql(
        insert into flowgres.workspaces (owner_user_id, name, slug, icon, region, settings)
        values ($1::uuid, $2, $3, $4, $5, jsonb_build_object('is_default', $6::boolean))
        returning id)sql",
                                           {request.owner_user_id, request.name, slug, request.icon, request.region,
                                            std::string(request.is_default ? "true" : "false")})
                                   .value();
    for (auto role : system_role_names())
        query("insert into flowgres.workspace_roles (workspace_id, name, permissions, is_system) values ($1::uuid, $2, $3::jsonb, true)",
              {workspace_id, std::string(role), permissions_array(role)});
    query(R"sql(
        insert into flowgres.workspace_members (workspace_id, user_id, role_id, status, joined_at)
        select $1::uuid, $2::uuid, r.id, 'active', now()
        from flowgres.workspace_roles r where r.workspace_id = $1::uuid and r.name = 'owner')sql",
          {workspace_id, request.owner_user_id});
    write_audit(actor, workspace_id, "workspace.create", "workspace", workspace_id,
                "{\"slug\":" + json_quote(slug) + ",\"owner_user_id\":" + json_quote(request.owner_user_id) + "}");
    return workspace_id;
}

SqlValue workspace_create(CallArgs &args) {
    NewWorkspace request;
    request.name = args.required_text(0, "name");
    request.slug = args.text(1);
    request.icon = args.text(2);
    request.region = args.text(3);
    request.slug_source = request.name;
    Actor actor = require_actor();
    if (actor.is_system())
        throw Error(ErrorCode::PERMISSION_DENIED,
                    "the operator owns no workspaces: act as a user (SET flowgres.actor) to create one");
    request.owner_user_id = actor.user_id;
    std::string workspace_id = create_workspace(actor, request);
    return SqlValue::jsonb(workspace_document(workspace_id, "owner"));
}

SqlValue workspace_get(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Actor actor = require_actor();
    WorkspaceAccess access = require_workspace_permission(actor, workspace_id, "", WorkspaceUse::read);
    return SqlValue::jsonb(workspace_document(workspace_id, access.role));
}

SqlValue workspace_list(CallArgs &args) {
    bool include_deleted = args.boolean(0).value_or(false);
    Actor actor = require_actor();
    auto list = query_value(R"sql(
        select coalesce(jsonb_agg(to_jsonb(w) || jsonb_build_object('role', coalesce(r.name, 'operator'))
                                  order by w.created_at desc, w.id), '[]')
        from flowgres.workspaces w
        left join flowgres.workspace_members m on m.workspace_id = w.id and m.user_id = $1::uuid and m.status = 'active'
        left join flowgres.workspace_roles r on r.id = m.role_id
        where ($1::uuid is null or m.id is not null)
          and ($2::boolean or w.status <> 'deleted'))sql",
                            {actor.user_param(), std::string(include_deleted ? "true" : "false")});
    return SqlValue::jsonb(list.value_or("[]"));
}

SqlValue workspace_update(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Json changes = parse_object_argument(args.required_jsonb(1, "changes"), "changes");
    Actor actor = require_actor();

    ValidationProblems problems;
    bool touches_profile = false, touches_plan = false, touches_status = false;
    std::optional<std::string> new_slug, new_plan, new_status, new_default_app;
    const char *key;
    json_t *value;
    json_object_foreach(changes.get(), key, value) {
        std::string_view name(key);
        const char *text = json_string_value(value);
        try {
            if (name == "name") {
                touches_profile = true;
                if (!text) throw field_error(name, "must be a string");
                check_display_text(name, text, kNameMaxLength);
            } else if (name == "slug") {
                touches_profile = true;
                if (!text) throw field_error(name, "must be a string");
                check_slug(name, text);
                new_slug = text;
            } else if (name == "icon" || name == "region") {
                touches_profile = true;
                if (json_is_null(value)) continue;  // null clears
                if (!text) throw field_error(name, "must be a string or null");
                name == "icon" ? check_icon(name, text) : check_region(name, text);
            } else if (name == "settings") {
                touches_profile = true;
                if (!json_is_object(value)) throw field_error(name, "must be an object");
                if (dump_json(value).size() > 65536) throw field_error(name, "must be at most 64 KiB");
            } else if (name == "default_app_id") {
                touches_profile = true;
                if (json_is_null(value)) continue;
                if (!text || !is_uuid(text)) throw field_error(name, "must be an app id or null");
                new_default_app = text;
            } else if (name == "plan") {
                touches_plan = true;
                if (!text) throw field_error(name, "must be a string");
                new_plan = text;
            } else if (name == "status") {
                touches_status = true;
                if (!text) throw field_error(name, "must be a string");
                bool known = false;
                for (auto status : kStatusValues) known = known || status == text;
                if (!known) throw field_error(name, "must be one of active, suspended, cold_storage (delete with workspace_delete)");
                new_status = text;
            } else {
                throw field_error(name, "is not a known field");
            }
        } catch (const Error &error) {
            problems.add(name, error);  // collect every field's problem, not just the first
        }
    }
    problems.throw_if_any();
    if (json_object_size(changes.get()) == 0) throw field_error("changes", "must name at least one field");

    // Status and plan belong to the platform operator (abuse, billing: a member who could pick
    // the enterprise plan would lift every limit); the rest to the workspace.
    WorkspaceUse use = touches_status ? WorkspaceUse::read : WorkspaceUse::write;
    if (touches_status && !actor.is_system())
        throw Error(ErrorCode::PERMISSION_DENIED, "only the platform operator changes a workspace's status",
                    "{\"field\":\"status\"}");
    if (touches_plan && !actor.is_system())
        throw Error(ErrorCode::PERMISSION_DENIED, "only the platform operator (or billing) changes a workspace's plan",
                    "{\"field\":\"plan\"}");
    WorkspaceAccess access = require_workspace_permission(actor, workspace_id, touches_profile ? permission::workspace_admin : "", use);

    if (new_plan && !query_value("select 1 from flowgres.billing_plans where code = $1", {*new_plan}))
        throw field_error("plan", "is not a known plan");
    if (new_default_app &&
        !query_value("select 1 from flowgres.apps where id = $1::uuid and workspace_id = $2::uuid", {*new_default_app, workspace_id}))
        throw field_error("default_app_id", "is not an app of this workspace");

    std::optional<std::string> old_slug = query_value(
        "select slug from flowgres.workspaces where id = $1::uuid for update", {workspace_id});
    if (new_slug && *new_slug != old_slug) {
        lock_slug(*new_slug);
        if (workspace_slug_taken(*new_slug, workspace_id))
            throw Error(ErrorCode::WORKSPACE_SLUG_TAKEN, "workspace slug " + *new_slug + " is taken", "{\"field\":\"slug\"}");
        // Taking back one's own old slug retires that alias; the slug being left becomes one.
        query("delete from flowgres.workspace_slug_aliases where slug = $1 and workspace_id = $2::uuid", {*new_slug, workspace_id});
        query("insert into flowgres.workspace_slug_aliases (slug, workspace_id) values ($1, $2::uuid) on conflict do nothing",
              {old_slug, workspace_id});
    }

    std::string changes_text = dump_json(changes.get());
    query(R"sql(
        update flowgres.workspaces set
            name = case when $2::jsonb ? 'name' then $2::jsonb ->> 'name' else name end,
            slug = case when $2::jsonb ? 'slug' then $2::jsonb ->> 'slug' else slug end,
            icon = case when $2::jsonb ? 'icon' then $2::jsonb ->> 'icon' else icon end,
            region = case when $2::jsonb ? 'region' then $2::jsonb ->> 'region' else region end,
            settings = case when $2::jsonb ? 'settings' then $2::jsonb -> 'settings' else settings end,
            default_app_id = case when $2::jsonb ? 'default_app_id' then ($2::jsonb ->> 'default_app_id')::uuid else default_app_id end,
            plan = case when $2::jsonb ? 'plan' then $2::jsonb ->> 'plan' else plan end,
            status = case when $2::jsonb ? 'status' then $2::jsonb ->> 'status' else status end,
            updated_at = now()
        where id = $1::uuid)sql",
          {workspace_id, changes_text});
    write_audit(actor, workspace_id, "workspace.update", "workspace", workspace_id,
                "{\"changes\":" + changes_text + ",\"previous_slug\":" + json_quote(old_slug.value_or("")) + "}");
    return SqlValue::jsonb(workspace_document(workspace_id, access.role));
}

// A suspension is the operator's: members can neither delete a suspended workspace nor
// restore one that was suspended when it was deleted, and a restore returns a workspace to the
// status it had, so deleting and restoring never lifts a suspension.
SqlValue workspace_delete(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Actor actor = require_actor();
    WorkspaceAccess access = require_workspace_permission(actor, workspace_id, permission::workspace_admin, WorkspaceUse::read);
    if (access.status == "suspended" && !actor.is_system())
        throw Error(ErrorCode::WORKSPACE_SUSPENDED, "workspace " + workspace_id + " is suspended: only the operator may delete it",
                    "{\"status\":\"suspended\",\"action\":\"delete\"}");
    query(R"sql(
        update flowgres.workspaces set status = 'deleted', status_before_delete = status, deleted_at = now(), updated_at = now()
        where id = $1::uuid)sql",
          {workspace_id});
    write_audit(actor, workspace_id, "workspace.delete", "workspace", workspace_id,
                "{\"previous_status\":" + json_quote(access.status) + "}");
    return SqlValue::jsonb(workspace_document(workspace_id, access.role));
}

SqlValue workspace_restore(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Actor actor = require_actor();
    WorkspaceAccess access = require_workspace_permission(actor, workspace_id, permission::workspace_admin, WorkspaceUse::restore);
    auto before = query_value("select coalesce(status_before_delete, 'active') from flowgres.workspaces where id = $1::uuid for update",
                              {workspace_id});
    if (access.status != "deleted")
        throw Error(ErrorCode::STATE_CONFLICT, "workspace " + workspace_id + " is " + access.status + ", not deleted",
                    "{\"from\":" + json_quote(access.status) + ",\"action\":\"restore\"}");
    if (before == "suspended" && !actor.is_system())
        throw Error(ErrorCode::WORKSPACE_SUSPENDED,
                    "workspace " + workspace_id + " was suspended when it was deleted: only the operator may restore it",
                    "{\"status\":\"suspended\",\"action\":\"restore\"}");
    auto restored = query(R"sql(
        update flowgres.workspaces set status = coalesce(status_before_delete, 'active'), status_before_delete = null,
                                       deleted_at = null, updated_at = now()
        where id = $1::uuid
          and deleted_at > now() - make_interval(days => current_setting('flowgres.workspace_restore_days')::int)
        returning status)sql",
                          {workspace_id});
    if (restored.rows.empty())
        throw Error(ErrorCode::WORKSPACE_RESTORE_EXPIRED, "workspace " + workspace_id + " was deleted too long ago to restore");
    write_audit(actor, workspace_id, "workspace.restore", "workspace", workspace_id,
                "{\"status\":" + json_quote(restored.rows[0].text(0)) + "}");
    return SqlValue::jsonb(workspace_document(workspace_id, access.role));
}

}  // namespace flowgres
