-- Schema changes in the control plane: db_schema checked when a version is made, submitted by
-- app editors for a ready database, the plan recorded by the service, reviewed by workspace
-- admins (destructive plans need allow_destructive), the claim an apply holds, its report and
-- events, what strangers see (nothing) and bad input.
begin;
select plan(45);

select test.new_user('schema-owner@example.com') as owner \gset
select test.home_of(:'owner') as ws \gset
select test.new_member(:'ws', 'schema-member@example.com', 'member') as member \gset
select test.new_user('schema-stranger@example.com') as stranger \gset
select 'enc:v1:k1:AAAAAAAAAAAAAAAA:c2VjcmV0c2VjcmV0c2VjcmV0' as sealed \gset
select repeat('ab', 32) as fingerprint \gset

select test.act_as(null);
select flowgres.database_server_add('schema-pool', '127.0.0.1', 6011, 'host=/tmp port=6011 user=postgres');
select test.act_as(:'owner');
select (flowgres.app_create(:'ws', 'Notes') ->> 'id') as app \gset
select flowgres.version_create(:'app', '1.0.0', test.workflow(), '{}',
                               '{"tables": [{"name": "notes", "columns": [{"name": "id", "type": "bigint", "primary_key": true},
                                                                          {"name": "body", "type": "text"}]}]}') ->> 'id' as v1 \gset

-- db_schema is checked when the version is made
select is(test.error_detail_of(format($$select flowgres.version_create(%L, '1.0.1', %L, '{}', %L)$$, :'app', test.workflow(),
                                      '{"tables": [{"name": "x\"; drop table y; --", "columns": [{"name": "a", "type": "text); drop"}]}]}'))
          -> 'details', '[{"field": "db_schema.tables[0].name", "message": "must be 1 to 63 lowercase letters, digits or underscores, not starting with a digit"}, {"field": "db_schema.tables[0].columns[0].type", "message": "must be one of text, varchar(n), smallint, integer, bigint, numeric(p,s), real, double precision, boolean, date, time, timestamp, timestamptz, interval, json, jsonb, uuid, bytea, inet, or one of those followed by []"}]'::jsonb,
          'a db_schema carrying SQL is refused field by field');
select is(test.error_code_of(format($$select flowgres.version_create(%L, '1.0.1', %L, '{}', %L)$$, :'app', test.workflow(),
                                    '{"tables": [{"name": "t", "columns": [{"name": "a", "type": "text", "default": {"expression": "pg_sleep(100)"}}]}]}')),
          'VALIDATION_FAILED', 'so is a default that is not a plain value or a known expression');

-- submitting needs a ready database
select is(test.error_code_of(format('select flowgres.schema_change_submit(%L, %L)', :'app', :'v1')), 'WORKSPACE_DATABASE_NOT_FOUND',
          'no change before the workspace has a database');
select flowgres.workspace_database_claim(:'ws', 'provision', 'p1') \gset
select is(test.error_code_of(format('select flowgres.schema_change_submit(%L, %L)', :'app', :'v1')), 'STATE_CONFLICT',
          'nor while it is being provisioned');
select test.act_as(null);
select flowgres.workspace_database_report(:'ws', 'p1', jsonb_build_object('status', 'ready', 'secret_ref', :'sealed'));

select test.act_as(:'member');
select is(flowgres.schema_change_submit(:'app', :'v1') ->> 'status', 'planning', 'members who edit apps submit changes');
select test.act_as(:'stranger');
select is(test.error_code_of(format('select flowgres.schema_change_submit(%L, %L)', :'app', :'v1')), 'APP_NOT_FOUND',
          'strangers do not see the app');
select test.act_as(:'owner');
select is(test.error_code_of(format('select flowgres.schema_change_submit(%L, %L)', :'app', gen_random_uuid())), 'VERSION_NOT_FOUND',
          'the version must be the app''s');
select (flowgres.app_create(:'ws', 'Other') ->> 'id') as other_app \gset
select is(test.error_code_of(format('select flowgres.schema_change_submit(%L, %L)', :'other_app', :'v1')), 'VERSION_NOT_FOUND',
          'nor another app''s version');
