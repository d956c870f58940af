// Version look-ups shared by version.cpp and lifecycle.cpp.
#pragma once

#include <optional>
#include <string>

#include "flowgres/fields.hpp"

namespace flowgres {

struct VersionRow {
    std::string id;
    std::string app_id;
    std::string version;
};

// VERSION_NOT_FOUND when absent (no permission check: callers check the app).
VersionRow load_version(const std::string &version_id);

// The app's highest semantic version, and its id through `newest_id` when given.
std::optional<SemanticVersion> newest_version(const std::string &app_id, std::string *newest_id = nullptr);

}  // namespace flowgres
