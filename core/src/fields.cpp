// Field rules of seed §66, written once for the extension and the daemon.
#include "flowgres/fields.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include "flowgres/cidr.hpp"
#include "flowgres/errors.hpp"

namespace flowgres {
namespace {

// Route prefixes, hostnames and words that would read as the platform's own pages.
constexpr std::array<std::string_view, 44> kReservedSlugs = {
    "admin",   "api",       "apps",     "app",      "assets",    "auth",     "billing",
    "cdn",     "console",   "dashboard", "default", "docs",      "embed",    "flowgres",
    "ftp",     "health",    "help",     "login",    "logout",    "mail",     "metrics",
    "new",     "null",      "openapi",  "ping",     "public",    "ready",    "register",
    "root",    "runtime",   "schema",   "settings", "signin",    "signup",   "smtp",
    "static",  "status",    "support",  "system",   "undefined", "webhooks", "workspace",
    "workspaces", "www"};

bool is_slug_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

bool is_reserved_slug(std::string_view slug) {
    return std::find(kReservedSlugs.begin(), kReservedSlugs.end(), slug) != kReservedSlugs.end();
}

void check_slug(std::string_view field, std::string_view slug) {
    if (slug.size() < kSlugMinLength || slug.size() > kSlugMaxLength)
        throw field_error(field, "must be 3 to 63 characters");
    bool previous_hyphen = true;  // a leading hyphen is refused like a doubled one
    for (char c : slug) {
        if (c == '-') {
            if (previous_hyphen) throw field_error(field, "hyphens must separate letters or digits");
            previous_hyphen = true;
        } else if (is_slug_char(c)) {
            previous_hyphen = false;
        } else {
            throw field_error(field, "may contain only lowercase letters, digits and hyphens");
        }
    }
    if (previous_hyphen) throw field_error(field, "hyphens must separate letters or digits");
    if (is_reserved_slug(slug)) throw field_error(field, "is a reserved word");
}

bool has_slug_characters(std::string_view text) {
    if (text.empty() || text.size() > kSlugMaxLength) return false;
    return std::all_of(text.begin(), text.end(), [](char c) { return is_slug_char(c) || c == '-'; });
}

std::string slugify(std::string_view text) {
    std::string out;
    for (char raw : text) {
        char c = raw >= 'A' && raw <= 'Z' ? static_cast<char>(raw - 'A' + 'a') : raw;
        if (is_slug_char(c)) {
            out.push_back(c);
        } else if (!out.empty() && out.back() != '-') {
            out.push_back('-');
        }
        if (out.size() >= kSlugMaxLength) break;
    }
    while (!out.empty() && out.back() == '-') out.pop_back();
    return out;
}

bool is_valid_utf8(std::string_view text) {
    size_t i = 0;
    while (i < text.size()) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        size_t extra;
        uint32_t code_point;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xE0) == 0xC0) { extra = 1; code_point = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { extra = 2; code_point = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { extra = 3; code_point = c & 0x07; }
        else return false;
        if (i + extra >= text.size()) return false;  // truncated sequence
        for (size_t k = 1; k <= extra; k++) {
            unsigned char next = static_cast<unsigned char>(text[i + k]);
            if ((next & 0xC0) != 0x80) return false;
            code_point = (code_point << 6) | (next & 0x3F);
        }
        // Overlong forms, surrogates and values past Unicode are not UTF-8.
        if ((extra == 1 && code_point < 0x80) || (extra == 2 && code_point < 0x800) ||
            (extra == 3 && code_point < 0x10000) || code_point > 0x10FFFF ||
            (code_point >= 0xD800 && code_point <= 0xDFFF))
            return false;
        i += extra + 1;
    }
    return true;
}

size_t utf8_length(std::string_view text) {
    return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

std::string utf8_prefix(std::string_view text, size_t max_characters) {
    size_t characters = 0, end = 0;
    while (end < text.size()) {
        if ((static_cast<unsigned char>(text[end]) & 0xC0) != 0x80) {
            if (characters == max_characters) break;
            characters++;
        }
        end++;
    }
    return std::string(text.substr(0, end));
}

void check_display_text(std::string_view field, std::string_view text, size_t max_length,
                        bool allow_empty) {
    if (!is_valid_utf8(text)) throw field_error(field, "must be valid UTF-8");
    for (char c : text) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7F) throw field_error(field, "must not contain control characters");
    }
    size_t first = text.find_first_not_of(' ');
    if (!allow_empty && first == std::string_view::npos) throw field_error(field, "must not be empty");
    if (first != std::string_view::npos && (text.front() == ' ' || text.back() == ' '))
        throw field_error(field, "must not start or end with a space");
    if (utf8_length(text) > max_length)
        throw field_error(field, "must be at most " + std::to_string(max_length) + " characters");
}

