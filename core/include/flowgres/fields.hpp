// Field rules shared by every entry point (seed §66): slugs, names, emails, semantic versions,
// ids, origins and IP lists. Each check_* throws a VALIDATION_FAILED naming the field.
// Not for: whole-document validation (workflow, UI schema, access policy have their own files).
#pragma once

#include <compare>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flowgres {

constexpr size_t kSlugMinLength = 3;
constexpr size_t kSlugMaxLength = 63;
constexpr size_t kNameMaxLength = 100;
constexpr size_t kAppNameMaxLength = 200;
constexpr size_t kDescriptionMaxLength = 2000;
constexpr size_t kEmailMaxLength = 254;
constexpr size_t kIconMaxLength = 50;

// Words that would collide with routes or hostnames; refused as workspace and app slugs.
bool is_reserved_slug(std::string_view slug);

// Lowercase letters, digits and single inner hyphens, 3–63 characters, not reserved.
void check_slug(std::string_view field, std::string_view slug);

// Whether `text` has a slug's characters and at most its length (not whether it is a valid
// slug): what may name a workspace or an app at all, so junk is refused without a look-up.
bool has_slug_characters(std::string_view text);

// A best-effort slug from free text (a name or an email's local part); may still be short.
std::string slugify(std::string_view text);

// Valid UTF-8, no control characters, trimmed non-empty, at most `max_length` code points.
void check_display_text(std::string_view field, std::string_view text, size_t max_length,
                        bool allow_empty = false);

bool is_valid_utf8(std::string_view text);
size_t utf8_length(std::string_view text);
// At most `max_characters` characters of `text`, cut between characters, never inside one (a
// cut byte sequence is invalid UTF-8, which PostgreSQL refuses to store).
std::string utf8_prefix(std::string_view text, size_t max_characters);

// A pragmatic address check: one @, a non-empty local part, a dotted domain, no spaces.
void check_email(std::string_view field, std::string_view email);

// RFC 4122 textual form (any version); lowercases nothing, only checks.
bool is_uuid(std::string_view text);
void check_uuid(std::string_view field, std::string_view text);

// Semantic Versioning 2.0.0.
struct SemanticVersion {
    unsigned long long major = 0, minor = 0, patch = 0;
    std::vector<std::string> prerelease;  // dot-separated identifiers
    std::string build;                    // ignored by ordering

    static std::optional<SemanticVersion> parse(std::string_view text);
    std::string to_string() const;
    std::strong_ordering operator<=>(const SemanticVersion &other) const;
    bool operator==(const SemanticVersion &other) const { return (*this <=> other) == 0; }
};
SemanticVersion check_semantic_version(std::string_view field, std::string_view text);

// "https://example.com", "http://localhost:3000" or "*": scheme and host, no path.
bool is_origin(std::string_view text);

// An IPv4/IPv6 address or CIDR block.
bool is_ip_or_cidr(std::string_view text);

// "2026-11-23", "2026-11-23T10:00:00Z", "2026-11-23 10:00:00.5+01:00": dates and times
// PostgreSQL reads as timestamptz the same way everywhere (no month names, no "now").
bool is_iso8601_timestamp(std::string_view text);

}  // namespace flowgres
