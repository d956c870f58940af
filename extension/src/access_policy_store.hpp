// Reading and writing an app's access policy row; shared by access_policy.cpp and app_publish.
#pragma once

#include <string>

#include "actor.hpp"
#include "permission.hpp"

namespace flowgres {

// Validates `changes` against the stored policy (core/access_policy), writes the merged
// policy and its audit row. The caller has checked app_publish on `app`.
void update_access_policy(const Actor &actor, const AppAccess &app, const std::string &changes);

}  // namespace flowgres