void check_email(std::string_view field, std::string_view email) {
    if (email.empty()) throw field_error(field, "must not be empty");
    if (email.size() > kEmailMaxLength) throw field_error(field, "must be at most 254 characters");
    size_t at = email.find('@');
    if (at == std::string_view::npos || at == 0 || email.find('@', at + 1) != std::string_view::npos)
        throw field_error(field, "must be an address like name@example.com");
    std::string_view domain = email.substr(at + 1);
    size_t dot = domain.find('.');
    if (domain.empty() || dot == std::string_view::npos || dot == 0 || domain.back() == '.' ||
        domain.find("..") != std::string_view::npos)
        throw field_error(field, "must be an address like name@example.com");
    for (char c : email) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7F || c == '<' || c == '>' || c == '"' || c == '\'' || c == ',' ||
            c == ';' || c == '\\' || c == '(' || c == ')')
            throw field_error(field, "must be an address like name@example.com");
    }
    if (!is_valid_utf8(email)) throw field_error(field, "must be valid UTF-8");
}

bool is_uuid(std::string_view text) {
    if (text.size() != 36) return false;
    for (size_t i = 0; i < text.size(); i++) {
        char c = text[i];
        bool hyphen_position = i == 8 || i == 13 || i == 18 || i == 23;
        if (hyphen_position) {
            if (c != '-') return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

void check_uuid(std::string_view field, std::string_view text) {
    if (!is_uuid(text)) throw field_error(field, "must be a UUID");
}

namespace {

bool parse_number(std::string_view text, unsigned long long &out) {
    if (text.empty() || (text.size() > 1 && text[0] == '0')) return false;  // no leading zeros
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

bool is_identifier(std::string_view text) {
    if (text.empty()) return false;
    return std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
    });
}

bool is_numeric(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    size_t start = 0;
    while (true) {
        size_t next = text.find(separator, start);
        parts.push_back(text.substr(start, next == std::string_view::npos ? next : next - start));
        if (next == std::string_view::npos) break;
        start = next + 1;
    }
    return parts;
}

}  // namespace

std::optional<SemanticVersion> SemanticVersion::parse(std::string_view text) {
    if (text.empty() || text.size() > 64) return std::nullopt;
    SemanticVersion version;
    size_t plus = text.find('+');
    if (plus != std::string_view::npos) {
        std::string_view build = text.substr(plus + 1);
        for (auto part : split(build, '.'))
            if (!is_identifier(part)) return std::nullopt;
        version.build = std::string(build);
        text = text.substr(0, plus);
    }
    size_t minus = text.find('-');
    if (minus != std::string_view::npos) {
        for (auto part : split(text.substr(minus + 1), '.')) {
            if (!is_identifier(part)) return std::nullopt;
            if (is_numeric(part) && part.size() > 1 && part[0] == '0') return std::nullopt;
            version.prerelease.emplace_back(part);
        }
        text = text.substr(0, minus);
    }
    auto core = split(text, '.');
    if (core.size() != 3) return std::nullopt;
    if (!parse_number(core[0], version.major) || !parse_number(core[1], version.minor) ||
        !parse_number(core[2], version.patch))
        return std::nullopt;
    return version;
}

std::string SemanticVersion::to_string() const {
    std::string out = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
    for (size_t i = 0; i < prerelease.size(); i++) out += (i == 0 ? "-" : ".") + prerelease[i];
    if (!build.empty()) out += "+" + build;
    return out;
}

// semver.org §11: numbers compare numerically, a pre-release ranks below its release,
// pre-release identifiers compare field by field (numeric < alphanumeric).
std::strong_ordering SemanticVersion::operator<=>(const SemanticVersion &other) const {
    if (auto c = major <=> other.major; c != 0) return c;
    if (auto c = minor <=> other.minor; c != 0) return c;
    if (auto c = patch <=> other.patch; c != 0) return c;
    if (prerelease.empty() || other.prerelease.empty())
        return prerelease.empty() <=> other.prerelease.empty();  // a release outranks its pre-releases
    for (size_t i = 0; i < prerelease.size() && i < other.prerelease.size(); i++) {
        const auto &a = prerelease[i];
        const auto &b = other.prerelease[i];
        bool a_numeric = is_numeric(a), b_numeric = is_numeric(b);
        if (a_numeric && b_numeric) {
            if (auto c = a.size() <=> b.size(); c != 0) return c;
            if (auto c = a.compare(b) <=> 0; c != 0) return c;
        } else if (a_numeric != b_numeric) {
            return a_numeric ? std::strong_ordering::less : std::strong_ordering::greater;
        } else if (auto c = a.compare(b) <=> 0; c != 0) {
            return c;
        }
    }
    return prerelease.size() <=> other.prerelease.size();
}

SemanticVersion check_semantic_version(std::string_view field, std::string_view text) {
    auto version = SemanticVersion::parse(text);
    if (!version) throw field_error(field, "must be a semantic version such as 1.2.0");
    return *version;
}

bool is_origin(std::string_view text) {
    if (text == "*") return true;
    std::string_view rest;
    if (text.starts_with("https://")) rest = text.substr(8);
    else if (text.starts_with("http://")) rest = text.substr(7);
    else return false;
    if (rest.empty() || rest.size() > 253 + 6) return false;
    size_t colon = rest.rfind(':');
    std::string_view host = colon == std::string_view::npos ? rest : rest.substr(0, colon);
    if (colon != std::string_view::npos) {
        unsigned long long port;
        if (!parse_number(rest.substr(colon + 1), port) || port == 0 || port > 65535) return false;
    }
    if (host.empty() || host.front() == '.' || host.back() == '.' || host.front() == '-') return false;
    // "*.example.com" allows any subdomain; anything else is a plain hostname.
    if (host.starts_with("*.")) host = host.substr(2);
    return std::all_of(host.begin(), host.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    });
}

bool is_ip_or_cidr(std::string_view text) { return CidrRange::parse(text).has_value(); }

}  // namespace flowgres

