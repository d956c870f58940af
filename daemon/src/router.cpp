// The route table. Order does not matter: patterns never overlap except on literal segments,
// which win over parameters.
#include "router.hpp"

#include <memory>

#include "http/request.hpp"

namespace flowgres::daemon {

namespace {
using S = Source;
using T = FieldType;

const std::vector<Filter> kPageFilters = {
    {"page", T::integer, "page number, from 1"},
    {"page_size", T::integer, "rows per page"},
};

// A platform provider: the same fields as a workspace's, but its key is its own (sealed).
const std::vector<Argument> kPlatformProviderFields = {
    {S::body_field, "name", T::text, true, "lowercase letters, digits, - and _ (at most 63)"},
    {S::body_field, "base_url", T::text, true, "the API root, e.g. https://api.openai.com/v1"},
    {S::body_field, "protocol", T::text, false, "openai (the default)"},
    {S::secret_value, "api_key", T::json_object, false, "the provider's key; sealed at once, never shown again",
     "platform_llm_provider:"},
    {S::fixed, "api_key_secret", T::text, false, ""},
    {S::body_field, "timeout_ms", T::integer, false, "1000 to 600000 (default 60000)"},
    {S::body_field, "enabled", T::boolean, false, "default true"},
    {S::body_field, "models", T::json_array, false,
     "[{model, input_micros_per_1m, output_micros_per_1m, context_tokens, quality, enabled}]"},
};

std::vector<Filter> with_pages(std::vector<Filter> filters) {
    filters.insert(filters.end(), kPageFilters.begin(), kPageFilters.end());
    return filters;
}
// The public runtime's arguments and refusals, shared by its routes. Not SQL arguments: the
// daemon builds one runtime_admit request from them (runtime.cpp).
const Argument kWorkspaceSlug{S::path, "workspace", T::text, true, "the workspace's slug"};
const Argument kAppSlug{S::path, "app", T::text, true, "the app's slug"};
const Argument kRunId{S::path, "execution_id", T::uuid, true};
const Argument kInputs{S::body_field, "inputs", T::json_object, false, "the start node's inputs, checked by the UI schema"};
const Argument kCaptchaToken{S::body_field, "captcha_token", T::text, false,
                             "a CAPTCHA token when the app asks for one (or the X-App-Captcha-Token header)"};
const Argument kAsync{S::query_option, "async", T::boolean, false, "answer 202 at once; poll the run"};
const Argument kAfter{S::query_option, "after", T::integer, false, "resume after this event id (or Last-Event-ID)"};
const Argument kCache{S::query_option, "cache", T::integer, false,
                      "1: the answer shared by every visitor of a public_anonymous app, with an ETag"};
const std::vector<Argument> kRuntimeWorkspace = {kWorkspaceSlug};
const std::vector<Argument> kRuntimeApp = {kWorkspaceSlug, kAppSlug};
const std::vector<Argument> kRuntimeSchemaDefault = {kWorkspaceSlug, kCache};
const std::vector<Argument> kRuntimeSchema = {kWorkspaceSlug, kAppSlug, kCache};
const std::vector<Argument> kRuntimeExecuteDefault = {kWorkspaceSlug, kInputs, kCaptchaToken, kAsync};
const std::vector<Argument> kRuntimeExecute = {kWorkspaceSlug, kAppSlug, kInputs, kCaptchaToken, kAsync};
const std::vector<Argument> kRuntimeRun = {kWorkspaceSlug, kRunId};
const std::vector<Argument> kRuntimeRunEvents = {kWorkspaceSlug, kRunId, kAfter};
const std::vector<Argument> kRuntimeAppRun = {kWorkspaceSlug, kAppSlug, kRunId};
const std::vector<Argument> kRuntimeAppRunEvents = {kWorkspaceSlug, kAppSlug, kRunId, kAfter};
const std::vector<const char *> kRuntimeErrors = {
    "RUNTIME_APP_NOT_FOUND", "APP_DEPRECATED", "APP_ARCHIVED", "WORKSPACE_SUSPENDED", "ACCESS_DENIED", "AUTH_REQUIRED",
    "ORIGIN_NOT_ALLOWED", "SESSION_BLOCKED", "SESSION_INVALID", "RATE_LIMITED", "METHOD_NOT_ALLOWED"};
const std::vector<const char *> kRuntimeExecuteErrors = {
    "RUNTIME_APP_NOT_FOUND", "APP_DEPRECATED", "APP_ARCHIVED", "WORKSPACE_SUSPENDED", "ACCESS_DENIED", "AUTH_REQUIRED",
    "ORIGIN_NOT_ALLOWED", "SESSION_BLOCKED", "SESSION_INVALID", "RATE_LIMITED", "CAPTCHA_REQUIRED", "CAPTCHA_INVALID",
    "QUOTA_EXCEEDED", "OVERLOADED", "CLIENT_GONE", "METHOD_NOT_ALLOWED"};
const std::vector<const char *> kRuntimeRunErrors = {"RUNTIME_APP_NOT_FOUND", "EXECUTION_NOT_FOUND", "ACCESS_DENIED",
                                                     "AUTH_REQUIRED", "SESSION_INVALID", "RATE_LIMITED"};


// Custom domains: each action on a domain at /api/v1/domains/{domain_id}/… and, as the seed
// names them, at /api/v1/apps/{app_id}/domains/{domain_id}/… (where the domain must be that
// app's). The SQL functions take the app as their last argument, null for the short form.
struct DomainAction {
    const char *method;
    const char *suffix;  // after …/{domain_id}
    const char *operation;
    const char *summary;
    const char *function;
    std::vector<Argument> arguments;  // after domain_id, before app_id
    std::vector<const char *> errors;
    Route::Handler handler = Route::Handler::sql_call;
};

void add_domain_routes(std::vector<Route> &table) {
    const Argument domain_id{S::path, "domain_id", T::uuid, true};
    const Argument reason{S::body_field, "reason", T::text, true, "1 to 500 characters"};
    const Argument verify_async{S::query_option, "async", T::boolean, false,
                                "answer 202 once the check (or order) is claimed; read the domain for its outcome"};
    const std::vector<const char *> found = {"DOMAIN_NOT_FOUND"};
    const std::vector<const char *> changed = {"DOMAIN_NOT_FOUND", "STATE_CONFLICT"};
    const std::vector<const char *> certificate_errors = {"DOMAIN_NOT_FOUND", "STATE_CONFLICT", "ACME_NOT_CONFIGURED"};
    const std::vector<DomainAction> actions = {
        {"GET", "", "getDomain", "A custom domain with its DNS instructions (members)", "app_domain_get", {}, found},
        {"DELETE", "", "deleteDomain",
         "Unbind a custom domain (app_publish); a blocked one only by the operator", "app_domain_delete", {}, changed},
        {"POST", "/verify", "verifyDomain",
         "Check the domain's DNS now (app_publish): the TXT record _flowgres.<domain> holding the token, or a CNAME to "
         "the platform host; verified, or failed with the next automatic check backed off",
         "app_domain_verify_begin", {verify_async}, changed, Route::Handler::domain_check},
        {"POST", "/cert/issue", "issueDomainCertificate",
         "Order the domain's certificate from the ACME CA now (app_publish): HTTP-01 answered by any daemon, the chain "
         "and its sealed key kept; failures backed off", "app_domain_cert_begin", {verify_async}, certificate_errors,
         Route::Handler::certificate},
        {"POST", "/cert/renew", "renewDomainCertificate",
         "Order the domain's certificate again before it expires (app_publish); the one it has is served until then",
         "app_domain_cert_begin", {verify_async}, certificate_errors, Route::Handler::certificate},
        {"POST", "/activate", "activateDomain",
         "Make a verified domain the app's active one (app_publish); the one active before goes back to verified",
         "app_domain_activate", {}, changed},
        {"POST", "/rollback", "rollbackDomain",
         "Take the active domain back to verified and make the one it replaced active again (app_publish)",
         "app_domain_rollback", {}, changed},
        {"POST", "/block", "blockDomain", "Block a domain with a reason (operator only): refused by routing and TLS",
         "app_domain_block", {reason}, changed},
        {"POST", "/unblock", "unblockDomain", "Lift a domain's block with a reason (operator only)", "app_domain_unblock",
         {reason}, changed},
    };
    // Patterns and operation ids live as long as the table: kept in static storage.
    static std::vector<std::unique_ptr<std::string>> texts;
    auto keep = [](std::string text) { return texts.emplace_back(std::make_unique<std::string>(std::move(text)))->c_str(); };
    for (bool nested : {false, true}) {
        for (const DomainAction &action : actions) {
            std::vector<Argument> arguments = {domain_id};
            if (action.handler != Route::Handler::sql_call) arguments.push_back({S::fixed, "claimant", T::text, true, ""});
            if (action.handler == Route::Handler::certificate)
                arguments.push_back({S::fixed, "renew", T::boolean, true,
                                     std::string_view(action.suffix) == "/cert/renew" ? "true" : "false"});
            for (const Argument &argument : action.arguments) arguments.push_back(argument);
            if (nested) arguments.push_back({S::path, "app_id", T::uuid, true});
            std::string pattern = std::string(nested ? "/api/v1/apps/{app_id}/domains/{domain_id}" : "/api/v1/domains/{domain_id}") +
                                  action.suffix;
            std::string operation = std::string(action.operation) + (nested ? "OfApp" : "");
            table.push_back(Route{action.method, keep(pattern), keep(operation), "domains", action.summary, action.function,
                                  std::move(arguments), {}, 200, action.errors, 0, action.handler});
        }
    }
}
}  // namespace

// One route per paragraph reads better than one field per line: the table is kept as written.
// clang-format off
const std::vector<Route> &routes() {
    static const std::vector<Route> table = [] {
    std::vector<Route> table = {
        // users (the operator creates them: bootstrap admin key)
        {"POST", "/api/v1/users", "createUser", "users", "Create a user and their personal workspace (operator only)",
         "user_create",
         {{S::body_field, "email", T::text, true, "unique email"},
          {S::body_field, "display_name", T::text, true, "1 to 100 characters"},
          {S::body_field, "pg_role", T::text, false, "existing database role to map to the user"}},
         {}, 201, {"USER_EMAIL_TAKEN", "USER_ROLE_TAKEN"}},
        {"GET", "/api/v1/users/{user_id}", "getUser", "users", "Get a user (oneself, a fellow member, or any for the operator)",
         "user_get", {{S::path, "user_id", T::uuid, true}}, {}, 200, {"USER_NOT_FOUND"}},

        // API keys
        {"POST", "/api/v1/api-keys", "createApiKey", "api-keys", "Create an API key for the caller; the key is shown once",
         "api_key_create",
         {{S::body_field, "name", T::text, true, "1 to 100 characters"},
          {S::body_field, "scopes", T::json_array, false,
           "of read, write (default: both; write includes read) and llm:execute (the gateway, /v1)"},
          {S::body_field, "expires_at", T::timestamp, false, "ISO 8601; none means no expiry"},
          {S::fixed, "user_id", T::uuid, false, ""},
          {S::body_field, "workspace_id", T::uuid, false,
           "with llm:execute: the workspace that pays for the key's model calls (app_publish there)"}},
         {}, 201, {"WORKSPACE_NOT_FOUND", "WORKSPACE_INACTIVE"}},
        {"GET", "/api/v1/api-keys", "listApiKeys", "api-keys", "The caller's API keys (previews only)", "api_key_list", {}, {}, 200, {}},
        {"POST", "/api/v1/users/{user_id}/api-keys", "createUserApiKey", "api-keys",
         "Create an API key for a user (operator only); the key is shown once", "api_key_create",
         {{S::body_field, "name", T::text, true, "1 to 100 characters"},
          {S::body_field, "scopes", T::json_array, false, "of read, write (default: both) and llm:execute"},
          {S::body_field, "expires_at", T::timestamp, false, "ISO 8601"},
          {S::path, "user_id", T::uuid, true},
          {S::body_field, "workspace_id", T::uuid, false, "with llm:execute: the workspace that pays"}},
         {}, 201, {"USER_NOT_FOUND", "WORKSPACE_NOT_FOUND", "WORKSPACE_INACTIVE"}},
        {"GET", "/api/v1/users/{user_id}/api-keys", "listUserApiKeys", "api-keys", "A user's API keys (operator, or the user)",
         "api_key_list", {{S::path, "user_id", T::uuid, true}}, {}, 200, {"USER_NOT_FOUND"}},
        {"POST", "/api/v1/api-keys/{key_id}/rotate", "rotateApiKey", "api-keys",
         "Replace a key's secret: the old key stops working now; the new one is shown once", "api_key_rotate",
         {{S::path, "key_id", T::uuid, true}}, {}, 200, {"API_KEY_NOT_FOUND", "STATE_CONFLICT"}},
        {"PUT", "/api/v1/api-keys/{key_id}/limits", "setApiKeyLimits", "api-keys",
         "A gateway key's limits, replaced whole (the key's owner or the operator): {models, requests_per_minute, "
         "tokens_per_minute, ip_allow}; a member left out or null is no limit", "api_key_set_limits",
         {{S::path, "key_id", T::uuid, true}, {S::body_document, "limits", T::json_object, true}}, {}, 200,
         {"API_KEY_NOT_FOUND"}},
        {"POST", "/api/v1/api-keys/{key_id}/revoke", "revokeApiKey", "api-keys", "Revoke a key with a reason", "api_key_revoke",
         {{S::path, "key_id", T::uuid, true}, {S::body_field, "reason", T::text, false, "up to 500 characters"}}, {}, 200,
         {"API_KEY_NOT_FOUND", "STATE_CONFLICT"}},

        // workspaces
        {"POST", "/api/v1/workspaces", "createWorkspace", "workspaces", "Create a workspace owned by the caller",
         "workspace_create",
         {{S::body_field, "name", T::text, true, "1 to 80 characters"},
          {S::body_field, "slug", T::text, false, "lowercase letters, digits and hyphens; derived from the name when absent"},
          {S::body_field, "icon", T::text, false, ""},
          {S::body_field, "region", T::text, false, ""}},
         {}, 201, {"WORKSPACE_SLUG_TAKEN"}},
        {"GET", "/api/v1/workspaces", "listWorkspaces", "workspaces", "The caller's workspaces", "workspace_list",
         {{S::query_field, "include_deleted", T::boolean, false, "also list deleted workspaces still restorable"}}, {}, 200, {}},
        {"GET", "/api/v1/workspaces/{workspace_id}", "getWorkspace", "workspaces", "Get a workspace", "workspace_get",
         {{S::path, "workspace_id", T::uuid, true}}, {}, 200, {"WORKSPACE_NOT_FOUND"}},
        {"PATCH", "/api/v1/workspaces/{workspace_id}", "updateWorkspace", "workspaces",
         "Change name, slug, icon, plan, settings or default_app_id", "workspace_update",
         {{S::path, "workspace_id", T::uuid, true}, {S::body_document, "changes", T::json_object, true, "the fields to change"}},
         {}, 200, {"WORKSPACE_NOT_FOUND", "WORKSPACE_SLUG_TAKEN", "WORKSPACE_INACTIVE"}},
        {"DELETE", "/api/v1/workspaces/{workspace_id}", "deleteWorkspace", "workspaces",
         "Delete a workspace (restorable for the configured window)", "workspace_delete",
         {{S::path, "workspace_id", T::uuid, true}}, {}, 200, {"WORKSPACE_NOT_FOUND", "STATE_CONFLICT"}},
        {"POST", "/api/v1/workspaces/{workspace_id}/restore", "restoreWorkspace", "workspaces", "Restore a deleted workspace",
         "workspace_restore", {{S::path, "workspace_id", T::uuid, true}}, {}, 200,
         {"WORKSPACE_NOT_FOUND", "WORKSPACE_RESTORE_EXPIRED", "STATE_CONFLICT"}},

        // members
        {"GET", "/api/v1/workspaces/{workspace_id}/members", "listMembers", "members", "A workspace's members", "member_list",
         {{S::path, "workspace_id", T::uuid, true}}, {}, 200, {"WORKSPACE_NOT_FOUND"}},
        {"POST", "/api/v1/workspaces/{workspace_id}/members", "inviteMember", "members", "Invite an existing user by email",
         "member_invite",
         {{S::path, "workspace_id", T::uuid, true},
          {S::body_field, "email", T::text, true, "the user's email"},
          {S::body_field, "role", T::text, false, "owner, admin or member (default)"}},
         {}, 201, {"WORKSPACE_NOT_FOUND", "USER_NOT_FOUND", "MEMBER_EXISTS", "MEMBER_QUOTA_EXCEEDED"}},
        {"POST", "/api/v1/workspaces/{workspace_id}/members/accept", "acceptInvitation", "members",
         "Accept the caller's invitation to a workspace", "member_accept", {{S::path, "workspace_id", T::uuid, true}}, {}, 200,
         {"WORKSPACE_NOT_FOUND", "MEMBER_NOT_FOUND", "STATE_CONFLICT"}},
        {"PATCH", "/api/v1/workspaces/{workspace_id}/members/{user_id}", "changeMemberRole", "members", "Change a member's role",
         "member_update_role",
         {{S::path, "workspace_id", T::uuid, true}, {S::path, "user_id", T::uuid, true},
          {S::body_field, "role", T::text, true, "owner, admin or member"}},
         {}, 200, {"WORKSPACE_NOT_FOUND", "MEMBER_NOT_FOUND", "LAST_OWNER"}},
        {"DELETE", "/api/v1/workspaces/{workspace_id}/members/{user_id}", "removeMember", "members", "Remove a member",
         "member_remove", {{S::path, "workspace_id", T::uuid, true}, {S::path, "user_id", T::uuid, true}}, {}, 200,
         {"WORKSPACE_NOT_FOUND", "MEMBER_NOT_FOUND", "LAST_OWNER"}},

        // secrets: sealed by the daemon before the call; never answered, logged or audited
        {"GET", "/api/v1/workspaces/{workspace_id}/secrets", "listSecrets", "secrets",
         "The workspace's secrets (app_edit): name, preview, version, status, expiry, who changed each last; never a value",
         "secret_list", {{S::path, "workspace_id", T::uuid, true}}, {}, 200, {"WORKSPACE_NOT_FOUND"}},
        {"POST", "/api/v1/workspaces/{workspace_id}/secrets", "createSecret", "secrets",
         "Create a secret (secrets_manage: owners and admins), referenced in credential fields as {{secrets.NAME}}",
         "secret_create",
         {{S::path, "workspace_id", T::uuid, true},
          {S::body_field, "name", T::text, true, "a letter or _, then letters, digits and _ (at most 64)"},
          {S::secret_value, "value", T::json_object, true, "the secret itself; sealed at once, never shown again",
           "workspace_secret:"},
          {S::body_field, "description", T::text, false, "up to 500 characters"},
          {S::body_field, "expires_at", T::timestamp, false, "when steps stop using it (ISO 8601)"}},
         {}, 201, {"WORKSPACE_NOT_FOUND", "WORKSPACE_INACTIVE", "SECRET_EXISTS", "SECRETS_NOT_CONFIGURED"}},
        {"GET", "/api/v1/workspaces/{workspace_id}/secrets/{name}", "getSecret", "secrets",
         "One secret (app_edit), without its value", "secret_get",
         {{S::path, "workspace_id", T::uuid, true}, {S::path, "name", T::text, true, "the secret's name"}}, {}, 200,
         {"WORKSPACE_NOT_FOUND", "SECRET_NOT_FOUND"}},
        {"POST", "/api/v1/workspaces/{workspace_id}/secrets/{name}/rotate", "rotateSecret", "secrets",
         "Replace a secret's value (secrets_manage): the version grows and the next run uses the new value; "
         "without expires_at the new value has no expiry", "secret_rotate",
         {{S::path, "workspace_id", T::uuid, true}, {S::path, "name", T::text, true, "the secret's name"},
          {S::secret_value, "value", T::json_object, true, "the new value; sealed at once, never shown again",
           "workspace_secret:"},
          {S::body_field, "expires_at", T::timestamp, false, "when steps stop using it (ISO 8601)"}},
         {}, 200, {"WORKSPACE_NOT_FOUND", "WORKSPACE_INACTIVE", "SECRET_NOT_FOUND", "STATE_CONFLICT", "SECRETS_NOT_CONFIGURED"}},
        {"POST", "/api/v1/workspaces/{workspace_id}/secrets/{name}/revoke", "revokeSecret", "secrets",
         "Revoke a secret (secrets_manage): steps that use it fail with SECRET_REVOKED from the next run on", "secret_revoke",
         {{S::path, "workspace_id", T::uuid, true}, {S::path, "name", T::text, true, "the secret's name"},
          {S::body_field, "reason", T::text, false, "up to 500 characters"}},
         {}, 200, {"WORKSPACE_NOT_FOUND", "SECRET_NOT_FOUND", "STATE_CONFLICT"}},
        {"DELETE", "/api/v1/workspaces/{workspace_id}/secrets/{name}", "deleteSecret", "secrets",
         "Delete a secret (secrets_manage); steps that use it fail with SECRET_NOT_FOUND", "secret_delete",
         {{S::path, "workspace_id", T::uuid, true}, {S::path, "name", T::text, true, "the secret's name"}}, {}, 200,
         {"WORKSPACE_NOT_FOUND", "SECRET_NOT_FOUND"}},

        // model providers and the model catalogue
        {"GET", "/api/v1/llm-providers", "listPlatformLlmProviders", "models",
         "The platform's model providers with their models (operator only); never a key", "llm_provider_list", {}, {}, 200, {}},
        {"POST", "/api/v1/llm-providers", "createPlatformLlmProvider", "models",
         "Add a platform model provider (operator only); its api_key is sealed at once and never shown again",
         "llm_provider_create", kPlatformProviderFields, {}, 201, {"LLM_PROVIDER_EXISTS", "SECRETS_NOT_CONFIGURED"}},
        {"GET", "/api/v1/llm-providers/{name}", "getPlatformLlmProvider", "models", "A platform provider (operator only)",
         "llm_provider_get", {{S::path, "name", T::text, true, "the provider's name"}}, {}, 200, {"LLM_PROVIDER_NOT_FOUND"}},
        {"PATCH", "/api/v1/llm-providers/{name}", "updatePlatformLlmProvider", "models",
         "Change a platform provider's base_url, timeout_ms, enabled or its whole models list (operator only)",
         "llm_provider_update",
         {{S::path, "name", T::text, true, "the provider's name"}, {S::body_document, "changes", T::json_object, true}}, {},
         200, {"LLM_PROVIDER_NOT_FOUND"}},
        {"DELETE", "/api/v1/llm-providers/{name}", "deletePlatformLlmProvider", "models",
         "Remove a platform provider and its models (operator only)", "llm_provider_delete",
         {{S::path, "name", T::text, true, "the provider's name"}}, {}, 200, {"LLM_PROVIDER_NOT_FOUND"}},
        {"POST", "/api/v1/llm-providers/{name}/rotate-key", "rotatePlatformLlmProviderKey", "models",
         "Replace a platform provider's key (operator only): sealed at once, used from the next call",
         "llm_provider_rotate_key",
         {{S::path, "name", T::text, true, "the provider's name"},
          {S::secret_value, "api_key", T::json_object, true, "the new key", "platform_llm_provider:"}},
         {}, 200, {"LLM_PROVIDER_NOT_FOUND", "SECRETS_NOT_CONFIGURED"}},
        {"POST", "/api/v1/llm-models/{model}/disable", "disableLlmModel", "models",
         "Switch a model off platform-wide, whichever provider offers it (operator only)", "llm_model_set_enabled",
         {{S::path, "model", T::text, true, "the model's id"}, {S::fixed, "enabled", T::boolean, true, "false"},
          {S::body_field, "reason", T::text, false, "why, kept with the switch"}},
         {}, 200, {}},
        {"POST", "/api/v1/llm-models/{model}/enable", "enableLlmModel", "models",
         "Switch a model on again platform-wide (operator only)", "llm_model_set_enabled",
         {{S::path, "model", T::text, true, "the model's id"}, {S::fixed, "enabled", T::boolean, true, "true"}}, {}, 200, {}},
        {"GET", "/api/v1/workspaces/{workspace_id}/llm-providers", "listLlmProviders", "models",
         "The workspace's own model providers (app_edit); never a key", "llm_provider_list",
         {{S::path, "workspace_id", T::uuid, true}}, {}, 200, {"WORKSPACE_NOT_FOUND"}},
        {"POST", "/api/v1/workspaces/{workspace_id}/llm-providers", "createLlmProvider", "models",
         "Add a model provider of the workspace (secrets_manage); its key is one of the workspace's secrets",
         "llm_provider_create",
         {{S::body_field, "name", T::text, true, "lowercase letters, digits, - and _ (at most 63)"},
          {S::body_field, "base_url", T::text, true, "the API root, e.g. https://api.openai.com/v1"},
          {S::body_field, "protocol", T::text, false, "openai (the default)"},
          {S::fixed, "api_key", T::json_object, false, ""},
          {S::body_field, "api_key_secret", T::text, false, "the name of the workspace secret holding the key"},
          {S::body_field, "timeout_ms", T::integer, false, "1000 to 600000 (default 60000)"},
          {S::body_field, "enabled", T::boolean, false, "default true"},
          {S::body_field, "models", T::json_array, false, "[{model, input_micros_per_1m, output_micros_per_1m, context_tokens, quality, enabled}]"},
          {S::path, "workspace_id", T::uuid, true}},
         {}, 201, {"WORKSPACE_NOT_FOUND", "WORKSPACE_INACTIVE", "LLM_PROVIDER_EXISTS"}},
        {"GET", "/api/v1/workspaces/{workspace_id}/llm-providers/{name}", "getLlmProvider", "models",
         "One provider of the workspace (app_edit)", "llm_provider_get",
         {{S::path, "name", T::text, true, "the provider's name"}, {S::path, "workspace_id", T::uuid, true}}, {}, 200,
         {"WORKSPACE_NOT_FOUND", "LLM_PROVIDER_NOT_FOUND"}},
        {"PATCH", "/api/v1/workspaces/{workspace_id}/llm-providers/{name}", "updateLlmProvider", "models",
         "Change base_url, timeout_ms, enabled, api_key_secret or the whole models list (secrets_manage)",
         "llm_provider_update",
         {{S::path, "name", T::text, true, "the provider's name"}, {S::body_document, "changes", T::json_object, true},
          {S::path, "workspace_id", T::uuid, true}},
         {}, 200, {"WORKSPACE_NOT_FOUND", "WORKSPACE_INACTIVE", "LLM_PROVIDER_NOT_FOUND"}},
        {"DELETE", "/api/v1/workspaces/{workspace_id}/llm-providers/{name}", "deleteLlmProvider", "models",
         "Remove a provider of the workspace and its models (secrets_manage)", "llm_provider_delete",
         {{S::path, "name", T::text, true, "the provider's name"}, {S::path, "workspace_id", T::uuid, true}}, {}, 200,
         {"WORKSPACE_NOT_FOUND", "LLM_PROVIDER_NOT_FOUND"}},
        {"GET", "/api/v1/workspaces/{workspace_id}/model-usage", "getModelUsage", "models",
         "The workspace's model calls in a period (default: the last 30 days) grouped by provider and model: calls, "
         "failures, tokens, cost, p50 and p99 latency (app_view_metrics)", "model_usage",
         {{S::path, "workspace_id", T::uuid, true},
          {S::query_field, "from", T::timestamp, false, "from this time (ISO 8601; default: 30 days before to)"},
          {S::query_field, "to", T::timestamp, false, "until this time (ISO 8601; default: now)"}},
         {}, 200, {"WORKSPACE_NOT_FOUND"}},
        {"GET", "/api/v1/workspaces/{workspace_id}/model-usage/records", "listModelUsage", "models",
         "The workspace's model calls one by one, newest first (app_view_metrics): runs' and the gateway's",
         "model_usage_list",
         {{S::path, "workspace_id", T::uuid, true}, {S::query_filters, "filters", T::json_object, false}},
         with_pages({{"api_key_id", T::uuid, "a gateway key's calls"},
                     {"model", T::text, "one model's calls"},
                     {"trace_id", T::text, "one call"},
                     {"from", T::timestamp, "created at or after (ISO 8601)"},
                     {"to", T::timestamp, "created before (ISO 8601)"}}),
         200, {"WORKSPACE_NOT_FOUND"}},
        {"GET", "/api/v1/workspaces/{workspace_id}/models", "listWorkspaceModels", "models",
         "The models the workspace may use (any member): its own providers' first, then the platform's; enabled and "
         "not switched off, with prices, context size and quality", "workspace_models",
         {{S::path, "workspace_id", T::uuid, true}}, {}, 200, {"WORKSPACE_NOT_FOUND"}},

        // output safety rules
        {"GET", "/api/v1/safety-rules", "listPlatformSafetyRules", "safety",
         "The platform's output safety rules (operator only)", "safety_rule_list", {}, {}, 200, {}},
        {"POST", "/api/v1/safety-rules", "addPlatformSafetyRule", "safety",
         "Add a platform-wide output safety rule (operator only); adding one that exists changes nothing",
         "safety_rule_add",
         {{S::body_field, "category", T::text, true, "self_harm, violence, illegal, hate or minors"},
          {S::body_field, "text", T::text, true, "the phrase (matched ignoring ASCII case) or RE2 pattern, 1 to 200 bytes"},
          {S::body_field, "kind", T::text, false, "phrase (the default) or pattern"}},
         {}, 201, {}},
        {"DELETE", "/api/v1/safety-rules/{rule_id}", "deleteSafetyRule", "safety",
         "Remove a rule: the platform's (operator) or a workspace's (app_publish)", "safety_rule_delete",
         {{S::path, "rule_id", T::uuid, true}}, {}, 200, {"SAFETY_RULE_NOT_FOUND"}},
        {"GET", "/api/v1/workspaces/{workspace_id}/safety-rules", "listSafetyRules", "safety",
         "The output safety rules that apply to the workspace (app_edit): its own and the platform's",
         "safety_rule_list", {{S::path, "workspace_id", T::uuid, true}}, {}, 200, {"WORKSPACE_NOT_FOUND"}},
        {"POST", "/api/v1/workspaces/{workspace_id}/safety-rules", "addSafetyRule", "safety",
         "Add an output safety rule of the workspace (app_publish: owners and admins)", "safety_rule_add",
         {{S::body_field, "category", T::text, true, "self_harm, violence, illegal, hate or minors"},
          {S::body_field, "text", T::text, true, "the phrase (matched ignoring ASCII case) or RE2 pattern, 1 to 200 bytes"},
          {S::body_field, "kind", T::text, false, "phrase (the default) or pattern"},
          {S::path, "workspace_id", T::uuid, true}},
         {}, 201, {"WORKSPACE_NOT_FOUND", "WORKSPACE_INACTIVE"}},

        // audit logs
        {"GET", "/api/v1/workspaces/{workspace_id}/audit-logs", "listAuditLogs", "audit", "A workspace's audit rows, newest first",
         "audit_log_list",
         {{S::path, "workspace_id", T::uuid, true}, {S::query_filters, "filters", T::json_object, false}},
         with_pages({{"action", T::text, "e.g. app.publish"},
                     {"actor_user_id", T::uuid, "who acted"},
                     {"target_type", T::text, "e.g. app"},
                     {"target_id", T::text, "the target's id"},
                     {"from", T::timestamp, "created at or after (ISO 8601)"},
                     {"to", T::timestamp, "created before (ISO 8601)"}}),
         200, {"WORKSPACE_NOT_FOUND"}},

        // wallets (README "Wallets"): money in integer micro-units of the platform's currency
        {"GET", "/api/v1/workspaces/{workspace_id}/wallet", "getWallet", "wallets",
         "The workspace's wallet (plan_view): balance, frozen by calls in flight, available", "wallet",
         {{S::path, "workspace_id", T::uuid, true}}, {}, 200, {"WORKSPACE_NOT_FOUND"}},
        {"GET", "/api/v1/workspaces/{workspace_id}/wallet/transactions", "listWalletTransactions", "wallets",
         "The wallet's movements, newest first (plan_view): grants, holds, captures, releases, refunds",
         "wallet_transaction_list",
         {{S::path, "workspace_id", T::uuid, true}, {S::query_filters, "filters", T::json_object, false}},
         with_pages({{"kind", T::text, "grant, hold, capture, release or refund"},
                     {"billing_ref_id", T::text, "one movement's reference"},
                     {"from", T::timestamp, "created at or after (ISO 8601)"},
                     {"to", T::timestamp, "created before (ISO 8601)"}}),
         200, {"WORKSPACE_NOT_FOUND"}},
        {"GET", "/api/v1/workspaces/{workspace_id}/wallet/holds", "listWalletHolds", "wallets",
         "The holds of calls in flight (plan_view): hold_id, amount, when held, when they expire", "wallet_open_holds",
         {{S::path, "workspace_id", T::uuid, true}}, {}, 200, {"WORKSPACE_NOT_FOUND"}},
        {"POST", "/api/v1/workspaces/{workspace_id}/wallet/grants", "grantWallet", "wallets",
         "Add money to the wallet, a top-up or a grant (operator only); the same billing_ref_id again is a no-op",
         "wallet_grant",
         {{S::path, "workspace_id", T::uuid, true},
          {S::body_field, "amount", T::bigint, true, "micro-units, 1 to 10^15"},
          {S::body_field, "reason", T::text, true, "1 to 500 characters"},
          {S::body_field, "billing_ref_id", T::text, false,
           "makes a retry a no-op: 1 to 200 letters, digits, '-', '_', '.' and ':' (default: a new uuid)"}},
         {}, 201, {"WORKSPACE_NOT_FOUND", "WORKSPACE_INACTIVE", "BILLING_REF_CONFLICT"}},
        {"POST", "/api/v1/workspaces/{workspace_id}/wallet/refunds", "refundWallet", "wallets",
         "Give back (part of) what a capture took (operator only); the same billing_ref_id again is a no-op",
         "wallet_refund",
         {{S::path, "workspace_id", T::uuid, true},
          {S::body_field, "capture_ref_id", T::text, true, "the billing_ref_id of the capture"},
          {S::body_field, "amount", T::bigint, true, "micro-units; with earlier refunds at most what it took"},
          {S::body_field, "reason", T::text, true, "1 to 500 characters"},
          {S::body_field, "billing_ref_id", T::text, false, "this refund's reference (default: a new uuid)"}},
         {}, 201,
         {"WORKSPACE_NOT_FOUND", "WORKSPACE_INACTIVE", "CAPTURE_NOT_FOUND", "REFUND_EXCEEDS_CAPTURE",
          "BILLING_REF_CONFLICT"}},

        // the gateway's calls by trace id
        {"GET", "/api/v1/traces/{trace_id}", "getTrace", "gateway",
         "What the gateway call with this trace id did (logs_view in the workspace that paid): its model calls, "
         "wallet movements and audit row", "trace_get",
         {{S::path, "trace_id", T::text, true, "32 hex digits, as X-Trace-Id gave it"}}, {}, 200, {"TRACE_NOT_FOUND"}},

        {"GET", "/api/v1/workspaces/{workspace_id}/conversations", "listConversations", "gateway",
         "The conversations chat apps kept through the gateway (X-Conversation-Id), most recent first (logs_view)",
         "conversation_list",
         {{S::path, "workspace_id", T::uuid, true}, {S::query_filters, "filters", T::json_object, false}},
         with_pages({}), 200, {"WORKSPACE_NOT_FOUND"}},
        {"GET", "/api/v1/workspaces/{workspace_id}/conversations/{conversation_id}/messages", "listConversationMessages",
         "gateway", "A conversation's messages in order (logs_view)", "conversation_messages",
         {{S::path, "workspace_id", T::uuid, true}, {S::path, "conversation_id", T::uuid, true},
          {S::query_filters, "filters", T::json_object, false}},
         with_pages({}), 200, {"WORKSPACE_NOT_FOUND", "CONVERSATION_NOT_FOUND"}},

        // usage, quotas and budgets
        {"GET", "/api/v1/workspaces/{workspace_id}/usage", "getWorkspaceUsage", "usage",
         "This month's usage (requests, tokens, egress) against the quotas, the spend, the budget and the apps' shares",
         "workspace_usage", {{S::path, "workspace_id", T::uuid, true}}, {}, 200, {"WORKSPACE_NOT_FOUND"}},
        {"PUT", "/api/v1/workspaces/{workspace_id}/quotas/{dimension}", "setWorkspaceQuota", "usage",
         "Override one quota of the plan (operator only): {\"quota\": n}, or {\"quota\": null} for unlimited",
         "workspace_quota_set",
         {{S::path, "workspace_id", T::uuid, true}, {S::path, "dimension", T::text, true, "requests, tokens, egress or db_storage"},
          {S::body_document, "setting", T::json_object, true}},
         {}, 200, {"WORKSPACE_NOT_FOUND"}},
        {"DELETE", "/api/v1/workspaces/{workspace_id}/quotas/{dimension}", "clearWorkspaceQuota", "usage",
         "Go back to the plan's quota for one dimension (operator only)", "workspace_quota_clear",
         {{S::path, "workspace_id", T::uuid, true}, {S::path, "dimension", T::text, true, "requests, tokens, egress or db_storage"}},
         {}, 200, {"WORKSPACE_NOT_FOUND"}},
        {"GET", "/api/v1/workspaces/{workspace_id}/budget", "getBudget", "usage",
         "The monthly spend limit, alert thresholds, this month's spend and the alerts raised", "budget_get",
         {{S::path, "workspace_id", T::uuid, true}}, {}, 200, {"WORKSPACE_NOT_FOUND"}},
        {"PATCH", "/api/v1/workspaces/{workspace_id}/budget", "updateBudget", "usage",
         "Change spend_limit_cents, spend_limit_enabled (blocks runtime requests past the limit) or alert_thresholds",
         "budget_update",
         {{S::path, "workspace_id", T::uuid, true}, {S::body_document, "changes", T::json_object, true}},
         {}, 200, {"WORKSPACE_NOT_FOUND", "WORKSPACE_INACTIVE"}},
        {"GET", "/api/v1/apps/{app_id}/metrics", "getAppMetrics", "usage",
         "An app's requests, errors, error rate, p50/p95 duration and tokens over the last days, per day", "app_metrics",
         {{S::path, "app_id", T::uuid, true}, {S::query_field, "days", T::integer, false, "1 to 90 (default 7)"}},
         {}, 200, {"APP_NOT_FOUND"}},
        {"GET", "/api/v1/apps/{app_id}/access-stats", "getAppAccessStats", "usage",
         "An app's runtime events over the last days: counts by type, visitors, sessions, refusals, per day",
         "app_access_stats",
         {{S::path, "app_id", T::uuid, true}, {S::query_field, "days", T::integer, false, "1 to 366 (default 30)"}},
         {}, 200, {"APP_NOT_FOUND"}},

        // apps
        {"POST", "/api/v1/workspaces/{workspace_id}/apps", "createApp", "apps", "Create a draft app", "app_create",
         {{S::path, "workspace_id", T::uuid, true},
          {S::body_field, "name", T::text, true, "1 to 80 characters"},
          {S::body_field, "slug", T::text, false, "derived from the name when absent"},
          {S::body_field, "description", T::text, false, ""},
          {S::body_field, "icon", T::text, false, ""}},
         {}, 201, {"WORKSPACE_NOT_FOUND", "APP_SLUG_TAKEN", "APP_QUOTA_EXCEEDED", "WORKSPACE_INACTIVE"}},
        {"POST", "/api/v1/workspaces/{workspace_id}/apps/from-ai", "createAppFromAi", "apps",
         "Create an app and its draft version from a prompt (apps_create): a model (the one named, else the first the "
         "workspace may use) proposes seed §59's protocol, the validators check it and the problems go back for repair up "
         "to generation_max_attempts answers; nothing is created unless it passes",
         "app_generation_begin",
         {{S::path, "workspace_id", T::uuid, true},
          {S::body_field, "prompt", T::text, true, "what the app should do, 1 to 20000 characters"},
          {S::body_field, "model", T::text, false, "the model to ask (default: the first the workspace may use)"}},
         {}, 201,
         {"WORKSPACE_NOT_FOUND", "WORKSPACE_INACTIVE", "APP_QUOTA_EXCEEDED", "QUOTA_EXCEEDED", "LLM_MODEL_UNAVAILABLE",
          "LLM_REQUEST_FAILED", "LLM_RATE_LIMITED", "LLM_TIMEOUT", "AI_OUTPUT_BLOCKED"},
         0, Route::Handler::generation},
        {"GET", "/api/v1/workspaces/{workspace_id}/apps", "listApps", "apps", "A workspace's apps, filtered, sorted and paged",
         "app_list", {{S::path, "workspace_id", T::uuid, true}, {S::query_filters, "filters", T::json_object, false}},
         with_pages({{"status", T::text, "draft, published, deprecated or archived"},
                     {"q", T::text, "search in name and slug"},
                     {"sort_by", T::text, "created_at, updated_at, name, slug or status"},
                     {"order", T::text, "asc or desc"}}),
         200, {"WORKSPACE_NOT_FOUND"}},
        {"GET", "/api/v1/apps/{app_id}", "getApp", "apps", "Get an app with its access policy", "app_get",
         {{S::path, "app_id", T::uuid, true}}, {}, 200, {"APP_NOT_FOUND"}},
        {"PATCH", "/api/v1/apps/{app_id}", "updateApp", "apps", "Change name, slug, description or icon", "app_update",
         {{S::path, "app_id", T::uuid, true}, {S::body_document, "changes", T::json_object, true, "the fields to change"}}, {},
         200, {"APP_NOT_FOUND", "APP_SLUG_TAKEN"}},
        {"PATCH", "/api/v1/apps/{app_id}/public-branding", "updatePublicBranding", "apps",
         "Change the public page's branding and notices (null removes a field)", "app_public_page_update",
         {{S::path, "app_id", T::uuid, true}, {S::fixed, "section", T::text, true, "branding"},
          {S::body_document, "changes", T::json_object, true, "title, tagline, logo_url, accent_color, background_color, "
           "theme, submit_label, anonymous_notice, terms, privacy, sign_in_url, hide_powered_by"}},
         {}, 200, {"APP_NOT_FOUND"}},
        {"PATCH", "/api/v1/apps/{app_id}/public-seo", "updatePublicSeo", "apps",
         "Change the public page's title, description, image, language and indexing", "app_public_page_update",
         {{S::path, "app_id", T::uuid, true}, {S::fixed, "section", T::text, true, "seo"},
          {S::body_document, "changes", T::json_object, true, "title, description, image_url, lang, noindex"}},
         {}, 200, {"APP_NOT_FOUND"}},
        {"PATCH", "/api/v1/apps/{app_id}/public-inputs", "updatePublicInputs", "apps",
         "Change the public form's input defaults and example fills", "app_public_page_update",
         {{S::path, "app_id", T::uuid, true}, {S::fixed, "section", T::text, true, "inputs"},
          {S::body_document, "changes", T::json_object, true, "defaults, examples"}},
         {}, 200, {"APP_NOT_FOUND"}},
        {"POST", "/api/v1/apps/{app_id}/duplicate", "duplicateApp", "apps", "Copy an app as a new draft", "app_duplicate",
         {{S::path, "app_id", T::uuid, true},
          {S::body_field, "name", T::text, false, ""},
          {S::body_field, "slug", T::text, false, ""}},
         {}, 201, {"APP_NOT_FOUND", "APP_SLUG_TAKEN", "APP_QUOTA_EXCEEDED"}},

        // versions
        {"POST", "/api/v1/apps/{app_id}/versions", "createVersion", "versions", "Add an immutable version", "version_create",
         {{S::path, "app_id", T::uuid, true},
          {S::body_field, "version", T::text, true, "semver, higher than every earlier version"},
          {S::body_field, "workflow", T::json_object, true, "the workflow graph (seed §52)"},
          {S::body_field, "ui_schema", T::json_object, false, ""},
          {S::body_field, "db_schema", T::json_object, false, ""},
          {S::body_field, "config", T::json_object, false, ""},
          {S::body_field, "changelog", T::text, false, ""}},
         // Four documents of up to 1 MiB each (the extension's cap per document).
         {}, 201, {"APP_NOT_FOUND", "VERSION_EXISTS"}, 4 * 1024 * 1024 + 4096},
        {"POST", "/api/v1/apps/{app_id}/versions/from-ai", "createVersionFromAi", "versions",
         "Add the next minor version from an instruction (app_edit): the current version goes to a model with the "
         "instruction, and its answer is checked and repaired like a generated app's; versions stay immutable",
         "version_generation_begin",
         {{S::path, "app_id", T::uuid, true},
          {S::body_field, "instruction", T::text, true, "what to change, 1 to 20000 characters"},
          {S::body_field, "model", T::text, false, "the model to ask (default: the first the workspace may use)"}},
         {}, 201,
         {"APP_NOT_FOUND", "VERSION_NOT_FOUND", "QUOTA_EXCEEDED", "LLM_MODEL_UNAVAILABLE", "LLM_REQUEST_FAILED",
          "LLM_RATE_LIMITED", "LLM_TIMEOUT", "AI_OUTPUT_BLOCKED"},
         0, Route::Handler::generation},
        {"GET", "/api/v1/apps/{app_id}/versions", "listVersions", "versions", "An app's versions, newest first", "version_list",
         {{S::path, "app_id", T::uuid, true}}, {}, 200, {"APP_NOT_FOUND"}},
        {"GET", "/api/v1/versions/{version_id}", "getVersion", "versions", "Get a version", "version_get",
         {{S::path, "version_id", T::uuid, true}}, {}, 200, {"VERSION_NOT_FOUND"}},
        {"GET", "/api/v1/versions/{version_id}/diff/{other_version_id}", "diffVersions", "versions",
         "What changed from one version to another of the same app", "version_diff",
         {{S::path, "version_id", T::uuid, true}, {S::path, "other_version_id", T::uuid, true}}, {}, 200, {"VERSION_NOT_FOUND"}},

        // lifecycle and access policy
        {"POST", "/api/v1/apps/{app_id}/publish", "publishApp", "lifecycle", "Publish a version (default: the newest)",
         "app_publish",
         {{S::path, "app_id", T::uuid, true},
          {S::body_field, "version_id", T::uuid, false, "the version to publish"},
          {S::body_field, "access_policy", T::json_object, false, "policy changes applied with the publish"}},
         {}, 200, {"APP_NOT_FOUND", "VERSION_NOT_FOUND", "STATE_CONFLICT"}},
        {"POST", "/api/v1/apps/{app_id}/rollback", "rollbackApp", "lifecycle", "Serve an earlier version", "app_rollback",
         {{S::path, "app_id", T::uuid, true}, {S::body_field, "version_id", T::uuid, true, "an earlier version"}}, {}, 200,
         {"APP_NOT_FOUND", "VERSION_NOT_FOUND", "STATE_CONFLICT"}},
        {"POST", "/api/v1/apps/{app_id}/deprecate", "deprecateApp", "lifecycle", "Deprecate a published app", "app_deprecate",
         {{S::path, "app_id", T::uuid, true}}, {}, 200, {"APP_NOT_FOUND", "STATE_CONFLICT"}},
        {"POST", "/api/v1/apps/{app_id}/archive", "archiveApp", "lifecycle", "Archive an app", "app_archive",
         {{S::path, "app_id", T::uuid, true}}, {}, 200, {"APP_NOT_FOUND", "STATE_CONFLICT"}},
        {"GET", "/api/v1/apps/{app_id}/access-policy", "getAccessPolicy", "access-policy", "An app's access policy",
         "access_policy_get", {{S::path, "app_id", T::uuid, true}}, {}, 200, {"APP_NOT_FOUND"}},
        {"PATCH", "/api/v1/apps/{app_id}/access-policy", "updateAccessPolicy", "access-policy", "Change an app's access policy",
         "access_policy_update",
         {{S::path, "app_id", T::uuid, true}, {S::body_document, "changes", T::json_object, true, "the fields to change"}}, {},
         200, {"APP_NOT_FOUND"}},

        // workspace databases
        {"POST", "/api/v1/workspaces/{workspace_id}/database", "provisionWorkspaceDatabase", "databases",
         "Create the workspace's own database (or finish or repair it: the call is idempotent) on the pool server "
         "with the fewest databases (workspace_admin; the operator may pin a server); answers when it is ready, or "
         "202 at once with ?async=true",
         "workspace_database_claim",
         {{S::path, "workspace_id", T::uuid, true},
          {S::fixed, "operation", T::text, true, "provision"},
          {S::body_field, "server", T::text, false, "the pool server to place it on (operator only)"},
          {S::query_option, "async", T::boolean, false, "answer 202 once the work is claimed"}},
         {}, 200,
         {"WORKSPACE_NOT_FOUND", "WORKSPACE_INACTIVE", "QUOTA_EXCEEDED", "NO_DATABASE_SERVER", "DATABASE_SERVER_NOT_FOUND",
          "PROVISION_IN_PROGRESS", "PROVISION_FAILED", "SECRETS_NOT_CONFIGURED", "SECRET_INVALID", "SECRET_KEY_UNKNOWN"},
         0, Route::Handler::database_operation},
        {"GET", "/api/v1/workspaces/{workspace_id}/database", "getWorkspaceDatabase", "databases",
         "Where the workspace's database is and its state: status, schema version, size, host (any member); never "
         "the password", "workspace_database_get", {{S::path, "workspace_id", T::uuid, true}}, {}, 200,
         {"WORKSPACE_NOT_FOUND", "WORKSPACE_DATABASE_NOT_FOUND"}},
        {"POST", "/api/v1/workspaces/{workspace_id}/database/rotate-secret", "rotateWorkspaceDatabaseSecret", "databases",
         "Give the database's role a new password (workspace_admin): the old one stops working at once and "
         "sessions opened with it end; ?async=true answers 202 once the work is claimed",
         "workspace_database_claim",
         {{S::path, "workspace_id", T::uuid, true},
          {S::fixed, "operation", T::text, true, "rotate_secret"},
          {S::query_option, "async", T::boolean, false, "answer 202 once the work is claimed"}},
         {}, 200,
         {"WORKSPACE_NOT_FOUND", "WORKSPACE_DATABASE_NOT_FOUND", "STATE_CONFLICT", "PROVISION_IN_PROGRESS",
          "PROVISION_FAILED", "SECRETS_NOT_CONFIGURED"},
         0, Route::Handler::database_operation},
        {"POST", "/api/v1/workspaces/{workspace_id}/database/migrate", "migrateWorkspaceDatabase", "databases",
         "Apply flowgres's tenant migrations up to the latest or target_version (workspace_admin), each in its own "
         "transaction; a failing one leaves the database at the version before it",
         "workspace_database_claim",
         {{S::path, "workspace_id", T::uuid, true},
          {S::fixed, "operation", T::text, true, "migrate"},
          {S::body_field, "target_version", T::integer, false, "the version to reach (default: the latest)"},
          {S::query_option, "async", T::boolean, false, "answer 202 once the work is claimed"}},
         {}, 200,
         {"WORKSPACE_NOT_FOUND", "WORKSPACE_DATABASE_NOT_FOUND", "STATE_CONFLICT", "PROVISION_IN_PROGRESS", "MIGRATION_FAILED"},
         0, Route::Handler::database_operation},
        {"POST", "/api/v1/workspaces/{workspace_id}/database/rollback", "rollbackWorkspaceDatabase", "databases",
         "Undo tenant migrations down to target_version (workspace_admin), newest first, each in its own transaction",
         "workspace_database_claim",
         {{S::path, "workspace_id", T::uuid, true},
          {S::fixed, "operation", T::text, true, "rollback"},
          {S::body_field, "target_version", T::integer, true, "the version to go back to"},
          {S::query_option, "async", T::boolean, false, "answer 202 once the work is claimed"}},
         {}, 200,
         {"WORKSPACE_NOT_FOUND", "WORKSPACE_DATABASE_NOT_FOUND", "STATE_CONFLICT", "PROVISION_IN_PROGRESS", "MIGRATION_FAILED"},
         0, Route::Handler::database_operation},

        {"POST", "/api/v1/workspaces/{workspace_id}/database/backup", "backupWorkspaceDatabase", "databases",
         "Dump the workspace's database (pg_dump custom format) with every table's row count (workspace_admin); "
         "the oldest beyond backup_keep are deleted",
         "workspace_database_claim",
         {{S::path, "workspace_id", T::uuid, true},
          {S::fixed, "operation", T::text, true, "backup"},
          {S::query_option, "async", T::boolean, false, "answer 202 once the work is claimed"}},
         {}, 200,
         {"WORKSPACE_NOT_FOUND", "WORKSPACE_DATABASE_NOT_FOUND", "STATE_CONFLICT", "PROVISION_IN_PROGRESS", "BACKUP_FAILED"},
         0, Route::Handler::database_operation},
        {"GET", "/api/v1/workspaces/{workspace_id}/database/backups", "listWorkspaceDatabaseBackups", "databases",
         "The database's backups, newest first (any member): status, reason, size, SHA-256, schema version, row counts",
         "workspace_database_backup_list", {{S::path, "workspace_id", T::uuid, true}}, {}, 200, {"WORKSPACE_NOT_FOUND"}},
        {"POST", "/api/v1/workspaces/{workspace_id}/database/restore", "restoreWorkspaceDatabase", "databases",
         "Restore a backup (workspace_admin) into a fresh database and check every table's rows against the backup; "
         "into the workspace (the default) that copy then replaces the database, into \"copy\" it stays beside it",
         "workspace_database_claim",
         {{S::path, "workspace_id", T::uuid, true},
          {S::fixed, "operation", T::text, true, "restore"},
          {S::body_field, "backup_id", T::uuid, true, "the backup to restore"},
          {S::body_field, "into", T::text, false, "workspace (default) or copy"},
          {S::query_option, "async", T::boolean, false, "answer 202 once the work is claimed"}},
         {}, 200,
         {"WORKSPACE_NOT_FOUND", "WORKSPACE_DATABASE_NOT_FOUND", "STATE_CONFLICT", "PROVISION_IN_PROGRESS", "BACKUP_NOT_FOUND",
          "BACKUP_FAILED"},
         0, Route::Handler::database_operation},

        {"POST", "/api/v1/apps/{app_id}/database-roles", "createAppDatabaseRole", "databases",
         "A login role on the workspace database bound to the app (workspace_admin): read (SELECT), write (and "
         "INSERT, UPDATE, DELETE) or admin (DDL too), optionally until expires_at; never answers its password",
         "app_database_role_begin",
         {{S::path, "app_id", T::uuid, true},
          {S::body_field, "role_type", T::text, true, "read, write or admin"},
          {S::body_field, "expires_at", T::timestamp, false, "when the role stops working (ISO 8601)"}},
         {}, 201, {"APP_NOT_FOUND", "WORKSPACE_DATABASE_NOT_FOUND", "STATE_CONFLICT", "PROVISION_IN_PROGRESS", "PROVISION_FAILED"},
         0, Route::Handler::database_operation},
        {"GET", "/api/v1/apps/{app_id}/database-roles", "listAppDatabaseRoles", "databases",
         "The app's database roles, newest first (any member): type, name, status, expiry", "app_database_role_list",
         {{S::path, "app_id", T::uuid, true}}, {}, 200, {"APP_NOT_FOUND"}},
        {"POST", "/api/v1/database-roles/{role_id}/revoke", "revokeAppDatabaseRole", "databases",
         "Revoke an app's database role (workspace_admin): its sessions end, what it made passes to the workspace role, "
         "it is dropped", "app_database_role_revoke_begin",
         {{S::path, "role_id", T::uuid, true}, {S::body_field, "reason", T::text, false, "why, kept with the role"}},
         {}, 200, {"DATABASE_ROLE_NOT_FOUND", "APP_NOT_FOUND", "STATE_CONFLICT", "PROVISION_IN_PROGRESS", "PROVISION_FAILED"},
         0, Route::Handler::database_operation},

        // schema changes: an app version's db_schema applied to the workspace database after review
        {"POST", "/api/v1/apps/{app_id}/schema-changes", "submitSchemaChange", "databases",
         "Submit the version's db_schema as a change of the workspace database (app_edit): planned at once against "
         "the database's schema, each statement with its risks; unchanged when there is nothing to do",
         "schema_change_submit",
         {{S::path, "app_id", T::uuid, true}, {S::body_field, "version_id", T::uuid, true, "the version whose db_schema is wanted"}},
         {}, 201,
         {"APP_NOT_FOUND", "VERSION_NOT_FOUND", "WORKSPACE_DATABASE_NOT_FOUND", "STATE_CONFLICT", "SCHEMA_CHANGE_FAILED"},
         0, Route::Handler::database_operation},
        {"GET", "/api/v1/apps/{app_id}/schema-changes", "listSchemaChanges", "databases",
         "The app's schema changes, newest first (any member), with their plans and reviews", "schema_change_list",
         {{S::path, "app_id", T::uuid, true}}, {}, 200, {"APP_NOT_FOUND"}},
        {"GET", "/api/v1/schema-changes/{change_id}", "getSchemaChange", "databases",
         "A schema change (any member): its db_schema, plan, risks, review and outcome", "schema_change_get",
         {{S::path, "change_id", T::uuid, true}}, {}, 200, {"SCHEMA_CHANGE_NOT_FOUND"}},
        {"POST", "/api/v1/schema-changes/{change_id}/approve", "approveSchemaChange", "databases",
         "Approve a planned change (workspace_admin); a plan that deletes or narrows data needs allow_destructive",
         "schema_change_approve",
         {{S::path, "change_id", T::uuid, true},
          {S::body_field, "allow_destructive", T::boolean, false, "approve a plan that deletes or narrows data"},
          {S::body_field, "comment", T::text, false, "the reviewer's note, kept with the change"}},
         {}, 200, {"SCHEMA_CHANGE_NOT_FOUND", "STATE_CONFLICT", "SCHEMA_CHANGE_DESTRUCTIVE"}},
        {"POST", "/api/v1/schema-changes/{change_id}/reject", "rejectSchemaChange", "databases",
         "Reject a planned or approved change (workspace_admin)", "schema_change_reject",
         {{S::path, "change_id", T::uuid, true}, {S::body_field, "comment", T::text, false, "why, kept with the change"}},
         {}, 200, {"SCHEMA_CHANGE_NOT_FOUND", "STATE_CONFLICT"}},
        {"POST", "/api/v1/schema-changes/{change_id}/apply", "applySchemaChange", "databases",
         "Apply an approved change (workspace_admin): a backup first, then the approved statements in one transaction "
         "as the workspace's role, checked against the db_schema after; any failure rolls the whole change back",
         "schema_change_apply_begin",
         {{S::path, "change_id", T::uuid, true},
          {S::query_option, "async", T::boolean, false, "answer 202 once the work is claimed"}},
         {}, 200,
         {"SCHEMA_CHANGE_NOT_FOUND", "STATE_CONFLICT", "PROVISION_IN_PROGRESS", "SCHEMA_CHANGE_STALE", "SCHEMA_CHANGE_FAILED",
          "BACKUP_FAILED"},
         0, Route::Handler::database_operation},

        // executions
        {"POST", "/api/v1/apps/{app_id}/runs", "runApp", "executions",
         "Trial run of a version (default: the current one, else the newest) by a member with app_edit; "
         "waits for the result up to run_wait_ms (then 202), or answers 202 at once with ?async=true",
         "execution_create",
         {{S::path, "app_id", T::uuid, true},
          {S::body_field, "inputs", T::json_object, false, "the start node's inputs"},
          {S::body_field, "version_id", T::uuid, false, "the version to run"},
          {S::query_option, "async", T::boolean, false, "answer 202 with the execution at once"}},
         {}, 200, {"APP_NOT_FOUND", "VERSION_NOT_FOUND", "WORKSPACE_INACTIVE"}, 0, Route::Handler::trial_run},
        {"GET", "/api/v1/apps/{app_id}/executions", "listExecutions", "executions",
         "An app's executions, newest first, filtered and paged", "execution_list",
         {{S::path, "app_id", T::uuid, true}, {S::query_filters, "filters", T::json_object, false}},
         with_pages({{"status", T::text, "pending, running, completed, failed or cancelled"},
                     {"trigger", T::text, "trial, api, runtime or schedule"},
                     {"node_type", T::text, "only executions that ran a node of this type"},
                     {"from", T::timestamp, "created at or after (ISO 8601)"},
                     {"to", T::timestamp, "created before (ISO 8601)"}}),
         200, {"APP_NOT_FOUND"}},
        {"GET", "/api/v1/executions/{execution_id}", "getExecution", "executions", "An execution with its node logs",
         "execution_get", {{S::path, "execution_id", T::uuid, true}}, {}, 200, {"EXECUTION_NOT_FOUND"}},
        {"GET", "/api/v1/executions/{execution_id}/events", "streamExecutionEvents", "executions",
         "An execution's events as Server-Sent Events (node_started, node_finished, execution_finished), from the "
         "first or after Last-Event-ID; heartbeat comments while it runs; ends after execution_finished",
         "execution_events",
         {{S::path, "execution_id", T::uuid, true},
          {S::query_field, "after", T::integer, false, "resume after this event id (as the Last-Event-ID header does)"}},
         {}, 200, {"EXECUTION_NOT_FOUND"}, 0, Route::Handler::event_stream},
        {"POST", "/api/v1/executions/{execution_id}/cancel", "cancelExecution", "executions",
         "Cancel a pending or running execution", "execution_cancel", {{S::path, "execution_id", T::uuid, true}}, {}, 200,
         {"EXECUTION_NOT_FOUND", "STATE_CONFLICT"}},

        {"POST", "/api/v1/workflows/validate", "validateWorkflow", "versions",
         "Check a workflow and a UI schema without saving them: every problem, the input mapping, the run order",
         "workflow_validate",
         {{S::body_field, "workflow", T::json_object, true, "the workflow graph (seed §52)"},
          {S::body_field, "ui_schema", T::json_object, false, "the UI schema (seed §28, §51)"}},
         {}, 200, {}, 4 * 1024 * 1024 + 4096},
        {"GET", "/api/v1/error-codes", "listErrorCodes", "meta", "Every error code with its HTTP status", "error_codes", {}, {},
         200, {}},

        // The public runtime (runtime.cpp): visitors, not API keys. Each request is one
        // runtime_admit call that resolves the address, the session, the limits and the access
        // policy. /runtime/{workspace} alone is the workspace's default app. The executions
        // routes come first: they win over an app named "executions" (equal literals).
        {"GET", "/runtime/{workspace}/executions/{execution_id}", "getDefaultAppRun", "runtime",
         "The visitor's own run of the default app", "runtime_admit", kRuntimeRun, {}, 200, kRuntimeRunErrors, 0,
         Route::Handler::runtime},
        {"GET", "/runtime/{workspace}/executions/{execution_id}/events", "streamDefaultAppRun", "runtime",
         "The visitor's own run of the default app as Server-Sent Events (progress, then the outputs)", "runtime_admit",
         kRuntimeRunEvents, {}, 200, kRuntimeRunErrors, 0, Route::Handler::runtime},
        {"GET", "/runtime/{workspace}/{app}/executions/{execution_id}", "getRuntimeRun", "runtime",
         "The visitor's own run (same session or signed-in user): execution_id, status, outputs, error", "runtime_admit",
         kRuntimeAppRun, {}, 200, kRuntimeRunErrors, 0, Route::Handler::runtime},
        {"GET", "/runtime/{workspace}/{app}/executions/{execution_id}/events", "streamRuntimeRun", "runtime",
         "The visitor's own run as Server-Sent Events: node_started / node_finished (node_id, node_type, status, "
         "duration_ms), streamed model text, then execution_finished with the outputs", "runtime_admit",
         kRuntimeAppRunEvents, {}, 200, kRuntimeRunErrors, 0, Route::Handler::runtime},
        {"GET", "/runtime/{workspace}", "getDefaultApp", "runtime",
         "The workspace's default app: its public description and the session (the page with Accept: text/html)",
         "runtime_admit", kRuntimeWorkspace, {}, 200, kRuntimeErrors, 0, Route::Handler::runtime},
        {"POST", "/runtime/{workspace}", "executeDefaultApp", "runtime", "Run the workspace's default app",
         "runtime_admit", kRuntimeExecuteDefault, {}, 200, kRuntimeExecuteErrors, 0, Route::Handler::runtime},
        {"GET", "/runtime/{workspace}/schema", "getDefaultAppSchema", "runtime",
         "The default app's UI schema, input mapping, start inputs and output schema", "runtime_admit",
         kRuntimeSchemaDefault, {}, 200, kRuntimeErrors, 0, Route::Handler::runtime},
        {"GET", "/runtime/{workspace}/embed", "embedDefaultApp", "runtime",
         "The default app's page for an <iframe> (text/html)", "runtime_admit", kRuntimeWorkspace, {}, 200,
         kRuntimeErrors, 0, Route::Handler::runtime},
        {"GET", "/runtime/{workspace}/{app}", "getRuntimeApp", "runtime",
         "A published app's public description and the session (the public page with Accept: text/html)",
         "runtime_admit", kRuntimeApp, {}, 200, kRuntimeErrors, 0, Route::Handler::runtime},
        {"POST", "/runtime/{workspace}/{app}", "executeRuntimeApp", "runtime",
         "Run a published app: execution_id, status, outputs, error (202 with ?async=true or past run_wait_ms)",
         "runtime_admit", kRuntimeExecute, {}, 200, kRuntimeExecuteErrors, 0, Route::Handler::runtime},
        {"GET", "/runtime/{workspace}/{app}/schema", "getRuntimeAppSchema", "runtime",
         "The app's UI schema, input mapping, start inputs and output schema (?cache=1: shared, with an ETag)",
         "runtime_admit", kRuntimeSchema, {}, 200, kRuntimeErrors, 0, Route::Handler::runtime},
        {"GET", "/runtime/{workspace}/{app}/embed", "embedRuntimeApp", "runtime",
         "The app's page for an <iframe>: compact, noindex, framable from its allowed_origins (text/html)",
         "runtime_admit", kRuntimeApp, {}, 200, kRuntimeErrors, 0, Route::Handler::runtime},

        // custom domains (the actions on one domain: add_domain_routes)
        {"POST", "/api/v1/apps/{app_id}/domains", "bindDomain", "domains",
         "Bind a custom domain to an app (app_publish): the name checked (IDN to punycode; no IP, wildcard, port or "
         "platform host) and answered with its DNS instructions", "app_domain_bind",
         {{S::path, "app_id", T::uuid, true}, {S::body_field, "domain", T::text, true, "the domain name, at most 253 characters"}},
         {}, 201, {"APP_NOT_FOUND", "DOMAIN_TAKEN", "DOMAIN_PLATFORM_HOST", "DOMAIN_QUOTA_EXCEEDED"}},
        {"GET", "/api/v1/apps/{app_id}/domains", "listDomains", "domains", "The app's custom domains, oldest first (members)",
         "app_domain_list",
         {{S::path, "app_id", T::uuid, true}, {S::query_filters, "filters", T::json_object, false}},
         with_pages({{"status", T::text, "pending, verifying, verified, failed, active or blocked"}}), 200,
         {"APP_NOT_FOUND"}},
    };
    add_domain_routes(table);
    return table;
    }();
    return table;
}
// clang-format on

const char *field_type_name(FieldType type) {
    switch (type) {
        case T::uuid:
            return "uuid";
        case T::text:
            return "text";
        case T::boolean:
            return "boolean";
        case T::integer:
            return "integer";
        case T::bigint:
            return "bigint";
        case T::timestamp:
            return "timestamptz";
        case T::json_object:
        case T::json_array:
        case T::json_any:
            return "jsonb";
    }
    return "text";
}

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> segments;
    size_t start = 1;
    while (start <= path.size()) {
        size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        segments.push_back(path.substr(start, end - start));
        start = end + 1;
    }
    return segments;
}

