// The one route table of the management API and the public runtime, and matching a request
// against it. Each route is
// one call into the extension function of the same meaning (PostgREST's thin mapping): the
// table says where each SQL argument comes from (path, body field, the whole body, query
// parameters) and its type, which is also what validates the request and what /openapi.json
// describes. Not for: running the call (management_api.cpp) or HTTP parsing (http/).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flowgres::daemon {

// integer is SQL integer; bigint (money in micro-units) is SQL bigint: both are JSON integers.
enum class FieldType { uuid, text, boolean, integer, bigint, timestamp, json_object, json_array, json_any };

enum class Source {
    path,           // a {name} segment of the pattern
    body_field,     // one member of the JSON body object
    body_document,  // the whole JSON body object (an update's "changes")
    query_field,    // one query parameter
    query_option,   // a query parameter for the daemon itself (?async=true), not passed to SQL
    query_filters,  // every query parameter, as a JSON object of typed filters
    fixed,          // a value the route itself supplies, held in `description` ("branding"; "" is NULL)
    secret_value,   // a body string the daemon seals before the call (README "Secrets"): SQL gets
                    // {"sealed", "preview"} as jsonb, bound to `seal_context` + the route's
                    // workspace_id (when it has one) + its name
};

struct Argument {
    Source source;
    const char *name;
    FieldType type;
    bool required = false;
    const char *description = "";
    const char *seal_context = "";  // secret_value: "workspace_secret:", "platform_llm_provider:"
};

// A query parameter a query_filters argument accepts.
struct Filter {
    const char *name;
    FieldType type;  // text, integer, boolean, uuid or timestamp
    const char *description;
};

struct Route {
    const char *method;
    const char *pattern;    // "/api/v1/workspaces/{workspace_id}"
    const char *operation;  // OpenAPI operationId
    const char *tag;
    const char *summary;
    const char *function;             // flowgres.<function>
    std::vector<Argument> arguments;  // in the SQL function's argument order
    std::vector<Filter> filters;
    int success_status = 200;
    std::vector<const char *> errors;  // error codes beyond the common ones, for the docs
    size_t max_body_bytes = 0;         // 0: the configured max_body_bytes
    // How the daemon serves the route: one SQL call (nearly all); a trial run, which creates
    // the execution with `function` and then runs it here (runs.cpp); or an event stream,
    // text/event-stream read through `function` (event_streams.cpp); or work on a workspace's
    // database by the provisioner, which calls `function` itself (databases.cpp).
    // Or an app generated from a prompt: model calls and checks, then `function`'s neighbours
    // (app_generation.cpp).
    // Or the public runtime (runtime.cpp): a visitor's request, admitted by `function`
    // (runtime_admit) as a whole; its arguments are what the daemon builds that request from.
    // Or a custom domain's DNS check (domain_checks.cpp): `function` claims it, the daemon looks
    // the records up, app_domain_verify_finish records what it found. Or a certificate order
    // (certificates.cpp): `function` claims it, the daemon orders it from the ACME CA.
    enum class Handler { sql_call, trial_run, event_stream, database_operation, generation, runtime, domain_check, certificate } handler =
        Handler::sql_call;
};

// Whether the argument is a parameter of the SQL call (query options are not).
inline bool passed_to_sql(const Argument &argument) { return argument.source != Source::query_option; }

const std::vector<Route> &routes();

// `select flowgres.<function>($1::uuid, …)::text`: the statement a route runs.
const std::string &route_sql(const Route &route);

// "read" for GET, "write" for the rest: the API key scope a route needs.
const char *required_scope(const Route &route);

struct RouteMatch {
    const Route *route = nullptr;
    std::vector<std::pair<std::string, std::string>> path_parameters;
    std::vector<std::string> allowed_methods;  // when the path matched but the method did not
};

// Exact segment matching; {name} matches one non-empty segment (already percent-decoded).
RouteMatch match_route(std::string_view method, std::string_view path);

const char *field_type_name(FieldType type);

}  // namespace flowgres::daemon
