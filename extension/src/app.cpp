// Apps (seed §7, §23.4): create within the plan's app limit, get, list with filters and
// pagination (seed §66), update with slug aliases, duplicate.
#include <algorithm>
#include <array>

#include "audit.hpp"
#include "boundary.hpp"
#include "documents.hpp"
#include "flowgres/app_lifecycle.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/permissions.hpp"
#include "flowgres/public_page.hpp"
#include "functions.hpp"
#include "permission.hpp"
#include "spi.hpp"

namespace flowgres {
namespace {

constexpr long long kDefaultPageSize = 20;
constexpr long long kMaxPageSize = 100;
constexpr std::array<std::string_view, 5> kSortColumns = {"created_at", "updated_at", "name", "slug", "status"};

bool app_slug_taken(const std::string &workspace_id, const std::string &slug,
                    const std::optional<std::string> &except_app_id = {}) {
    auto taken = query_value(R"sql(
        select exists (select 1 from flowgres.apps where workspace_id = $1::uuid and slug = $2 and id is distinct from $3::uuid)
            or exists (select 1 from flowgres.app_slug_aliases where workspace_id = $1::uuid and slug = $2 and app_id is distinct from $3::uuid))sql",
                             {workspace_id, slug, except_app_id});
    return taken && *taken == "t";
}

// Locks the workspace row (serialising concurrent creations), then counts what the sessions
// before this one committed (spi.hpp: lock, then count) and refuses past the plan's limit.
// Archived apps do not count: they can never run again.
void check_app_quota(const WorkspaceAccess &access) {
    query("select 1 from flowgres.workspaces where id = $1::uuid for update", {access.workspace_id});
    auto result = query_latest_snapshot(R"sql(
        select p.max_apps,
               (select count(*) from flowgres.apps a where a.workspace_id = w.id and a.status <> 'archived')
        from flowgres.workspaces w join flowgres.billing_plans p on p.code = w.plan
        where w.id = $1::uuid)sql",
                                        {access.workspace_id});
    const SqlRow &row = result.rows.at(0);
    if (row[0] && std::stoll(*row[0]) <= std::stoll(row.text(1)))
        throw Error(ErrorCode::APP_QUOTA_EXCEEDED,
                    "the " + access.plan + " plan allows " + *row[0] + " apps; archive one or change the plan",
                    "{\"plan\":" + json_quote(access.plan) + ",\"limit\":" + *row[0] + ",\"current\":" + row.text(1) + "}");
}

std::string choose_app_slug(const std::string &workspace_id, const std::optional<std::string> &slug, std::string_view name) {
    if (slug) {
        check_slug("slug", *slug);
        if (app_slug_taken(workspace_id, *slug))
            throw Error(ErrorCode::APP_SLUG_TAKEN, "app slug " + *slug + " is taken in this workspace", "{\"field\":\"slug\"}");
        return *slug;
    }
    return first_free_slug(slug_from_text(name, "app"),
                           [&](const std::string &candidate) { return app_slug_taken(workspace_id, candidate); });
}

std::string insert_app(const Actor &actor, const std::string &workspace_id, const std::string &name, const std::string &slug,
                       const std::optional<std::string> &description, const std::optional<std::string> &icon,
                       const std::string &owner_user_id) {
    std::string app_id = query_value(R"sql(
        insert into flowgres.apps (workspace_id, owner_user_id, name, slug, description, icon)
        values ($1::uuid, $2::uuid, $3, $4, $5, $6) returning id)sql",
                                     {workspace_id, owner_user_id, name, slug, description, icon})
                             .value();
    query("insert into flowgres.app_access_policies (app_id, workspace_id, updated_by) values ($1::uuid, $2::uuid, $3::uuid)",
          {app_id, workspace_id, actor.user_param()});
    // A workspace *is* its first app until told otherwise (README "Apps": default_app_id).
    query("update flowgres.workspaces set default_app_id = $2::uuid where id = $1::uuid and default_app_id is null",
          {workspace_id, app_id});
    return app_id;
}

void check_description(const std::optional<std::string> &description) {
    if (description && !description->empty()) {
        if (!is_valid_utf8(*description)) throw field_error("description", "must be valid UTF-8");
        if (utf8_length(*description) > kDescriptionMaxLength) throw field_error("description", "must be at most 2000 characters");
        if (description->find('\0') != std::string::npos) throw field_error("description", "must not contain NUL");
    }
}

