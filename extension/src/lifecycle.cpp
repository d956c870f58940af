// The app lifecycle (README "Lifecycle"): publish, rollback, deprecate, archive.
// Transitions come from core's table; an illegal one is STATE_CONFLICT, never a no-op.
#include "access_policy_store.hpp"
#include "audit.hpp"
#include "boundary.hpp"
#include "documents.hpp"
#include "flowgres/app_lifecycle.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/permissions.hpp"
#include "functions.hpp"
#include "permission.hpp"
#include "spi.hpp"
#include "version.hpp"

namespace flowgres {
namespace {

// Locks the app row, checks app_publish and the transition; returns the access and new status.
struct Transition {
    AppAccess access;
    AppStatus to;
};

Transition begin_transition(const Actor &actor, const std::string &app_id, AppAction action) {
    AppAccess access = require_app_permission(actor, app_id, permission::app_publish, WorkspaceUse::write);
    // Re-read under the row lock: a concurrent transition may have moved the app.
    access.status = query_value("select status from flowgres.apps where id = $1::uuid for update", {app_id}).value();
    access.current_version_id = query_value("select current_version_id from flowgres.apps where id = $1::uuid", {app_id});
    AppStatus from = parse_app_status(access.status).value();
    auto to = app_transition(from, action);
    if (!to)
        throw Error(ErrorCode::STATE_CONFLICT,
                    "cannot " + std::string(to_string(action)) + " an app that is " + access.status,
                    "{\"from\":" + json_quote(access.status) + ",\"action\":" + json_quote(to_string(action)) + "}");
    return {access, *to};
}

VersionRow version_of_app(const std::string &app_id, const std::string &version_id) {
    VersionRow version = load_version(version_id);
    if (version.app_id != app_id) throw Error(ErrorCode::VERSION_NOT_FOUND, "version " + version_id + " is not a version of this app");
    return version;
}

void set_current_version(const std::string &app_id, AppStatus status, const std::string &version_id) {
    query(R"sql(
        update flowgres.apps set status = $2, current_version_id = $3::uuid, published_at = now(), updated_at = now()
        where id = $1::uuid)sql",
          {app_id, std::string(to_string(status)), version_id});
}

std::string transition_metadata(const AppAccess &access, AppStatus to, const std::optional<VersionRow> &version) {
    std::string out = "{\"from\":" + json_quote(access.status) + ",\"to\":" + json_quote(to_string(to)) +
                      ",\"previous_version_id\":" + (access.current_version_id ? json_quote(*access.current_version_id) : "null");
    if (version) out += ",\"version_id\":" + json_quote(version->id) + ",\"version\":" + json_quote(version->version);
    return out + "}";
}

}  // namespace

SqlValue app_publish(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    std::optional<std::string> version_id = args.uuid(1);
    std::optional<std::string> policy_changes = args.jsonb(2);
    Actor actor = require_actor();
    Transition transition = begin_transition(actor, app_id, AppAction::publish);

    VersionRow version;
    if (version_id) {
        version = version_of_app(app_id, *version_id);
    } else {
        std::string newest_id;
        if (!newest_version(app_id, &newest_id)) throw field_error("version_id", "the app has no versions to publish");
        version = load_version(newest_id);
    }
    if (policy_changes) update_access_policy(actor, transition.access, *policy_changes);
    set_current_version(app_id, transition.to, version.id);
    write_audit(actor, transition.access.workspace.workspace_id, "app.publish", "app", app_id,
                transition_metadata(transition.access, transition.to, version));
    return SqlValue::jsonb(app_document(app_id));
}

SqlValue app_rollback(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    std::string version_id = args.required_uuid(1, "version_id");
    Actor actor = require_actor();
    Transition transition = begin_transition(actor, app_id, AppAction::rollback);
    VersionRow target = version_of_app(app_id, version_id);
    VersionRow current = load_version(transition.access.current_version_id.value());
    if (SemanticVersion::parse(target.version).value() >= SemanticVersion::parse(current.version).value())
        throw field_error("version_id", "must be earlier than the current version " + current.version);
    set_current_version(app_id, transition.to, target.id);
    write_audit(actor, transition.access.workspace.workspace_id, "app.rollback", "app", app_id,
                transition_metadata(transition.access, transition.to, target));
    return SqlValue::jsonb(app_document(app_id));
}

namespace {

SqlValue simple_transition(CallArgs &args, AppAction action, std::string_view audit_action) {
    std::string app_id = args.required_uuid(0, "app_id");
    Actor actor = require_actor();
    Transition transition = begin_transition(actor, app_id, action);
    query("update flowgres.apps set status = $2, updated_at = now() where id = $1::uuid",
          {app_id, std::string(to_string(transition.to))});
    write_audit(actor, transition.access.workspace.workspace_id, audit_action, "app", app_id,
                transition_metadata(transition.access, transition.to, std::nullopt));
    return SqlValue::jsonb(app_document(app_id));
}

}  // namespace

SqlValue app_deprecate(CallArgs &args) { return simple_transition(args, AppAction::deprecate, "app.deprecate"); }
SqlValue app_archive(CallArgs &args) { return simple_transition(args, AppAction::archive, "app.archive"); }

}  // namespace flowgres
