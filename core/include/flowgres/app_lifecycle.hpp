// The app state machine (README "Lifecycle", seed §25.2) as one table.
// Not for: writing rows; the extension asks this table and raises STATE_CONFLICT on "no".
#pragma once

#include <optional>
#include <string_view>

namespace flowgres {

enum class AppStatus { draft, published, deprecated, archived };
enum class AppAction { publish, rollback, deprecate, archive };

std::optional<AppStatus> parse_app_status(std::string_view text);
std::string_view to_string(AppStatus status);
std::string_view to_string(AppAction action);

// The state after `action`, or nullopt when the action is illegal from `from`.
//   draft      --publish-->   published
//   published  --publish-->   published   (a new current version)
//   published  --rollback-->  published   (an earlier current version)
//   published  --deprecate--> deprecated
//   deprecated --archive-->   archived
//   draft      --archive-->   archived    (an abandoned draft; the README leaves it open)
std::optional<AppStatus> app_transition(AppStatus from, AppAction action);

}  // namespace flowgres