select flowgres.schema_change_submit(:'app', :'v1') as submitted \gset
select :'submitted'::jsonb ->> 'id' as change \gset
select is(:'submitted'::jsonb ->> 'status', 'planning', 'a submitted change waits for its plan');
select is(:'submitted'::jsonb ->> 'version', '1.0.0', 'and names its version');
select is(test.audit_count(:'ws', 'schema_change.submit'), 2::bigint, 'submitting is audited');

-- planning: the service records what it found
select is(test.error_code_of(format('select flowgres.schema_change_approve(%L)', :'change')), 'STATE_CONFLICT',
          'nothing to approve before the plan');
select is(test.error_code_of(format($$select flowgres.schema_change_record_plan(%L, '{"plan": {"steps": []}, "catalog_fingerprint": "short"}')$$, :'change')),
          'VALIDATION_FAILED', 'a plan comes with the fingerprint of the catalog it was made against');
select is(test.error_code_of(format($$select flowgres.schema_change_record_plan(%L, '{"catalog_fingerprint": "%s"}')$$, :'change', :'fingerprint')),
          'VALIDATION_FAILED', 'and with its steps');
select is(flowgres.schema_change_record_plan(:'change', jsonb_build_object(
              'plan', '{"steps": [{"action": "drop_column", "sql": "alter table data.notes drop column old", "risks": [{"code": "drop_column", "destructive": true}]}], "destructive": true, "risks": ["drop_column"]}'::jsonb,
              'catalog_fingerprint', :'fingerprint')) ->> 'status', 'planned', 'a plan with steps is planned');
select is(flowgres.schema_change_get(:'change') ->> 'destructive', 'true', 'and says whether it is destructive');
select is(test.error_code_of(format($$select flowgres.schema_change_record_plan(%L, '{"error": "late"}')$$, :'change')),
          'STATE_CONFLICT', 'a plan is recorded once');

-- review
select test.act_as(:'member');
select is(test.error_code_of(format('select flowgres.schema_change_approve(%L, true)', :'change')), 'PERMISSION_DENIED',
          'members do not approve');
select is(jsonb_array_length(flowgres.schema_change_list(:'app')), 2, 'but see the app''s changes');
select test.act_as(:'stranger');
select is(test.error_code_of(format('select flowgres.schema_change_get(%L)', :'change')), 'SCHEMA_CHANGE_NOT_FOUND',
          'strangers do not see the change');
select is(test.error_code_of(format('select flowgres.schema_change_reject(%L)', :'change')), 'SCHEMA_CHANGE_NOT_FOUND',
          'nor reject it');
select is(test.error_code_of(format('select flowgres.schema_change_list(%L)', :'app')), 'APP_NOT_FOUND', 'nor list the app''s');
select test.act_as(:'owner');
select is(test.error_code_of(format('select flowgres.schema_change_get(%L)', gen_random_uuid())), 'SCHEMA_CHANGE_NOT_FOUND',
          'an unknown change is named as such');
select is(test.error_detail_of(format('select flowgres.schema_change_approve(%L)', :'change')),
          '{"error_code": "SCHEMA_CHANGE_DESTRUCTIVE", "details": {"risks": ["drop_column"]}}'::jsonb,
          'a destructive plan is not approved without allow_destructive, and the risks are named');
select is(test.error_code_of(format('select flowgres.schema_change_approve(%L, true, repeat(''x'', 2001))', :'change')),
          'VALIDATION_FAILED', 'review comments are at most 2000 characters');
select is(flowgres.schema_change_approve(:'change', true, '<script>alert(1)</script> reviewed') ->> 'status', 'approved',
          'with allow_destructive it is approved');
select is(flowgres.schema_change_get(:'change') ->> 'review_comment', '<script>alert(1)</script> reviewed',
          'the comment is kept as text');
select is(test.error_code_of(format('select flowgres.schema_change_approve(%L, true)', :'change')), 'STATE_CONFLICT',
          'approved once');
