// Access policies (seed §7.3, §31, §35.1): who may run an app, from where, how often.
#include "access_policy_store.hpp"
#include "audit.hpp"
#include "boundary.hpp"
#include "documents.hpp"
#include "flowgres/access_policy.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/permissions.hpp"
#include "functions.hpp"
#include "spi.hpp"

namespace flowgres {
namespace {

std::string stored_policy(const std::string &app_id) {
    return query_value("select flowgres.access_policy_document(p) from flowgres.app_access_policies p where app_id = $1::uuid",
                       {app_id})
        .value();
}

}  // namespace

void update_access_policy(const Actor &actor, const AppAccess &app, const std::string &changes) {
    Json patch = parse_object_argument(changes, "access_policy");
    Json current = parse_json(stored_policy(app.app_id), "stored access policy");
    Json merged = merge_access_policy(current.get(), patch.get());
    std::string merged_text = dump_json(merged.get());
    query(R"sql(
        update flowgres.app_access_policies set
            access_mode = $2::jsonb ->> 'access_mode',
            data_classification = $2::jsonb ->> 'data_classification',
            rate_limit = $2::jsonb -> 'rate_limit',
            allowed_origins = $2::jsonb -> 'allowed_origins',
            require_captcha = ($2::jsonb ->> 'require_captcha')::boolean,
            blocked_ips = $2::jsonb -> 'blocked_ips',
            blocked_ip_hashes = $2::jsonb -> 'blocked_ip_hashes',
            gray_ips = $2::jsonb -> 'gray_ips',
            gray_ip_hashes = $2::jsonb -> 'gray_ip_hashes',
            gray_policy = nullif($2::jsonb -> 'gray_policy', 'null'::jsonb),
            updated_by = $3::uuid,
            updated_at = now()
        where app_id = $1::uuid)sql",
          {app.app_id, merged_text, actor.user_param()});
    write_audit(actor, app.workspace.workspace_id, "access_policy.update", "app", app.app_id,
                "{\"changes\":" + dump_json(patch.get()) + "}");
}

SqlValue access_policy_get(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    Actor actor = require_actor();
    // Seed §30.3: readable by app_edit or app_publish.
    try {
        require_app_permission(actor, app_id, permission::app_edit, WorkspaceUse::read);
    } catch (const Error &error) {
        if (error.code() != ErrorCode::PERMISSION_DENIED) throw;
        require_app_permission(actor, app_id, permission::app_publish, WorkspaceUse::read);
    }
    return SqlValue::jsonb(stored_policy(app_id));
}

SqlValue access_policy_update(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    std::string changes = args.required_jsonb(1, "changes");
    Actor actor = require_actor();
    AppAccess app = require_app_permission(actor, app_id, permission::app_publish, WorkspaceUse::write);
    if (app.status == "archived")
        throw Error(ErrorCode::STATE_CONFLICT, "app " + app_id + " is archived", "{\"from\":\"archived\",\"action\":\"update_access_policy\"}");
    update_access_policy(actor, app, changes);
    return SqlValue::jsonb(stored_policy(app_id));
}

}  // namespace flowgres