long long integer_filter(ValidationProblems &problems, const json_t *filters, const char *key, long long fallback,
                         long long low, long long high) {
    const json_t *value = json_object_get(filters, key);
    if (value == nullptr) return fallback;
    if (!json_is_integer(value) || json_integer_value(value) < low || json_integer_value(value) > high) {
        problems.add(key, "must be an integer from " + std::to_string(low) + " to " + std::to_string(high));
        return fallback;
    }
    return json_integer_value(value);
}

}  // namespace

SqlValue app_create(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string name = args.required_text(1, "name");
    std::optional<std::string> slug = args.text(2);
    std::optional<std::string> description = args.text(3);
    std::optional<std::string> icon = args.text(4);
    check_display_text("name", name, kAppNameMaxLength);
    check_description(description);
    if (icon) check_display_text("icon", *icon, kIconMaxLength);
    Actor actor = require_actor();
    WorkspaceAccess access = require_workspace_permission(actor, workspace_id, permission::apps_create, WorkspaceUse::write);
    check_app_quota(access);
    std::string chosen_slug = choose_app_slug(workspace_id, slug, name);
    std::string owner = actor.is_system() ? query_value("select owner_user_id from flowgres.workspaces where id = $1::uuid", {workspace_id}).value()
                                          : actor.user_id;
    std::string app_id = insert_app(actor, workspace_id, name, chosen_slug, description, icon, owner);
    write_audit(actor, workspace_id, "app.create", "app", app_id, "{\"slug\":" + json_quote(chosen_slug) + "}");
    return SqlValue::jsonb(app_document(app_id));
}

SqlValue app_get(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    Actor actor = require_actor();
    require_app_permission(actor, app_id, permission::app_view_metrics, WorkspaceUse::read);
    return SqlValue::jsonb(app_document(app_id));
}

SqlValue app_list(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Json filters = parse_object_argument(args.jsonb(1).value_or("{}"), "filters");
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, permission::app_view_metrics, WorkspaceUse::read);

    ValidationProblems problems;
    const char *key;
    json_t *value;
    json_object_foreach(filters.get(), key, value) {
        std::string_view name(key);
        if (name != "status" && name != "q" && name != "sort_by" && name != "order" && name != "page" && name != "page_size")
            problems.add(name, "is not a known filter (status, q, sort_by, order, page, page_size)");
    }
    std::optional<std::string> status;
    if (const json_t *value = json_object_get(filters.get(), "status")) {
        if (!json_is_string(value) || !parse_app_status(json_string_value(value)))
            problems.add("status", "must be one of draft, published, deprecated, archived");
        else
            status = json_string_value(value);
    }
    std::optional<std::string> search;
    if (const json_t *value = json_object_get(filters.get(), "q")) {
        if (!json_is_string(value) || json_string_length(value) > 200 || !is_valid_utf8(json_string_value(value)))
            problems.add("q", "must be a string of at most 200 characters");
        else
            search = json_string_value(value);
    }
    std::string sort_by = "created_at";
    if (const json_t *value = json_object_get(filters.get(), "sort_by")) {
        const char *text = json_string_value(value);
        if (!text || std::find(kSortColumns.begin(), kSortColumns.end(), text) == kSortColumns.end())
            problems.add("sort_by", "must be one of created_at, updated_at, name, slug, status");
        else
            sort_by = text;
    }
    std::string order = sort_by == "name" || sort_by == "slug" ? "asc" : "desc";
    if (const json_t *value = json_object_get(filters.get(), "order")) {
        const char *text = json_string_value(value);
        if (!text || (std::string_view(text) != "asc" && std::string_view(text) != "desc"))
            problems.add("order", "must be asc or desc");
        else
            order = text;
    }
    long long page = integer_filter(problems, filters.get(), "page", 1, 1, 1000000);
    long long page_size = integer_filter(problems, filters.get(), "page_size", kDefaultPageSize, 1, kMaxPageSize);
    problems.throw_if_any();

    // The ORDER BY column comes from the whitelist above, never from input text.
    std::string ordering = sort_by + " " + order + ", id " + order;
    std::string sql = R"sql(
        with matching as (
            select a.* from flowgres.apps a
            where a.workspace_id = $1::uuid
              and ($2::text is null or a.status = $2)
              and ($3::text is null
                   or strpos(lower(a.name), lower($3)) > 0 or strpos(a.slug, lower($3)) > 0))
        select jsonb_build_object(
            'items', (select coalesce(jsonb_agg(to_jsonb(page_rows) order by )sql" + ordering + R"sql(), '[]')
                      from (select * from matching order by )sql" + ordering + R"sql(
                            limit $4::bigint offset $5::bigint) page_rows),
            'meta', jsonb_build_object('page', $6::bigint, 'page_size', $4::bigint,
                                       'total', (select count(*) from matching),
                                       'total_pages', ceil((select count(*) from matching)::numeric / $4::bigint)::bigint,
                                       'sort_by', $7::text, 'order', $8::text)))sql";
    auto list = query_value(sql, {workspace_id, status, search, std::to_string(page_size),
                                  std::to_string((page - 1) * page_size), std::to_string(page), sort_by, order});
    return SqlValue::jsonb(list.value());
}

