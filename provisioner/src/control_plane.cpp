// Calls into the control plane for the provisioner (control_plane.hpp).
#include "control_plane.hpp"

#include "flowgres/json.hpp"

namespace flowgres::provisioner {
namespace {

Error as_flowgres_error(const DatabaseError &error) {
    if (auto code = error_code_from_sqlstate(error.sqlstate())) {
        std::string details = "null";
        try {
            Json detail = parse_json(error.detail(), "detail");
            if (json_t *inner = json_object_get(detail.get(), "details")) details = dump_json(inner);
        } catch (const Error &) {
        }
        return Error(*code, error.what(), details);
    }
    if (error.sqlstate().empty() || error.may_pass())
        return Error(ErrorCode::DB_UNAVAILABLE, std::string("the control database is unavailable: ") + error.what());
    return Error(ErrorCode::INTERNAL_ERROR, std::string("the control database failed: ") + error.what());
}

}  // namespace

ControlPlane::ControlPlane(const Options &options) {
    try {
        connection_.emplace(std::vector<std::pair<std::string, std::string>>{
            {"dbname", options.control_conninfo},
            {"connect_timeout", std::to_string(options.connect_timeout_seconds)},
            {"application_name", "flowgres-provision"}});
        // Session-wide: every call on this connection acts for the same actor. The extension
        // honours the setting only for flowgres_service members and superusers.
        if (!options.actor.empty()) connection_->query("select set_config('flowgres.actor', $1, false)", {options.actor});
    } catch (const DatabaseError &error) {
        throw as_flowgres_error(error);
    }
}

std::string ControlPlane::call(const std::string &sql, const std::vector<std::optional<std::string>> &params) {
    try {
        return connection_->value(sql, params).value_or("null");
    } catch (const DatabaseError &error) {
        throw as_flowgres_error(error);
    }
}

}  // namespace flowgres::provisioner
