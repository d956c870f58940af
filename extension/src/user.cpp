// Users: created by the platform operator, each with a default workspace (seed §6.1), and
// optionally mapped to a PostgreSQL role so a DBA-managed login acts as that user.
#include "actor.hpp"
#include "audit.hpp"
#include "boundary.hpp"
#include "documents.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "functions.hpp"
#include "permission.hpp"
#include "spi.hpp"
#include "workspace.hpp"

namespace flowgres {

SqlValue user_create(CallArgs &args) {
    std::string email = args.required_text(0, "email");
    std::string display_name = args.required_text(1, "display_name");
    std::optional<std::string> pg_role = args.text(2);
    check_email("email", email);
    check_display_text("display_name", display_name, kNameMaxLength);
    Actor actor = require_system_actor();

    if (query_value("select 1 from flowgres.users where lower(email) = lower($1)", {email}))
        throw Error(ErrorCode::USER_EMAIL_TAKEN, "a user with email " + email + " exists", "{\"field\":\"email\"}");
    if (pg_role) {
        auto role = query_value("select rolsuper::text from pg_catalog.pg_roles where rolname = $1", {*pg_role});
        if (!role) throw field_error("pg_role", "is not an existing database role");
        if (*role == "true") throw field_error("pg_role", "must not be a superuser role");
        if (query_value("select 1 from flowgres.users where pg_role = $1", {*pg_role}))
            throw Error(ErrorCode::USER_ROLE_TAKEN, "role " + *pg_role + " is mapped to another user", "{\"field\":\"pg_role\"}");
    }

    std::string user_id = query_value(
        "insert into flowgres.users (email, display_name, pg_role) values ($1, $2, $3) returning id",
        {email, display_name, pg_role}).value();
    if (pg_role) {
        // The mapped role reads its rows through RLS as a member of flowgres_user.
        run_statement(query_value("select format('grant flowgres_user to %I', $1::text)", {*pg_role}).value());
    }

    NewWorkspace workspace;
    workspace.owner_user_id = user_id;
    std::string base_name = display_name;
    if (utf8_length(base_name) > 80) base_name = email.substr(0, email.find('@'));
    workspace.name = base_name.size() > 80 ? std::string("Personal workspace") : base_name + "'s workspace";
    workspace.slug_source = email.substr(0, email.find('@'));
    workspace.is_default = true;
    std::string workspace_id = create_workspace(actor, workspace);
    write_audit(actor, workspace_id, "user.create", "user", user_id,
                "{\"pg_role\":" + (pg_role ? json_quote(*pg_role) : std::string("null")) + "}");

    auto user = query_value("select to_jsonb(u) from flowgres.users u where id = $1::uuid", {user_id}).value();
    return SqlValue::jsonb("{\"user\":" + user + ",\"workspace\":" + workspace_document(workspace_id, "owner") + "}");
}

SqlValue user_get(CallArgs &args) {
    std::string user_id = args.required_uuid(0, "user_id");
    Actor actor = require_actor();
    // Visible: oneself, anyone sharing an active workspace, everyone for the operator.
    auto user = query_value(R"sql(
        select to_jsonb(u) from flowgres.users u
        where u.id = $1::uuid
          and ($2::uuid is null or u.id = $2::uuid or exists (
                select 1 from flowgres.workspace_members mine
                join flowgres.workspace_members theirs on theirs.workspace_id = mine.workspace_id
                where mine.user_id = $2::uuid and mine.status = 'active' and theirs.user_id = u.id)))sql",
                            {user_id, actor.user_param()});
    if (!user) throw Error(ErrorCode::USER_NOT_FOUND, "user " + user_id + " not found");
    return SqlValue::jsonb(*user);
}

SqlValue current_actor_id(CallArgs &) {
    auto actor = find_actor();
    if (!actor || actor->is_system()) return SqlValue::null();
    return SqlValue::uuid(actor->user_id);
}

SqlValue error_codes(CallArgs &) {
    std::string out = "[";
    for (const ErrorInfo *row = error_table_begin(); row != error_table_end(); row++) {
        if (out.size() > 1) out += ",";
        out += "{\"error_code\":" + json_quote(row->name) + ",\"sqlstate\":" + json_quote(row->sqlstate) +
               ",\"http_status\":" + std::to_string(row->http_status) + ",\"summary\":" + json_quote(row->summary) + "}";
    }
    return SqlValue::jsonb(out + "]");
}

}  // namespace flowgres