SqlValue app_update(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    Json changes = parse_object_argument(args.required_jsonb(1, "changes"), "changes");
    if (json_object_size(changes.get()) == 0) throw field_error("changes", "must name at least one field");
    ValidationProblems problems;
    std::optional<std::string> new_slug;
    const char *key;
    json_t *value;
    json_object_foreach(changes.get(), key, value) {
        std::string_view name(key);
        const char *text = json_string_value(value);
        try {
            if (name == "name") {
                if (!text) throw field_error(name, "must be a string");
                check_display_text(name, text, kAppNameMaxLength);
            } else if (name == "slug") {
                if (!text) throw field_error(name, "must be a string");
                check_slug(name, text);
                new_slug = text;
            } else if (name == "description") {
                if (!text && !json_is_null(value)) throw field_error(name, "must be a string or null");
                if (text) check_description(std::string(text));
            } else if (name == "icon") {
                if (!text && !json_is_null(value)) throw field_error(name, "must be a string or null");
                if (text) check_display_text(name, text, kIconMaxLength);
            } else {
                throw field_error(name, "is not a known field (name, slug, description, icon)");
            }
        } catch (const Error &error) {
            problems.add(name, error);
        }
    }
    problems.throw_if_any();

    Actor actor = require_actor();
    AppAccess access = require_app_permission(actor, app_id, permission::app_edit, WorkspaceUse::write);
    if (access.status == "archived")
        throw Error(ErrorCode::STATE_CONFLICT, "app " + app_id + " is archived", "{\"from\":\"archived\",\"action\":\"update\"}");
    const std::string &workspace_id = access.workspace.workspace_id;
    if (new_slug && *new_slug != access.slug) {
        query("select 1 from flowgres.apps where id = $1::uuid for update", {app_id});
        if (app_slug_taken(workspace_id, *new_slug, app_id))
            throw Error(ErrorCode::APP_SLUG_TAKEN, "app slug " + *new_slug + " is taken in this workspace", "{\"field\":\"slug\"}");
        query("delete from flowgres.app_slug_aliases where workspace_id = $1::uuid and slug = $2", {workspace_id, *new_slug});
        query("insert into flowgres.app_slug_aliases (workspace_id, slug, app_id) values ($1::uuid, $2, $3::uuid) on conflict do nothing",
              {workspace_id, access.slug, app_id});
    }
    std::string changes_text = dump_json(changes.get());
    query(R"sql(
        update flowgres.apps set
            name = case when $2::jsonb ? 'name' then $2::jsonb ->> 'name' else name end,
            slug = case when $2::jsonb ? 'slug' then $2::jsonb ->> 'slug' else slug end,
            description = case when $2::jsonb ? 'description' then $2::jsonb ->> 'description' else description end,
            icon = case when $2::jsonb ? 'icon' then $2::jsonb ->> 'icon' else icon end,
            updated_at = now()
        where id = $1::uuid)sql",
          {app_id, changes_text});
    write_audit(actor, workspace_id, "app.update", "app", app_id,
                "{\"changes\":" + changes_text + ",\"previous_slug\":" + json_quote(access.slug) + "}");
    return SqlValue::jsonb(app_document(app_id));
}

