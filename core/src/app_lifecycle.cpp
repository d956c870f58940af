// The app state machine's table and names.
#include "flowgres/app_lifecycle.hpp"

namespace flowgres {

std::optional<AppStatus> parse_app_status(std::string_view text) {
    if (text == "draft") return AppStatus::draft;
    if (text == "published") return AppStatus::published;
    if (text == "deprecated") return AppStatus::deprecated;
    if (text == "archived") return AppStatus::archived;
    return std::nullopt;
}

std::string_view to_string(AppStatus status) {
    switch (status) {
        case AppStatus::draft: return "draft";
        case AppStatus::published: return "published";
        case AppStatus::deprecated: return "deprecated";
        case AppStatus::archived: return "archived";
    }
    return "unknown";
}

std::string_view to_string(AppAction action) {
    switch (action) {
        case AppAction::publish: return "publish";
        case AppAction::rollback: return "rollback";
        case AppAction::deprecate: return "deprecate";
        case AppAction::archive: return "archive";
    }
    return "unknown";
}

std::optional<AppStatus> app_transition(AppStatus from, AppAction action) {
    switch (action) {
        case AppAction::publish:
            if (from == AppStatus::draft || from == AppStatus::published) return AppStatus::published;
            break;
        case AppAction::rollback:
            if (from == AppStatus::published) return AppStatus::published;
            break;
        case AppAction::deprecate:
            if (from == AppStatus::published) return AppStatus::deprecated;
            break;
        case AppAction::archive:
            if (from == AppStatus::deprecated || from == AppStatus::draft) return AppStatus::archived;
            break;
    }
    return std::nullopt;
}

}  // namespace flowgres
