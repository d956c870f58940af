// Version look-ups shared by version.cpp and lifecycle.cpp.
#pragma once

#include <optional>
#include <string>

#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"

namespace flowgres {

struct VersionRow {
    std::string id;
    std::string app_id;
    std::string version;
};

// VERSION_NOT_FOUND when absent (no permission check: callers check the app).
VersionRow load_version(const std::string &version_id);

// The problems of a workflow and its UI schema (JSON texts), each under "workflow.<field>" or
// "ui_schema.<field>", the workflow's with their node ids.
void add_document_problems(ValidationProblems &problems, const std::string &workflow_json, const std::string &ui_schema_json);

// The app's highest semantic version, and its id through `newest_id` when given.
std::optional<SemanticVersion> newest_version(const std::string &app_id, std::string *newest_id = nullptr);

}  // namespace flowgres