// One section of the public page (branding, seo or inputs), merged and checked as a whole,
// under a row lock so two editors' patches both land.
SqlValue app_public_page_update(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    std::string section = args.required_text(1, "section");
    Json changes = parse_object_argument(args.required_jsonb(2, "changes"), "changes");
    Actor actor = require_actor();
    AppAccess access = require_app_permission(actor, app_id, permission::app_edit, WorkspaceUse::write);
    // Where the live page sends visitors (sign in, terms, privacy) is a publisher's decision,
    // like the page itself: an editor without publish rights could send them anywhere.
    if (section == "branding")
        for (const char *link : {"sign_in_url", "terms", "privacy"})
            if (json_object_get(changes.get(), link)) {
                require_app_permission(actor, app_id, permission::app_publish, WorkspaceUse::write);
                break;
            }
    if (access.status == "archived")
        throw Error(ErrorCode::STATE_CONFLICT, "app " + app_id + " is archived", "{\"from\":\"archived\",\"action\":\"update\"}");
    auto stored = query_value("select public_page::text from flowgres.apps where id = $1::uuid for update", {app_id});
    Json current = parse_json(stored.value_or("{}"), "public_page");
    Json page = merge_public_page(current.get(), section, changes.get());
    query("update flowgres.apps set public_page = $2::jsonb, updated_at = now() where id = $1::uuid",
          {app_id, dump_json(page.get())});
    write_audit(actor, access.workspace.workspace_id, "app.public_page_update", "app", app_id,
                "{\"section\":" + json_quote(section) + ",\"changes\":" + dump_json(changes.get()) + "}");
    return SqlValue::jsonb(app_document(app_id));
}

SqlValue app_duplicate(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    std::optional<std::string> name = args.text(1);
    std::optional<std::string> slug = args.text(2);
    if (name) check_display_text("name", *name, kAppNameMaxLength);
    Actor actor = require_actor();
    AppAccess source = require_app_permission(actor, app_id, permission::apps_create, WorkspaceUse::write);
    const std::string &workspace_id = source.workspace.workspace_id;
    auto original = query("select name, description, icon from flowgres.apps where id = $1::uuid", {app_id});
    const SqlRow &row = original.rows.at(0);
    std::string new_name = name.value_or(row.text(0) + " (copy)");
    if (!name && utf8_length(new_name) > kAppNameMaxLength) new_name = row.text(0);
    check_app_quota(source.workspace);
    std::string chosen_slug = choose_app_slug(workspace_id, slug, new_name);
    std::string owner = actor.is_system() ? query_value("select owner_user_id from flowgres.apps where id = $1::uuid", {app_id}).value()
                                          : actor.user_id;
    std::string copy_id = insert_app(actor, workspace_id, new_name, chosen_slug, row[1], row[2], owner);

    // The copy starts from the source's newest version and its policy, as a draft.
    query(R"sql(
        insert into flowgres.app_versions (app_id, workspace_id, version, workflow, ui_schema, db_schema, config, changelog, created_by)
        select $2::uuid, v.workspace_id, v.version, v.workflow, v.ui_schema, v.db_schema, v.config,
               'Copied from app ' || $1 || ' version ' || v.version, $3::uuid
        from flowgres.app_versions v where v.app_id = $1::uuid
        order by v.sequence desc limit 1)sql",
          {app_id, copy_id, actor.user_param()});
    query(R"sql(
        update flowgres.app_access_policies c set
            access_mode = s.access_mode, data_classification = s.data_classification, rate_limit = s.rate_limit,
            allowed_origins = s.allowed_origins, require_captcha = s.require_captcha, blocked_ips = s.blocked_ips,
            blocked_ip_hashes = s.blocked_ip_hashes, gray_ips = s.gray_ips, gray_ip_hashes = s.gray_ip_hashes,
            gray_policy = s.gray_policy, updated_at = now()
        from flowgres.app_access_policies s
        where s.app_id = $1::uuid and c.app_id = $2::uuid)sql",
          {app_id, copy_id});
    write_audit(actor, workspace_id, "app.duplicate", "app", copy_id, "{\"source_app_id\":" + json_quote(app_id) + "}");
    return SqlValue::jsonb(app_document(copy_id));
}

}  // namespace flowgres
