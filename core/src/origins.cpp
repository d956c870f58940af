// allowed_origins matching (origins.hpp).
#include "flowgres/origins.hpp"

#include <cctype>

#include "flowgres/fields.hpp"

namespace flowgres {
namespace {

struct OriginParts {
    std::string scheme, host, port;
};

// "https://Shop.Example:443" → {https, shop.example, ""}: lowercase, default port dropped.
bool split_origin(std::string_view text, OriginParts &parts) {
    size_t separator = text.find("://");
    if (separator == std::string_view::npos) return false;
    parts.scheme = std::string(text.substr(0, separator));
    std::string_view rest = text.substr(separator + 3);
    if (rest.empty() || rest.find('/') != std::string_view::npos) return false;
    size_t colon = rest.rfind(':');
    parts.host = std::string(colon == std::string_view::npos ? rest : rest.substr(0, colon));
    parts.port = colon == std::string_view::npos ? "" : std::string(rest.substr(colon + 1));
    for (char &c : parts.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (char &c : parts.host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if ((parts.scheme == "https" && parts.port == "443") || (parts.scheme == "http" && parts.port == "80"))
        parts.port.clear();
    return !parts.host.empty();
}

}  // namespace

bool origin_matches(std::string_view allowed, std::string_view origin) {
    if (allowed == "*") return true;
    OriginParts want, have;
    if (!split_origin(allowed, want) || !split_origin(origin, have)) return false;
    if (want.scheme != have.scheme || want.port != have.port) return false;
    if (want.host.starts_with("*.")) {
        std::string_view suffix = std::string_view(want.host).substr(1);  // ".example.com"
        return have.host.size() > suffix.size() && std::string_view(have.host).ends_with(suffix);
    }
    return want.host == have.host;
}

bool origin_allowed(const json_t *allowed_origins, std::string_view origin) {
    if (!json_is_array(allowed_origins) || json_array_size(allowed_origins) == 0) return true;
    size_t index;
    json_t *entry;
    json_array_foreach(const_cast<json_t *>(allowed_origins), index, entry) {
        const char *text = json_string_value(entry);
        if (text && origin_matches(text, origin)) return true;
    }
    return false;
}

std::string frame_ancestors(const json_t *allowed_origins) {
    std::string sources = "'self'";
    size_t index;
    json_t *entry;
    json_array_foreach(const_cast<json_t *>(allowed_origins), index, entry) {
        const char *text = json_string_value(entry);
        if (text && is_origin(text)) sources += " " + std::string(text);
    }
    return sources;
}

}  // namespace flowgres