// Patterns split once, SQL built once: matching runs on every request (twice: for the body
// limit when headers arrive, and for the call), so it allocates nothing it can avoid.
struct CompiledRoute {
    const Route *route;
    std::vector<std::string_view> segments;
    std::vector<bool> is_parameter;
    std::string sql;
};

const std::vector<CompiledRoute> &compiled_routes() {
    static const std::vector<CompiledRoute> compiled = [] {
        std::vector<CompiledRoute> out;
        for (const Route &route : routes()) {
            CompiledRoute entry{&route, split_path(route.pattern), {}, {}};
            for (auto segment : entry.segments)
                entry.is_parameter.push_back(segment.size() > 2 && segment.front() == '{');
            entry.sql = "select flowgres." + std::string(route.function) + "(";
            size_t position = 0;
            for (const Argument &argument : route.arguments) {
                if (!passed_to_sql(argument)) continue;
                if (position) entry.sql += ", ";
                entry.sql += "$" + std::to_string(++position) + "::" + field_type_name(argument.type);
            }
            entry.sql += ")::text";
            out.push_back(std::move(entry));
        }
        return out;
    }();
    return compiled;
}

// Splits into at most `capacity` segments; false when there are more (no route is that deep).
bool split_request_path(std::string_view path, std::string_view *segments, size_t capacity, size_t &count) {
    count = 0;
    size_t start = 1;
    while (start <= path.size()) {
        if (count == capacity) return false;
        size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        segments[count++] = path.substr(start, end - start);
        start = end + 1;
    }
    return true;
}

}  // namespace

