// Conversations of chat apps through the gateway (README "Gateway"): written by gateway_record
// as calls end (store_conversation_turns), read here by the workspace's members with
// logs_view, a page at a time.
#include "actor.hpp"
#include "boundary.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"
#include "flowgres/permissions.hpp"
#include "functions.hpp"
#include "list_filters.hpp"
#include "permission.hpp"
#include "spi.hpp"

namespace flowgres {
namespace {

constexpr long long kDefaultPageSize = 50;
constexpr long long kMaxPageSize = 200;

PageFilter page_of(CallArgs &args, int position) {
    Json filters = filters_argument(args, position);
    ValidationProblems problems;
    check_known_filters(problems, filters.get(), {"page", "page_size"});
    PageFilter page = pages_filter(problems, filters.get(), kDefaultPageSize, kMaxPageSize);
    problems.throw_if_any();
    return page;
}

}  // namespace

void store_conversation_turns(const std::string &calls_json) {
    query(R"sql(
        with turns as (
            select c.workspace_id, c.conversation_id, c.api_key_id, c.trace_id, c.model, c.messages
            from jsonb_to_recordset($1::jsonb)
                 as c(workspace_id uuid, conversation_id uuid, api_key_id uuid, trace_id text, model text, messages jsonb)
            where c.conversation_id is not null),
        touched as (  -- runs whether or not read, as every data-modifying part of a statement does
            insert into flowgres.conversations (workspace_id, id, api_key_id)
            select distinct on (workspace_id, conversation_id) workspace_id, conversation_id, api_key_id from turns
            order by workspace_id, conversation_id
            on conflict (workspace_id, id) do update set updated_at = now()
            returning 1)
        insert into flowgres.messages (workspace_id, conversation_id, role, content, trace_id, model)
        select t.workspace_id, t.conversation_id, m.item ->> 'role', m.item ->> 'content', t.trace_id, t.model
        from turns t cross join lateral jsonb_array_elements(t.messages) with ordinality as m(item, n)
        order by t.trace_id, m.n)sql",
          {calls_json});
}

SqlValue conversation_list(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    PageFilter page = page_of(args, 1);
    require_workspace_permission(require_actor(), workspace_id, permission::logs_view, WorkspaceUse::read);
    return SqlValue::jsonb(query_value(R"sql(
        select jsonb_build_object(
            'items', (select coalesce(jsonb_agg(jsonb_build_object(
                          'id', c.id, 'api_key_id', c.api_key_id, 'created_at', c.created_at, 'updated_at', c.updated_at,
                          'messages', (select count(*) from flowgres.messages m
                                       where m.workspace_id = c.workspace_id and m.conversation_id = c.id))
                          order by c.updated_at desc, c.id), '[]')
                      from (select * from flowgres.conversations where workspace_id = $1::uuid
                            order by updated_at desc, id limit $2::bigint offset $3::bigint) c),
            'meta', jsonb_build_object('page', $4::bigint, 'page_size', $2::bigint,
                                       'total', (select count(*) from flowgres.conversations where workspace_id = $1::uuid))))sql",
                                       {workspace_id, std::to_string(page.size), std::to_string(page.offset()),
                                        std::to_string(page.page)})
                               .value());
}

SqlValue conversation_messages(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string conversation_id = args.required_uuid(1, "conversation_id");
    PageFilter page = page_of(args, 2);
    require_workspace_permission(require_actor(), workspace_id, permission::logs_view, WorkspaceUse::read);
    if (!query_value("select 1 from flowgres.conversations where workspace_id = $1::uuid and id = $2::uuid",
                     {workspace_id, conversation_id}))
        throw Error(ErrorCode::CONVERSATION_NOT_FOUND, "conversation " + conversation_id + " not found");
    return SqlValue::jsonb(query_value(R"sql(
        select jsonb_build_object(
            'items', (select coalesce(jsonb_agg(jsonb_build_object(
                          'id', m.id, 'role', m.role, 'content', m.content, 'trace_id', m.trace_id, 'model', m.model,
                          'created_at', m.created_at) order by m.id), '[]')
                      from (select * from flowgres.messages where workspace_id = $1::uuid and conversation_id = $2::uuid
                            order by id limit $3::bigint offset $4::bigint) m),
            'meta', jsonb_build_object('page', $5::bigint, 'page_size', $3::bigint,
                                       'total', (select count(*) from flowgres.messages
                                                 where workspace_id = $1::uuid and conversation_id = $2::uuid))))sql",
                                       {workspace_id, conversation_id, std::to_string(page.size),
                                        std::to_string(page.offset()), std::to_string(page.page)})
                               .value());
}

}  // namespace flowgres
