// Appends to the partitioned audit_logs table.
#include "audit.hpp"

namespace flowgres {

void write_audit(const Actor &actor, const std::string &workspace_id, std::string_view action,
                 std::string_view target_type, const std::string &target_id, const std::string &metadata_json) {
    query(R"sql(
        insert into flowgres.audit_logs (workspace_id, actor_user_id, actor_role, action, target_type, target_id, metadata)
        values ($1::uuid, $2::uuid, $3, $4, $5, $6, $7::jsonb))sql",
          {workspace_id, actor.user_param(), actor.role_name, std::string(action), std::string(target_type), target_id,
           metadata_json});
}

}  // namespace flowgres
