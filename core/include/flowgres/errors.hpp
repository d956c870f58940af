// The one table of flowgres error codes. The extension raises each with its own SQLSTATE; the
// daemon maps each to its HTTP status. Adding a code here is the whole change for both users.
// Not for: formatting messages for people (that is the caller's text) or PostgreSQL's own errors.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <string_view>

namespace flowgres {

// X(code, sqlstate, http_status, summary). SQLSTATE class "FG" is flowgres's own; PostgreSQL
// never emits it, so psql users and drivers can tell our errors from the server's.
#define FLOWGRES_ERROR_CODES(X)                                                              \
    X(VALIDATION_FAILED, "FG001", 422, "input failed validation")                            \
    X(UNAUTHENTICATED, "FG002", 401, "no acting user")                                       \
    X(PERMISSION_DENIED, "FG003", 403, "the acting user lacks the permission")              \
    X(BAD_REQUEST, "FG004", 400, "malformed request")                                        \
    X(USER_NOT_FOUND, "FG010", 404, "no such user")                                          \
    X(USER_EMAIL_TAKEN, "FG011", 409, "a user with this email exists")                       \
    X(USER_ROLE_TAKEN, "FG012", 409, "this database role is mapped to another user")         \
    X(WORKSPACE_NOT_FOUND, "FG020", 404, "no such workspace")                                \
    X(WORKSPACE_SLUG_TAKEN, "FG021", 409, "the workspace slug is in use")                    \
    X(WORKSPACE_RESTORE_EXPIRED, "FG022", 409, "the restore window has passed")              \
    X(WORKSPACE_INACTIVE, "FG023", 409, "the workspace is not active")                       \
    X(MEMBER_NOT_FOUND, "FG030", 404, "no such member")                                      \
    X(MEMBER_EXISTS, "FG031", 409, "the user is already a member")                           \
    X(LAST_OWNER, "FG032", 409, "the last owner cannot be removed or demoted")               \
    X(MEMBER_QUOTA_EXCEEDED, "FG033", 403, "the plan's member limit is reached")             \
    X(APP_NOT_FOUND, "FG040", 404, "no such app")                                            \
    X(APP_SLUG_TAKEN, "FG041", 409, "the app slug is in use in this workspace")              \
    X(APP_QUOTA_EXCEEDED, "FG042", 403, "the plan's app limit is reached")                   \
    X(VERSION_NOT_FOUND, "FG050", 404, "no such version")                                    \
    X(VERSION_EXISTS, "FG051", 409, "this version exists for the app")                       \
    X(VERSION_IMMUTABLE, "FG052", 409, "app versions cannot be changed")                     \
    X(STATE_CONFLICT, "FG060", 409, "the transition is not allowed from the current state") \
    X(API_KEY_NOT_FOUND, "FG070", 404, "no such API key")                                    \
    X(IDEMPOTENCY_CONFLICT, "FG080", 409, "the idempotency key was used with another request") \
    X(IDEMPOTENCY_IN_PROGRESS, "FG081", 409, "the first request with this key is in flight")  \
    X(EXECUTION_NOT_FOUND, "FG085", 404, "no such execution")                                \
    X(EXECUTION_ABANDONED, "FG086", 500, "the execution stopped sending heartbeats")          \
    X(NODE_FAILED, "FG087", 500, "a workflow node failed")                                   \
    X(NODE_TIMEOUT, "FG088", 504, "a workflow node ran past its timeout")                      \
    X(EXECUTION_TIMEOUT, "FG089", 504, "the execution ran past its timeout")                  \
    X(NOT_FOUND, "FG090", 404, "no such route")                                              \
    X(METHOD_NOT_ALLOWED, "FG091", 405, "the route does not accept this method")             \
    X(PAYLOAD_TOO_LARGE, "FG092", 413, "the request body is too large")                      \
    X(URI_TOO_LONG, "FG093", 414, "the request target is too long")                          \
    X(HEADERS_TOO_LARGE, "FG094", 431, "the request header block is too large")              \
    X(UNSUPPORTED_MEDIA_TYPE, "FG095", 415, "the request body must be application/json")     \
    X(RATE_LIMITED, "FG096", 429, "too many requests")                                       \
    X(DB_UNAVAILABLE, "FG097", 503, "the database is unreachable or busy")                  \
    X(SHUTTING_DOWN, "FG098", 503, "the server is shutting down")                            \
    X(CLIENT_GONE, "FG099", 499, "the caller left before the run started")                   \
    X(EGRESS_DENIED, "FG110", 403, "the address is not one workflows may reach")             \
    X(HTTP_REQUEST_FAILED, "FG111", 502, "the HTTP request of a step failed")                  \
    X(HTTP_RESPONSE_TOO_LARGE, "FG112", 502, "the HTTP response is larger than the limit")      \
    X(HTTP_UNEXPECTED_STATUS, "FG113", 502, "the HTTP response status was not the expected one") \
    X(HTTP_TIMEOUT, "FG114", 504, "the HTTP request of a step timed out")                       \
    X(RUNTIME_APP_NOT_FOUND, "FG120", 404, "no app is published at this address")             \
    X(APP_NOT_PUBLISHED, "FG121", 404, "the app is not published")                            \
    X(APP_DEPRECATED, "FG122", 410, "the app takes no new sessions")                           \
    X(APP_ARCHIVED, "FG123", 410, "the app is archived")                                       \
    X(WORKSPACE_SUSPENDED, "FG124", 403, "the workspace is suspended")                         \
    X(ACCESS_DENIED, "FG125", 403, "the app is private to its workspace's members")            \
    X(AUTH_REQUIRED, "FG126", 401, "the app needs a signed-in user")                           \
    X(IP_BLOCKED, "FG127", 403, "requests from this address are blocked")                      \
    X(ORIGIN_NOT_ALLOWED, "FG128", 403, "the app may not be used from this origin")            \
    X(SESSION_BLOCKED, "FG129", 403, "the session is blocked")                                 \
    X(SESSION_INVALID, "FG130", 403, "the session belongs to another app")                     \
    X(CAPTCHA_REQUIRED, "FG131", 403, "a CAPTCHA token is required")                           \
    X(CAPTCHA_INVALID, "FG132", 403, "the CAPTCHA token was not accepted")                     \
    X(QUOTA_EXCEEDED, "FG133", 429, "the workspace's plan quota is used up")                   \
    X(OVERLOADED, "FG134", 503, "the app is shedding load; retry shortly")                     \
    X(WORKSPACE_DATABASE_NOT_FOUND, "FG140", 404, "the workspace has no database")             \
    X(DATABASE_SERVER_NOT_FOUND, "FG141", 404, "no such database server")                      \
    X(NO_DATABASE_SERVER, "FG142", 503, "no database server can take another database")       \
    X(PROVISION_IN_PROGRESS, "FG143", 409, "a provision of this workspace's database is running") \
    X(PROVISION_FAILED, "FG144", 502, "the workspace database could not be provisioned")        \
    X(SECRETS_NOT_CONFIGURED, "FG145", 503, "no master key is configured for secrets")          \
    X(SECRET_KEY_UNKNOWN, "FG146", 500, "the secret was sealed with a master key not configured") \
    X(SECRET_INVALID, "FG147", 500, "the secret does not open with the configured master key")  \
    X(MIGRATION_FAILED, "FG148", 409, "a migration failed; the database stays at the version before it") \
    X(BACKUP_NOT_FOUND, "FG149", 404, "no such backup of this workspace's database")            \
    X(BACKUP_FAILED, "FG150", 502, "the backup or restore could not be completed")              \
    X(DATABASE_ROLE_NOT_FOUND, "FG151", 404, "no such database role of an app")                 \
    X(SCHEMA_CHANGE_NOT_FOUND, "FG152", 404, "no such schema change")                           \
    X(SCHEMA_CHANGE_DESTRUCTIVE, "FG153", 409, "the plan deletes or narrows data; approve it with allow_destructive") \
    X(SCHEMA_CHANGE_STALE, "FG154", 409, "the database changed since the plan was made; submit the change again") \
    X(SCHEMA_CHANGE_FAILED, "FG155", 409, "the schema change failed and was rolled back")        \
    X(SECRET_NOT_FOUND, "FG160", 404, "no such secret in this workspace")                      \
    X(SECRET_EXISTS, "FG161", 409, "a secret with this name exists in this workspace")          \
    X(SECRET_REVOKED, "FG162", 409, "the secret is revoked")                                     \
    X(SECRET_EXPIRED, "FG163", 409, "the secret has expired")                                    \
    X(LLM_PROVIDER_NOT_FOUND, "FG170", 404, "no such model provider")                           \
    X(LLM_PROVIDER_EXISTS, "FG171", 409, "a model provider with this name exists here")          \
    X(LLM_MODEL_UNAVAILABLE, "FG172", 404, "no provider offers the model to this workspace")   \
    X(LLM_REQUEST_FAILED, "FG173", 502, "the model provider failed or answered with an error")   \
    X(LLM_RATE_LIMITED, "FG174", 429, "the model provider kept refusing with 429")               \
    X(LLM_TIMEOUT, "FG175", 504, "the model call ran past its timeout")                           \
    X(LLM_OUTPUT_INVALID, "FG176", 502, "the model's answer did not fit the step's output_schema") \
    X(AI_OUTPUT_BLOCKED, "FG177", 451, "the model's answer broke an output safety rule")         \
    X(SAFETY_RULE_NOT_FOUND, "FG178", 404, "no such output safety rule")                         \
    X(BILLING_REF_CONFLICT, "FG180", 409, "the billing_ref_id names another movement")           \
    X(CAPTURE_NOT_FOUND, "FG181", 404, "no capture of this wallet has that billing_ref_id")      \
    X(REFUND_EXCEEDS_CAPTURE, "FG182", 409, "the refunds would give back more than the capture took") \
    X(TRACE_NOT_FOUND, "FG183", 404, "no gateway call with this trace id is visible to the actor") \
    X(CONVERSATION_NOT_FOUND, "FG184", 404, "no such conversation in this workspace")               \
    X(DOMAIN_NOT_FOUND, "FG190", 404, "no such custom domain visible to the actor")                 \
    X(DOMAIN_TAKEN, "FG191", 409, "the domain is bound to an app already")                         \
    X(DOMAIN_PLATFORM_HOST, "FG192", 422, "the name is the platform's own host or below it")          \
    X(DOMAIN_QUOTA_EXCEEDED, "FG193", 403, "the app has as many domains as it may have")          \
    X(DOMAIN_BLOCKED, "FG194", 403, "the domain is blocked by the operator")                      \
    X(ACME_NOT_CONFIGURED, "FG195", 503, "no ACME directory or master key is configured")          \
    X(INTERNAL_ERROR, "FG999", 500, "internal error")

enum class ErrorCode {
#define FLOWGRES_ERROR_ENUM(code, sqlstate, http, summary) code,
    FLOWGRES_ERROR_CODES(FLOWGRES_ERROR_ENUM)
#undef FLOWGRES_ERROR_ENUM
};

struct ErrorInfo {
    ErrorCode code;
    std::string_view name;      // "APP_NOT_FOUND"
    std::string_view sqlstate;  // "FG040"
    int http_status;
    std::string_view summary;
};

const ErrorInfo &error_info(ErrorCode code);
std::optional<ErrorCode> error_code_from_name(std::string_view name);
std::optional<ErrorCode> error_code_from_sqlstate(std::string_view sqlstate);

// All codes, for documentation and tests.
const ErrorInfo *error_table_begin();
const ErrorInfo *error_table_end();

// The exception every flowgres rule violation travels as, inside C++ only. `details_json` is a
// JSON value (object or array) placed under "details" of the error DETAIL; "null" when none.
class Error : public std::exception {
public:
    Error(ErrorCode code, std::string message, std::string details_json = "null")
        : code_(code), message_(std::move(message)), details_json_(std::move(details_json)) {}

    ErrorCode code() const { return code_; }
    const std::string &message() const { return message_; }
    const std::string &details_json() const { return details_json_; }
    const char *what() const noexcept override { return message_.c_str(); }

    // {"error_code": "...", "details": ...}: the DETAIL text of the PostgreSQL error.
    std::string detail_document() const;

private:
    ErrorCode code_;
    std::string message_;
    std::string details_json_;
};

// A validation failure naming one field: details are [{"field": f, "message": m}].
Error field_error(std::string_view field, std::string_view message);

// Collects every problem of a document so the caller hears all of them at once.
class ValidationProblems {
public:
    void add(std::string_view field, std::string_view message);
    // With more members for the entry, given as JSON object members: "\"node_id\":\"a\"".
    void add(std::string_view field, std::string_view message, std::string_view extra_members);
    // Records a field_error() thrown by a single-field check, under `field`.
    void add(std::string_view field, const Error &error);
    bool empty() const { return count_ == 0; }
    // Throws VALIDATION_FAILED listing every problem; does nothing when there are none.
    void throw_if_any() const;

private:
    std::string first_;
    std::string details_ = "[";
    size_t count_ = 0;
};

}  // namespace flowgres
