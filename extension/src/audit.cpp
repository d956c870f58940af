// Appends to the partitioned audit_logs table, and reads a workspace's rows back.
#include "audit.hpp"
#include "boundary.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/permissions.hpp"
#include "functions.hpp"
#include "list_filters.hpp"
#include "permission.hpp"
#include "spi.hpp"

namespace flowgres {

void write_audit(const Actor &actor, const std::string &workspace_id, std::string_view action,
                 std::string_view target_type, const std::string &target_id, const std::string &metadata_json) {
    query(R"sql(
        insert into flowgres.audit_logs (workspace_id, actor_user_id, actor_role, action, target_type, target_id, metadata)
        values ($1::uuid, $2::uuid, $3, $4, $5, $6, $7::jsonb))sql",
          {workspace_id, actor.user_param(), actor.role_name, std::string(action), std::string(target_type), target_id,
           metadata_json});
}

}  // namespace flowgres

// ---------------------------------------------------------------------------------------
// audit_log_list: a workspace's rows, newest first, with the filters of seed §35.4.
// ---------------------------------------------------------------------------------------


namespace flowgres {
namespace {

constexpr long long kAuditDefaultPageSize = 50;
constexpr long long kAuditMaxPageSize = 200;

}  // namespace

SqlValue audit_log_list(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Json filters = filters_argument(args, 1);
    ValidationProblems problems;
    check_known_filters(problems, filters.get(),
                        {"action", "actor_user_id", "target_type", "target_id", "from", "to", "page", "page_size"});
    auto action = string_filter(problems, filters.get(), "action", 100);
    auto actor_user_id = string_filter(problems, filters.get(), "actor_user_id", 36);
    if (actor_user_id && !is_uuid(*actor_user_id)) problems.add("actor_user_id", "must be a user id");
    auto target_type = string_filter(problems, filters.get(), "target_type", 100);
    auto target_id = string_filter(problems, filters.get(), "target_id", 200);
    PeriodFilter period = period_filter(problems, filters.get());
    PageFilter pages = pages_filter(problems, filters.get(), kAuditDefaultPageSize, kAuditMaxPageSize);
    problems.throw_if_any();

    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, permission::logs_view, WorkspaceUse::read);
    auto list = query_value(R"sql(
        with matching as (
            select * from flowgres.audit_logs
            where workspace_id = $1::uuid
              and ($2::text is null or action = $2)
              and ($3::uuid is null or actor_user_id = $3::uuid)
              and ($4::text is null or target_type = $4)
              and ($5::text is null or target_id = $5)
              and ($6::timestamptz is null or created_at >= $6::timestamptz)
              and ($7::timestamptz is null or created_at < $7::timestamptz))
        select jsonb_build_object(
            'items', (select coalesce(jsonb_agg(to_jsonb(page_rows) order by created_at desc, id desc), '[]')
                      from (select * from matching order by created_at desc, id desc
                            limit $8::bigint offset $9::bigint) page_rows),
            'meta', jsonb_build_object('page', $10::bigint, 'page_size', $8::bigint,
                                       'total', (select count(*) from matching),
                                       'total_pages', ceil((select count(*) from matching)::numeric / $8::bigint)::bigint)))sql",
                            {workspace_id, action, actor_user_id, target_type, target_id, period.from, period.to,
                             std::to_string(pages.size), std::to_string(pages.offset()), std::to_string(pages.page)});
    return SqlValue::jsonb(list.value());
}

}  // namespace flowgres