const std::string &route_sql(const Route &route) {
    return compiled_routes()[&route - routes().data()].sql;
}

const char *required_scope(const Route &route) {
    return std::string_view(route.method) == "GET" ? "read" : "write";
}

RouteMatch match_route(std::string_view method, std::string_view path) {
    RouteMatch result;
    if (path.empty() || path[0] != '/') return result;
    constexpr size_t kMaxSegments = 12;
    std::string_view segments[kMaxSegments];
    size_t count = 0;
    if (!split_request_path(path, segments, kMaxSegments, count)) return result;
    const CompiledRoute *best = nullptr;
    int best_literals = -1;
    for (const CompiledRoute &entry : compiled_routes()) {
        if (entry.segments.size() != count) continue;
        int literals = 0;
        bool matched = true;
        for (size_t i = 0; i < count && matched; i++) {
            if (entry.is_parameter[i])
                matched = !segments[i].empty();
            else if (entry.segments[i] == segments[i])
                literals++;
            else
                matched = false;
        }
        if (!matched) continue;
        std::string_view route_method = entry.route->method;
        if (method != route_method && !(method == "HEAD" && route_method == "GET")) {
            result.allowed_methods.emplace_back(route_method);
            continue;
        }
        if (literals > best_literals) {
            best = &entry;
            best_literals = literals;
        }
    }
    if (!best) return result;
    result.route = best->route;
    result.allowed_methods.clear();
    for (size_t i = 0; i < count; i++) {
        if (!best->is_parameter[i]) continue;
        std::string_view name = best->segments[i].substr(1, best->segments[i].size() - 2);
        auto decoded = http::percent_decode(segments[i], false);
        // A malformed escape cannot name anything: keep it raw, the id check refuses it.
        result.path_parameters.emplace_back(std::string(name),
                                            decoded ? std::move(*decoded) : std::string(segments[i]));
    }
    return result;
}

}  // namespace flowgres::daemon