select is(test.audit_count(:'ws', 'schema_change.approve'), 1::bigint, 'approvals are audited');

-- apply: a claim on the workspace database, then a report
select test.act_as(:'member');
select is(test.error_code_of(format($$select flowgres.schema_change_apply_begin(%L, 'a1')$$, :'change')), 'PERMISSION_DENIED',
          'members do not apply');
select test.act_as(:'owner');
select flowgres.schema_change_apply_begin(:'change', 'a1') as order_doc \gset
select is(:'order_doc'::jsonb -> 'change' ->> 'catalog_fingerprint', :'fingerprint', 'the work order carries the change');
select is(:'order_doc'::jsonb -> 'change' -> 'desired' -> 'tables' -> 0 ->> 'name', 'notes', 'with the schema wanted');
select is(flowgres.workspace_database_get(:'ws') ->> 'operation_in_progress', 'schema_change', 'the database is claimed');
select is(test.error_code_of(format($$select flowgres.workspace_database_claim(%L, 'backup', 'other')$$, :'ws')),
          'PROVISION_IN_PROGRESS', 'so nothing else runs on it meanwhile');
select is(test.error_code_of(format($$select flowgres.schema_change_report(%L, 'other', '{"status": "applied"}')$$, :'change')),
          'STATE_CONFLICT', 'only the claim''s holder reports');
select is(test.error_code_of(format($$select flowgres.schema_change_report(%L, 'a1', '{"status": "failed", "error_code": "oops"}')$$, :'change')),
          'VALIDATION_FAILED', 'failures carry a known code');
select is(flowgres.schema_change_report(:'change', 'a1', '{"status": "applied"}') ->> 'status', 'applied', 'the apply is reported');
select is(flowgres.workspace_database_get(:'ws') ->> 'operation_in_progress', null, 'and the claim ends');
select is((select count(*) from flowgres.runtime_events where workspace_id = :'ws' and event_type = 'db.schema.applied'), 1::bigint,
          'with a db.schema.applied event');
select is(test.error_code_of(format('select flowgres.schema_change_reject(%L)', :'change')), 'STATE_CONFLICT',
          'an applied change is not rejected');

-- a second change: rejected, or failed and rolled back
select flowgres.schema_change_submit(:'app', :'v1') ->> 'id' as change2 \gset
select flowgres.schema_change_record_plan(:'change2', jsonb_build_object('plan', '{"steps": [{"action": "add_column"}], "destructive": false}'::jsonb,
                                                                        'catalog_fingerprint', :'fingerprint')) \gset
select is(flowgres.schema_change_approve(:'change2') ->> 'status', 'approved', 'a plan that deletes nothing needs no flag');
select flowgres.schema_change_apply_begin(:'change2', 'a2') \gset
select is(flowgres.schema_change_report(:'change2', 'a2', '{"status": "failed", "error_code": "stale", "error": "the catalog changed"}')
          ->> 'error_code', 'stale', 'a stale change fails with its reason');
select is((select severity from flowgres.runtime_events where workspace_id = :'ws' and event_type = 'db.schema.apply_failed'), 'error',
          'and a db.schema.apply_failed event');
select flowgres.schema_change_submit(:'app', :'v1') ->> 'id' as change3 \gset
select flowgres.schema_change_record_plan(:'change3', jsonb_build_object('plan', '{"steps": [], "destructive": false}'::jsonb,
                                                                        'catalog_fingerprint', :'fingerprint')) ->> 'status' as unchanged \gset
select is(:'unchanged'::text, 'unchanged', 'a plan without steps leaves nothing to review');

-- the service's functions are the service's
select ok(not has_function_privilege('flowgres_user', 'flowgres.schema_change_apply_begin(uuid, text)', 'execute')
          and not has_function_privilege('flowgres_user', 'flowgres.schema_change_record_plan(uuid, jsonb)', 'execute')
          and has_function_privilege('flowgres_service', 'flowgres.schema_change_report(uuid, text, jsonb)', 'execute'),
          'users cannot record plans or applies');

select * from finish();
rollback;
