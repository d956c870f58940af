// The provisioner's calls into the control plane: one blocking connection that acts for the
// configured actor, and flowgres errors raised by the extension turned back into Error with
// their code and details. Not for: anything on a workspace's own server.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "blocking_connection.hpp"
#include "flowgres/provisioner.hpp"

namespace flowgres::provisioner {

class ControlPlane {
public:
    explicit ControlPlane(const Options &options);
    // `select flowgres.<function>(…)::text`, each call its own transaction. Throws Error: the
    // extension's own codes, DB_UNAVAILABLE when the control database cannot be reached,
    // INTERNAL_ERROR for any other failure.
    std::string call(const std::string &sql, const std::vector<std::optional<std::string>> &params);

private:
    std::optional<BlockingConnection> connection_;
};

}  // namespace flowgres::provisioner