namespace flowgres {

bool is_iso8601_timestamp(std::string_view text) {
    size_t at = 0;
    auto digits = [&](size_t count) {
        if (at + count > text.size()) return false;
        for (size_t i = 0; i < count; i++)
            if (text[at + i] < '0' || text[at + i] > '9') return false;
        at += count;
        return true;
    };
    auto literal = [&](char c) {
        if (at < text.size() && text[at] == c) {
            at++;
            return true;
        }
        return false;
    };
    if (!digits(4) || !literal('-') || !digits(2) || !literal('-') || !digits(2)) return false;
    auto number = [&](size_t from, size_t count) { return std::stoi(std::string(text.substr(from, count))); };
    int year = number(0, 4), month = number(5, 2), day = number(8, 2);
    // As PostgreSQL checks them: a day the month has (February 29 in leap years only).
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month < 1 || month > 12 || day < 1 || day > kDays[month - 1] + (month == 2 && leap ? 1 : 0)) return false;
    if (at == text.size()) return true;
    if (!literal('T') && !literal(' ')) return false;
    size_t clock = at;
    if (!digits(2) || !literal(':') || !digits(2)) return false;
    if (number(clock, 2) > 23 || number(clock + 3, 2) > 59) return false;
    if (literal(':')) {
        if (!digits(2) || number(at - 2, 2) > 59) return false;
        if (literal('.')) {
            size_t start = at;
            while (at < text.size() && text[at] >= '0' && text[at] <= '9') at++;
            if (at == start || at - start > 6) return false;
        }
    }
    if (at == text.size() || literal('Z')) return at == text.size();
    if (!literal('+') && !literal('-')) return false;
    if (!digits(2) || number(at - 2, 2) > 15) return false;
    if (literal(':') && (!digits(2) || number(at - 2, 2) > 59)) return false;
    return at == text.size();
}

}  // namespace flowgres
