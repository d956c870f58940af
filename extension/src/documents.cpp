// Shared pieces of the SQL API's bodies.
#include "documents.hpp"

#include <cstring>

#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "spi.hpp"

namespace flowgres {

Json parse_object_argument(const std::string &text, std::string_view field) {
    Json value = parse_json(text, field);
    if (!json_is_object(value.get())) throw field_error(field, std::string("must be an object, not ") + json_type_name(value.get()));
    return value;
}

std::string document_list(const std::string &document_sql, const std::string &where, const char *order_by,
                          const std::optional<std::string> &key) {
    std::string sql = std::string("select coalesce(jsonb_agg(doc order by ") + order_by + "), '[]')::text from (" + document_sql +
                      (where.empty() ? "" : " where " + where) + ") as documents(doc)";
    return (key ? query_value(sql, {*key}) : query_value(sql)).value_or("[]");
}

std::string workspace_document(const std::string &workspace_id, const std::string &role) {
    auto document = query_value(
        "select to_jsonb(w) || jsonb_build_object('role', $2::text) from flowgres.workspaces w where w.id = $1::uuid",
        {workspace_id, role});
    if (!document) throw Error(ErrorCode::WORKSPACE_NOT_FOUND, "workspace " + workspace_id + " not found");
    return *document;
}

std::string app_document(const std::string &app_id) {
    auto document = query_value(R"sql(
        select to_jsonb(a)
               || jsonb_build_object('access_policy', flowgres.access_policy_document(p),
                                     'current_version', (select jsonb_build_object('id', v.id, 'version', v.version)
                                                         from flowgres.app_versions v where v.id = a.current_version_id))
        from flowgres.apps a join flowgres.app_access_policies p on p.app_id = a.id
        where a.id = $1::uuid)sql",
                                {app_id});
    if (!document) throw Error(ErrorCode::APP_NOT_FOUND, "app " + app_id + " not found");
    return *document;
}

std::string first_free_slug(std::string base, const std::function<bool(const std::string &)> &is_taken) {
    if (!is_taken(base)) return base;
    for (int suffix = 2; suffix < 1000; suffix++) {
        std::string tail = "-" + std::to_string(suffix);
        std::string head = base.substr(0, kSlugMaxLength - tail.size());
        while (!head.empty() && head.back() == '-') head.pop_back();
        std::string candidate = head + tail;
        if (!is_taken(candidate)) return candidate;
    }
    throw Error(ErrorCode::VALIDATION_FAILED, "no free slug near " + base + "; choose one");
}

std::string slug_from_text(std::string_view text, std::string_view suffix) {
    std::string slug = slugify(text);
    if (slug.size() < kSlugMinLength || is_reserved_slug(slug))
        slug = slug.empty() ? std::string(suffix) : slug + "-" + std::string(suffix);
    return slug;
}

SealedValue parse_sealed_value(const std::string &json, std::string_view field) {
    Json value = parse_json(json, field);
    const char *sealed = json_string_value(json_object_get(value.get(), "sealed"));
    const char *preview = json_string_value(json_object_get(value.get(), "preview"));
    if (!json_is_object(value.get()) || !sealed || !preview)
        throw field_error(field, "must be {\"sealed\", \"preview\"}: a value sealed by flowgresd (set it through the "
                                 "HTTP API, which seals it)");
    if (std::string_view(sealed).rfind("enc:v1:", 0) != 0 || std::strlen(sealed) > 32 * 1024)
        throw field_error(field, "sealed must be a sealed secret (enc:v1:<key id>:<nonce>:<ciphertext>)");
    if (std::string_view(preview).rfind("…", 0) != 0 || std::strlen(preview) > 24)
        throw field_error(field, "preview must start with … and be at most 24 bytes");
    return {sealed, preview};
}

}  // namespace flowgres
