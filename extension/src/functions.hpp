// Every SQL-callable function's C++ body, by area. entry_points.cpp binds each to its symbol.
#pragma once

#include "boundary.hpp"

namespace flowgres {

// actor and permission
SqlValue current_actor_id(CallArgs &);
SqlValue has_permission(CallArgs &);
SqlValue error_codes(CallArgs &);
// user.cpp
SqlValue user_create(CallArgs &);
SqlValue user_get(CallArgs &);
// workspace.cpp
SqlValue workspace_create(CallArgs &);
SqlValue workspace_get(CallArgs &);
SqlValue workspace_list(CallArgs &);
SqlValue workspace_update(CallArgs &);
SqlValue workspace_delete(CallArgs &);
SqlValue workspace_restore(CallArgs &);
// member.cpp
SqlValue member_invite(CallArgs &);
SqlValue member_accept(CallArgs &);
SqlValue member_list(CallArgs &);
SqlValue member_update_role(CallArgs &);
SqlValue member_remove(CallArgs &);
// workspace_database.cpp
SqlValue database_server_add(CallArgs &);
SqlValue database_server_update(CallArgs &);
SqlValue database_server_list(CallArgs &);
SqlValue workspace_database_get(CallArgs &);
SqlValue workspace_database_claim(CallArgs &);
SqlValue workspace_database_stage_secret(CallArgs &);
SqlValue workspace_database_report(CallArgs &);
SqlValue workspace_database_secret(CallArgs &);
SqlValue secret_refs_sealed_with_other_keys(CallArgs &);
SqlValue secret_ref_reseal(CallArgs &);
SqlValue workspace_database_backup_list(CallArgs &);
SqlValue workspace_database_backup_record(CallArgs &);
SqlValue workspace_database_backup_get(CallArgs &);
SqlValue workspace_database_backup_prune(CallArgs &);
SqlValue workspace_databases_due_for_backup(CallArgs &);
SqlValue execution_data_written(CallArgs &);
// app_database_role.cpp
SqlValue app_database_role_begin(CallArgs &);
SqlValue app_database_role_revoke_begin(CallArgs &);
SqlValue app_database_role_report(CallArgs &);
SqlValue app_database_role_list(CallArgs &);
SqlValue app_database_roles_expired(CallArgs &);
// schema_change.cpp
SqlValue schema_change_submit(CallArgs &);
SqlValue schema_change_record_plan(CallArgs &);
SqlValue schema_change_get(CallArgs &);
SqlValue schema_change_list(CallArgs &);
SqlValue schema_change_approve(CallArgs &);
SqlValue schema_change_reject(CallArgs &);
SqlValue schema_change_apply_begin(CallArgs &);
SqlValue schema_change_report(CallArgs &);
// app.cpp
SqlValue app_create(CallArgs &);
SqlValue app_get(CallArgs &);
SqlValue app_list(CallArgs &);
SqlValue app_update(CallArgs &);
SqlValue app_public_page_update(CallArgs &);
SqlValue app_duplicate(CallArgs &);
// version.cpp
SqlValue version_create(CallArgs &);
SqlValue version_list(CallArgs &);
SqlValue version_get(CallArgs &);
SqlValue version_diff(CallArgs &);
// lifecycle.cpp
SqlValue app_publish(CallArgs &);
SqlValue app_rollback(CallArgs &);
SqlValue app_deprecate(CallArgs &);
SqlValue app_archive(CallArgs &);
// access_policy.cpp
SqlValue access_policy_get(CallArgs &);
SqlValue access_policy_update(CallArgs &);
// secret.cpp
SqlValue secret_create(CallArgs &);
SqlValue secret_list(CallArgs &);
SqlValue secret_get(CallArgs &);
SqlValue secret_rotate(CallArgs &);
SqlValue secret_revoke(CallArgs &);
SqlValue secret_delete(CallArgs &);
SqlValue secrets_for_run(CallArgs &);

// llm_provider.cpp
SqlValue llm_provider_create(CallArgs &);
SqlValue llm_provider_list(CallArgs &);
SqlValue llm_provider_get(CallArgs &);
SqlValue llm_provider_update(CallArgs &);
SqlValue llm_provider_delete(CallArgs &);
SqlValue llm_provider_rotate_key(CallArgs &);
SqlValue llm_model_set_enabled(CallArgs &);
SqlValue workspace_models(CallArgs &);

// gateway.cpp
SqlValue gateway_admit(CallArgs &);
SqlValue gateway_record(CallArgs &);
SqlValue api_key_set_limits(CallArgs &);
SqlValue trace_get(CallArgs &);

// app_domain.cpp
SqlValue app_domain_bind(CallArgs &);
SqlValue app_domain_list(CallArgs &);
SqlValue app_domain_get(CallArgs &);
SqlValue app_domain_delete(CallArgs &);
SqlValue app_domain_verify_begin(CallArgs &);
SqlValue app_domain_verify_finish(CallArgs &);
SqlValue app_domain_verify_due(CallArgs &);
SqlValue app_domain_activate(CallArgs &);
SqlValue app_domain_rollback(CallArgs &);
SqlValue app_domain_block(CallArgs &);
SqlValue app_domain_unblock(CallArgs &);
// domain_certificate.cpp
SqlValue app_domain_cert_begin(CallArgs &);
SqlValue app_domain_cert_challenge(CallArgs &);
SqlValue acme_challenge_answer(CallArgs &);
SqlValue app_domain_cert_finish(CallArgs &);
SqlValue app_domain_cert_due(CallArgs &);
SqlValue acme_account_get(CallArgs &);
SqlValue acme_account_save(CallArgs &);
SqlValue app_domain_tls(CallArgs &);
SqlValue app_domain_tls_names(CallArgs &);
// conversation.cpp
SqlValue conversation_list(CallArgs &);
SqlValue conversation_messages(CallArgs &);
// Each call's conversation turns ({conversation_id, messages}) of gateway_record's batch.
void store_conversation_turns(const std::string &calls_json);

// llm_provider.cpp: the models a workspace may use, as workspace_models answers.
std::string workspace_models_document(const std::string &workspace_id);

// wallet.cpp
SqlValue wallet(CallArgs &);
SqlValue wallet_open_holds(CallArgs &);
SqlValue wallet_transaction_list(CallArgs &);
SqlValue wallet_grant(CallArgs &);
SqlValue wallet_refund(CallArgs &);
SqlValue wallet_hold(CallArgs &);
SqlValue wallet_settle(CallArgs &);

// model_usage.cpp
SqlValue llm_routes_for_run(CallArgs &);
SqlValue model_usage_record(CallArgs &);
SqlValue model_usage(CallArgs &);
SqlValue model_usage_list(CallArgs &);

// safety_rule.cpp
SqlValue safety_rule_add(CallArgs &);
SqlValue safety_rule_list(CallArgs &);
SqlValue safety_rule_delete(CallArgs &);
SqlValue safety_rules_for_run(CallArgs &);

// token_hold.cpp
SqlValue llm_tokens_reserve(CallArgs &);
SqlValue llm_tokens_release(CallArgs &);

// app_generation.cpp
SqlValue app_document_problems(CallArgs &);
SqlValue app_generation_begin(CallArgs &);
SqlValue app_create_generated(CallArgs &);
SqlValue generation_usage_record(CallArgs &);
SqlValue version_generation_begin(CallArgs &);
SqlValue version_create_generated(CallArgs &);

// api_key.cpp
SqlValue api_key_create(CallArgs &);
SqlValue api_key_list(CallArgs &);
SqlValue api_key_rotate(CallArgs &);
SqlValue api_key_revoke(CallArgs &);
SqlValue api_key_authenticate(CallArgs &);
SqlValue api_key_touch(CallArgs &);
// idempotency.cpp
SqlValue idempotency_claim(CallArgs &);
SqlValue idempotency_complete(CallArgs &);
SqlValue idempotency_release(CallArgs &);
SqlValue idempotency_purge(CallArgs &);
// audit.cpp
SqlValue audit_log_list(CallArgs &);
// execution.cpp
SqlValue execution_create(CallArgs &);
SqlValue execution_start(CallArgs &);
SqlValue execution_create_running(CallArgs &);
SqlValue execution_admit_trial(CallArgs &);
SqlValue execution_claim(CallArgs &);
SqlValue execution_finish(CallArgs &);
SqlValue execution_cancel(CallArgs &);
SqlValue execution_heartbeat(CallArgs &);
SqlValue node_logs_append(CallArgs &);
SqlValue execution_events_append(CallArgs &);
SqlValue execution_events(CallArgs &);
SqlValue execution_get(CallArgs &);
SqlValue execution_list(CallArgs &);
// execution_record.cpp
SqlValue executions_record(CallArgs &);
SqlValue executions_record_framed(CallArgs &);
SqlValue executions_recording(CallArgs &);
SqlValue execution_store_admitted(CallArgs &);
SqlValue run_cap_noted(CallArgs &);
// runtime_admit.cpp
SqlValue runtime_admit(CallArgs &);
SqlValue runtime_admit_json(CallArgs &);
SqlValue runtime_admit_batch(CallArgs &);
SqlValue runtime_outcome_count(CallArgs &);
// rate_limiter.cpp
SqlValue rate_limit_hit_sql(CallArgs &);
SqlValue rate_limit_stats_sql(CallArgs &);
SqlValue runtime_refusals_flush(CallArgs &);
// quota.cpp
SqlValue workspace_usage(CallArgs &);
SqlValue workspace_quota_set(CallArgs &);
SqlValue workspace_quota_clear(CallArgs &);
SqlValue budget_get(CallArgs &);
SqlValue budget_update(CallArgs &);
SqlValue app_metrics(CallArgs &);
SqlValue app_access_stats(CallArgs &);
SqlValue usage_ledger_sql(CallArgs &);
// workflow_validate.cpp
SqlValue workflow_validate(CallArgs &);

}  // namespace flowgres
