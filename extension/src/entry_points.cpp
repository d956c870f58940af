// The SQL-visible symbols: one line per function of sql/flowgres--*.sql, each running its C++
// body through the boundary. A function missing here fails at CREATE FUNCTION, not at run time.
#include "functions.hpp"
#include "postgres.hpp"

#define FLOWGRES_ENTRY(symbol, body)                                                        \
    extern "C" {                                                                            \
    PG_FUNCTION_INFO_V1(symbol);                                                            \
    Datum symbol(PG_FUNCTION_ARGS) { return flowgres::run_sql_function(fcinfo, &(body)); } \
    }

FLOWGRES_ENTRY(flowgres_current_actor, flowgres::current_actor_id)
FLOWGRES_ENTRY(flowgres_has_permission, flowgres::has_permission)
FLOWGRES_ENTRY(flowgres_error_codes, flowgres::error_codes)
FLOWGRES_ENTRY(flowgres_user_create, flowgres::user_create)
FLOWGRES_ENTRY(flowgres_user_get, flowgres::user_get)
FLOWGRES_ENTRY(flowgres_workspace_create, flowgres::workspace_create)
FLOWGRES_ENTRY(flowgres_workspace_get, flowgres::workspace_get)
FLOWGRES_ENTRY(flowgres_workspace_list, flowgres::workspace_list)
FLOWGRES_ENTRY(flowgres_workspace_update, flowgres::workspace_update)
FLOWGRES_ENTRY(flowgres_workspace_delete, flowgres::workspace_delete)
FLOWGRES_ENTRY(flowgres_workspace_restore, flowgres::workspace_restore)
FLOWGRES_ENTRY(flowgres_member_invite, flowgres::member_invite)
FLOWGRES_ENTRY(flowgres_member_accept, flowgres::member_accept)
FLOWGRES_ENTRY(flowgres_member_list, flowgres::member_list)
FLOWGRES_ENTRY(flowgres_member_update_role, flowgres::member_update_role)
FLOWGRES_ENTRY(flowgres_member_remove, flowgres::member_remove)
FLOWGRES_ENTRY(flowgres_app_create, flowgres::app_create)
FLOWGRES_ENTRY(flowgres_app_get, flowgres::app_get)
FLOWGRES_ENTRY(flowgres_app_list, flowgres::app_list)
FLOWGRES_ENTRY(flowgres_app_update, flowgres::app_update)
FLOWGRES_ENTRY(flowgres_app_duplicate, flowgres::app_duplicate)
FLOWGRES_ENTRY(flowgres_version_create, flowgres::version_create)
FLOWGRES_ENTRY(flowgres_version_list, flowgres::version_list)
FLOWGRES_ENTRY(flowgres_version_get, flowgres::version_get)
FLOWGRES_ENTRY(flowgres_version_diff, flowgres::version_diff)
FLOWGRES_ENTRY(flowgres_app_publish, flowgres::app_publish)
FLOWGRES_ENTRY(flowgres_app_rollback, flowgres::app_rollback)
FLOWGRES_ENTRY(flowgres_app_deprecate, flowgres::app_deprecate)
FLOWGRES_ENTRY(flowgres_app_archive, flowgres::app_archive)
FLOWGRES_ENTRY(flowgres_access_policy_get, flowgres::access_policy_get)
FLOWGRES_ENTRY(flowgres_access_policy_update, flowgres::access_policy_update)
FLOWGRES_ENTRY(flowgres_api_key_create, flowgres::api_key_create)
FLOWGRES_ENTRY(flowgres_api_key_list, flowgres::api_key_list)
FLOWGRES_ENTRY(flowgres_api_key_rotate, flowgres::api_key_rotate)
FLOWGRES_ENTRY(flowgres_api_key_revoke, flowgres::api_key_revoke)
FLOWGRES_ENTRY(flowgres_api_key_authenticate, flowgres::api_key_authenticate)
FLOWGRES_ENTRY(flowgres_api_key_touch, flowgres::api_key_touch)
FLOWGRES_ENTRY(flowgres_idempotency_claim, flowgres::idempotency_claim)
FLOWGRES_ENTRY(flowgres_idempotency_complete, flowgres::idempotency_complete)
FLOWGRES_ENTRY(flowgres_idempotency_release, flowgres::idempotency_release)
FLOWGRES_ENTRY(flowgres_idempotency_purge, flowgres::idempotency_purge)
FLOWGRES_ENTRY(flowgres_audit_log_list, flowgres::audit_log_list)
FLOWGRES_ENTRY(flowgres_workflow_validate, flowgres::workflow_validate)
