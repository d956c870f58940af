-- Workspace databases in the control plane: the server pool (operator only), placement on the
-- server with the fewest databases or a pinned one, the claim a provisioner holds (one at a
-- time), staging and reporting secrets, failure events, the storage quota, what members may
-- read (never a sealed password), re-sealing after a master key rotation, and bad input.
begin;
select plan(95);

select test.new_user('wsdb-owner@example.com') as owner \gset
select test.home_of(:'owner') as ws \gset
select test.new_member(:'ws', 'wsdb-member@example.com', 'member') as member \gset
select test.new_user('wsdb-stranger@example.com') as stranger \gset
select test.home_of(:'stranger') as ws2 \gset
select test.new_user('wsdb-third@example.com') as third \gset
select test.home_of(:'third') as ws3 \gset
select replace(:'ws', '-', '') as compact \gset
select 'enc:v1:k1:AAAAAAAAAAAAAAAA:c2VjcmV0c2VjcmV0c2VjcmV0' as sealed \gset
select 'enc:v1:k2:AAAAAAAAAAAAAAAA:c2VjcmV0c2VjcmV0c2VjcmV0' as resealed \gset

-- the server pool: the operator's
select test.act_as(:'owner');
select is(test.error_code_of($$select flowgres.database_server_add('pool-a', '127.0.0.1', 5432, 'host=/tmp user=postgres')$$),
          'PERMISSION_DENIED', 'only the operator adds servers');
select is(test.error_code_of('select flowgres.database_server_list()'), 'PERMISSION_DENIED', 'or lists them');
select test.act_as(null);
select is(flowgres.database_server_add('pool-a', '127.0.0.1', 6001, 'host=/tmp port=6001 user=postgres') ->> 'databases', '0',
          'a server joins the pool');
select is(flowgres.database_server_add('pool-b', '127.0.0.2', 6002, 'host=/tmp port=6002 user=postgres', 2) ->> 'max_databases', '2',
          'with an optional limit');
select is(test.error_code_of($$select flowgres.database_server_add('pool-a', 'h', 1, 'host=h')$$), 'VALIDATION_FAILED',
          'names are unique');
select is(test.error_code_of($$select flowgres.database_server_add('Pool A', 'h', 1, 'host=h')$$), 'VALIDATION_FAILED',
          'names are lowercase slugs');
select is(test.error_code_of($$select flowgres.database_server_add('pool-c', 'h', 1, 'host=h password=hunter2')$$),
          'VALIDATION_FAILED', 'a password in admin_conninfo is refused');
select is(test.error_code_of($$select flowgres.database_server_add('pool-c', 'h', 1, 'postgresql://admin:hunter2@h/postgres')$$),
          'VALIDATION_FAILED', 'in URL form too');
select is(test.error_code_of($$select flowgres.database_server_add('pool-c', 'h''; drop table x; --', 1, 'host=h')$$),
          'VALIDATION_FAILED', 'a host carrying SQL is refused');
select is(test.error_code_of($$select flowgres.database_server_add('pool-c', 'h', 70000, 'host=h')$$), 'VALIDATION_FAILED',
          'ports are 1 to 65535');
select is(test.error_detail_of($$select flowgres.database_server_update('pool-a', '{"status": "gone", "colour": 1}')$$)
          -> 'details', '[{"field": "colour", "message": "is not a server setting (status, max_databases, host, port, admin_conninfo, admin_secret_ref)"}, {"field": "status", "message": "must be active or draining"}]'::jsonb,
          'every bad change is named');
select is(flowgres.database_server_update('pool-a', jsonb_build_object('admin_secret_ref', :'sealed')) ->> 'has_admin_secret', 'true',
          'an admin password is stored sealed');
select ok(flowgres.database_server_list()::text not like '%enc:v1%', 'and never listed');
select is(test.error_code_of($$select flowgres.database_server_update('pool-z', '{}')$$), 'DATABASE_SERVER_NOT_FOUND',
          'an unknown server is named as such');
select is(test.audit_count('00000000-0000-0000-0000-000000000000', 'database_server.add'), 2::bigint,
          'server changes are audited on the platform');

-- claims: workspace admins only; the operator alone pins a server
select is(test.error_code_of(format('select flowgres.workspace_database_get(%L)', :'ws')), 'WORKSPACE_DATABASE_NOT_FOUND',
          'no database before the first provision');
select test.act_as(:'member');
select is(test.error_code_of(format($$select flowgres.workspace_database_claim(%L, 'provision', 'p1')$$, :'ws')),
          'PERMISSION_DENIED', 'members do not provision');
select test.act_as(:'stranger');
select is(test.error_code_of(format($$select flowgres.workspace_database_claim(%L, 'provision', 'p1')$$, :'ws')),
          'WORKSPACE_NOT_FOUND', 'strangers do not see the workspace');
select test.act_as(:'owner');
select is(test.error_code_of(format($$select flowgres.workspace_database_claim(%L, 'provision', 'p1', 'pool-b')$$, :'ws')),
          'PERMISSION_DENIED', 'owners do not choose the server');
select is(test.error_code_of(format($$select flowgres.workspace_database_claim(%L, 'drop', 'p1')$$, :'ws')),
          'VALIDATION_FAILED', 'operations are provision and rotate_secret');
select is(test.error_code_of(format($$select flowgres.workspace_database_claim(%L, 'rotate_secret', 'p1')$$, :'ws')),
          'WORKSPACE_DATABASE_NOT_FOUND', 'nothing to rotate before a provision');
select flowgres.workspace_database_claim(:'ws', 'provision', 'p1') as work_order \gset
select is(:'work_order'::jsonb ->> 'db_name', 'ws_' || :'compact', 'the database is ws_<id>');
select is(:'work_order'::jsonb ->> 'db_user', 'wsu_' || :'compact', 'its role wsu_<id>');
select is(:'work_order'::jsonb -> 'server' ->> 'name', 'pool-a', 'placed on the first of the emptiest servers');
select is(:'work_order'::jsonb ->> 'previous_status', 'new', 'as a new database');
select is(flowgres.workspace_database_get(:'ws') ->> 'status', 'provisioning', 'provisioning while claimed');
select is(test.error_code_of(format($$select flowgres.workspace_database_claim(%L, 'provision', 'p2')$$, :'ws')),
          'PROVISION_IN_PROGRESS', 'a second provisioner waits for the first');
select is(flowgres.workspace_database_claim(:'ws', 'provision', 'p1') ->> 'claimant', 'p1', 'the holder may claim again');
select is(test.error_code_of(format($$select flowgres.workspace_database_claim(%L, 'rotate_secret', 'p1')$$, :'ws')),
          'STATE_CONFLICT', 'no rotation before the database is ready');
select is(test.error_code_of(format($$select flowgres.workspace_database_secret(%L)$$, :'ws')),
          'STATE_CONFLICT', 'no connection before the database is ready');
select test.act_as(:'stranger');
select is(flowgres.workspace_database_claim(:'ws2', 'provision', 'p9') -> 'server' ->> 'name', 'pool-b',
          'the next workspace goes to the emptier server');
select test.act_as(null);
select is(flowgres.workspace_database_claim(:'ws3', 'provision', 'p9', 'pool-b') -> 'server' ->> 'name', 'pool-b',
          'the operator pins a server');
select is(test.error_code_of(format($$select flowgres.workspace_database_claim(%L, 'provision', 'p9', 'pool-b')$$,
                                    test.home_of(test.new_user('wsdb-fourth@example.com')))),
          'NO_DATABASE_SERVER', 'a full server takes no more');

-- staging and reporting: only the holder
select test.act_as(:'owner');
select is(test.error_code_of(format($$select flowgres.workspace_database_stage_secret(%L, 'p2', %L)$$, :'ws', :'sealed')),
          'STATE_CONFLICT', 'only the holder stages a secret');
select is(test.error_code_of(format($$select flowgres.workspace_database_stage_secret(%L, 'p1', 'hunter2')$$, :'ws')),
          'VALIDATION_FAILED', 'and only a sealed one');
select is(flowgres.workspace_database_stage_secret(:'ws', 'p1', :'sealed') ->> 'status', 'provisioning', 'a staged secret');
select is(test.error_code_of(format($$select flowgres.workspace_database_report(%L, 'p1', '{"status": "ready"}')$$, :'ws')),
          'VALIDATION_FAILED', 'ready needs the secret');
select is(test.error_code_of(format($$select flowgres.workspace_database_report(%L, 'p1', '{"status": "done"}')$$, :'ws')),
          'VALIDATION_FAILED', 'ready or failed');
select flowgres.workspace_database_report(:'ws', 'p1',
       jsonb_build_object('status', 'ready', 'secret_ref', :'sealed', 'size_bytes', 7654321, 'attempts', 2)) as ready \gset
select is(:'ready'::jsonb ->> 'status', 'ready', 'reported ready');
select is(:'ready'::jsonb ->> 'secret_key_id', 'k1', 'with the key id it is sealed with');
select ok(:'ready'::text not like '%enc:v1%', 'never the sealed password');
select is(test.error_code_of(format($$select flowgres.workspace_database_report(%L, 'p1', '{"status": "failed"}')$$, :'ws')),
          'STATE_CONFLICT', 'a report ends the claim');
select is(flowgres.workspace_database_secret(:'ws') ->> 'secret_ref', :'sealed', 'the service reads the sealed password');
select is((select count(*) from flowgres.runtime_events where workspace_id = :'ws' and event_type = 'db.provision.succeeded'),
          1::bigint, 'a provision is an event');
select is(test.audit_count(:'ws', 'database.provision'), 2::bigint, 'each claim is audited');

-- rotation: a failed one leaves the database ready on its old password
select is(flowgres.workspace_database_claim(:'ws', 'rotate_secret', 'r1') ->> 'secret_ref', :'sealed', 'a rotation starts from the stored secret');
select is(flowgres.workspace_database_report(:'ws', 'r1', '{"status": "failed", "error": "server down"}') ->> 'status', 'ready',
          'a failed rotation leaves the database ready');
select is(flowgres.workspace_database_get(:'ws') ->> 'last_error', 'the last operation failed; the operator can see why',
          'its members learn it failed, not the provisioner''s text (it names servers and roles)');
select test.act_as(null);
select is(flowgres.workspace_database_get(:'ws') ->> 'last_error', 'server down', 'the operator reads the reason');
select test.act_as(:'owner');
select flowgres.workspace_database_claim(:'ws', 'rotate_secret', 'r1b');
select is(flowgres.workspace_database_report(:'ws', 'r1b', jsonb_build_object('status', 'failed', 'error', repeat('é', 3000)))
          ->> 'status', 'ready', 'a long reason in a multi-byte script is stored');
select is((select char_length(last_error) from flowgres.workspace_databases where workspace_id = :'ws'), 2000,
          'cut at 2000 characters, between two of them (a byte cut would be invalid UTF-8)');
select flowgres.workspace_database_claim(:'ws', 'rotate_secret', 'r2');
select is(flowgres.workspace_database_report(:'ws', 'r2', jsonb_build_object('status', 'ready', 'secret_ref', :'resealed'))
          ->> 'secret_rotated_at' is not null, true, 'a rotation records when');

-- migrations: the password stays, the schema version is recorded either way
select is(flowgres.workspace_database_claim(:'ws', 'migrate', 'm1') ->> 'operation', 'migrate', 'a migration claims the database');
select is(test.error_code_of(format($$select flowgres.workspace_database_report(%L, 'm1', '{"status": "ready", "schema_version": -1}')$$, :'ws')),
          'VALIDATION_FAILED', 'schema versions are numbers from 0');
select is(flowgres.workspace_database_report(:'ws', 'm1', '{"status": "ready", "schema_version": 2}') ->> 'schema_version', '2',
          'a migration records the version reached');
select is(flowgres.workspace_database_secret(:'ws') ->> 'secret_ref', :'resealed', 'and keeps the password');
select flowgres.workspace_database_claim(:'ws', 'rollback', 'm2');
select is(flowgres.workspace_database_report(:'ws', 'm2', '{"status": "failed", "error": "x", "schema_version": 1}')
          ->> 'schema_version', '1', 'a failed rollback records where it stopped');
select is((select count(*) from flowgres.runtime_events where workspace_id = :'ws' and event_type in ('db.migrated', 'db.rollback.failed')),
          2::bigint, 'each is an event');
select is(test.audit_count(:'ws', 'database.rollback'), 1::bigint, 'and audited');

-- backups: recorded by the claim's holder, listed to members without their location
select flowgres.workspace_database_claim(:'ws', 'backup', 'b1');
select flowgres.workspace_database_backup_record(:'ws', 'b1', jsonb_build_object(
       'status', 'completed', 'location', '/backups/' || :'ws' || '/1.dump', 'size_bytes', 1234, 'sha256', repeat('a', 64),
       'schema_version', 2, 'row_counts', '{"data.notes": 3}', 'started_at', now() - interval '2 seconds')) ->> 'id' as backup1 \gset
select is(test.error_code_of(format($$select flowgres.workspace_database_backup_record(%L, 'b2', '{"status": "completed"}')$$, :'ws')),
          'STATE_CONFLICT', 'only the claim''s holder records a backup');
select flowgres.workspace_database_report(:'ws', 'b1', '{"status": "ready"}');
select flowgres.workspace_database_claim(:'ws', 'backup', 'b3');
select flowgres.workspace_database_backup_record(:'ws', 'b3', jsonb_build_object(
       'status', 'completed', 'location', '/backups/' || :'ws' || '/2.dump', 'sha256', repeat('b', 64))) ->> 'id' as backup2 \gset
select flowgres.workspace_database_report(:'ws', 'b3', '{"status": "ready"}');
select test.act_as(:'member');
select is(jsonb_array_length(flowgres.workspace_database_backup_list(:'ws')), 2, 'members list the backups');
select ok(flowgres.workspace_database_backup_list(:'ws')::text not like '%/backups/%', 'without where the files are');
select test.act_as(null);
select is(flowgres.workspace_database_backup_get(:'ws', :'backup1') ->> 'location', '/backups/' || :'ws' || '/1.dump',
          'the service reads a backup''s location');
select is(test.error_code_of(format('select flowgres.workspace_database_backup_get(%L, %L)', :'ws2', :'backup1')),
          'BACKUP_NOT_FOUND', 'only for its own workspace');
select is(flowgres.workspace_database_backup_prune(:'ws', 1), jsonb_build_array('/backups/' || :'ws' || '/1.dump'),
          'pruning returns the files to delete, oldest first');
select is(test.error_code_of(format('select flowgres.workspace_database_backup_get(%L, %L)', :'ws', :'backup1')),
          'BACKUP_NOT_FOUND', 'a pruned backup cannot be restored');
select is(flowgres.workspace_databases_due_for_backup(60), '[]'::jsonb, 'a database backed up a moment ago is not due');
select ok(flowgres.workspace_databases_due_for_backup(1) is not null, 'the interval is the caller''s');
select ok(not has_column_privilege('flowgres_user', 'flowgres.workspace_database_backups', 'location', 'select'),
          'SQL users cannot select backup locations');

-- failures: rolled back or left for cleanup, and an event either way
select test.act_as(:'stranger');
select is(flowgres.workspace_database_report(:'ws2', 'p9', '{"status": "failed", "error": "disk full", "rolled_back": true}')
          ->> 'cleanup_pending', 'false', 'a rolled-back failure leaves nothing to clean');
select test.act_as(null);
select is(flowgres.workspace_database_report(:'ws3', 'p9', '{"status": "failed", "error": "connection refused"}')
          ->> 'cleanup_pending', 'true', 'one that could not roll back is marked for cleanup');
select is((select details - 'server' from flowgres.runtime_events where workspace_id = :'ws3' and event_type = 'db.provision.failed'
           and severity = 'error'), '{"attempts": 1, "rolled_back": false}'::jsonb,
          'a failed provision is a db.provision.failed event members may read: no error text in it');
select is(test.error_code_of(format($$select flowgres.workspace_database_claim(%L, 'provision', 'p10', 'pool-a')$$, :'ws3')),
          'STATE_CONFLICT', 'a half-made database is not moved to another server');
select is(test.error_code_of(format($$select flowgres.workspace_database_claim(%L, 'migrate', 'p10')$$, :'ws3')),
          'STATE_CONFLICT', 'nor migrated');

-- the storage quota comes first (seed §20.1)
select flowgres.workspace_quota_set(:'ws2', 'db_storage', '{"quota": 1048576}');
select is(test.error_code_of(format($$select flowgres.workspace_database_claim(%L, 'provision', 'p11')$$, :'ws2')),
          'QUOTA_EXCEEDED', 'a quota that cannot hold a database refuses one');

-- what members read
select test.act_as(:'member');
select is(flowgres.workspace_database_get(:'ws') ->> 'db_name', 'ws_' || :'compact', 'members see where the database is');
select test.act_as(:'stranger');
select is(test.error_code_of(format('select flowgres.workspace_database_get(%L)', :'ws')), 'WORKSPACE_NOT_FOUND',
          'strangers do not');
select test.act_as(null);
select ok(not has_column_privilege('flowgres_user', 'flowgres.workspace_databases', 'secret_ref', 'select'),
          'SQL users cannot select sealed passwords');
select ok(not has_function_privilege('flowgres_user', 'flowgres.workspace_database_claim(uuid, text, text, text, integer)', 'execute')
          and has_function_privilege('flowgres_service', 'flowgres.workspace_database_secret(uuid)', 'execute'),
          'claims and secrets are the service''s');

-- re-sealing after a master key rotation
select is(jsonb_array_length(flowgres.secret_refs_sealed_with_other_keys('k2')), 1, 'the server''s k1 secret needs re-sealing');
select is(flowgres.secret_ref_reseal('database_server', (select id from flowgres.database_servers where name = 'pool-a'),
                                     :'sealed', :'resealed'), true, 're-sealed when unchanged meanwhile');
select is(flowgres.secret_ref_reseal('database_server', (select id from flowgres.database_servers where name = 'pool-a'),
                                     :'sealed', :'resealed'), false, 'not when it changed');

-- per-app database roles: made and dropped under the workspace database's claim
select test.act_as(:'owner');
select flowgres.app_create(:'ws', 'Rolled', 'rolled') ->> 'id' as app \gset
select is(test.error_code_of(format($$select flowgres.app_database_role_begin(%L, 'owner', null, 'r9')$$, :'app')),
          'VALIDATION_FAILED', 'role types are read, write and admin');
select is(test.error_code_of(format($$select flowgres.app_database_role_begin(%L, 'read', now() - interval '1 hour', 'r9')$$, :'app')),
          'VALIDATION_FAILED', 'an expiry lies ahead');
select flowgres.app_database_role_begin(:'app', 'read', now() + interval '1 hour', 'r9') -> 'role' as role \gset
select is(:'role'::jsonb ->> 'status', 'creating', 'a role starts as creating, under the claim');
select is(test.error_code_of(format($$select flowgres.app_database_role_begin(%L, 'read', null, 'r10')$$, :'app')),
          'PROVISION_IN_PROGRESS', 'one piece of work on the database at a time');
select is(flowgres.app_database_role_report((:'role'::jsonb ->> 'id')::uuid, 'r9', jsonb_build_object('status', 'active', 'secret_ref', :'sealed'))
          ->> 'status', 'active', 'reported active with its sealed password');
select is(test.error_code_of(format($$select flowgres.app_database_role_report(%L, 'r9', '{"status": "revoked"}')$$, :'role'::jsonb ->> 'id')),
          'STATE_CONFLICT', 'a report needs the claim');
select test.act_as(:'member');
select ok(flowgres.app_database_role_list(:'app')::text not like '%enc:v1%', 'members list roles without passwords');
select is(test.error_code_of(format($$select flowgres.app_database_role_revoke_begin(%L, null, 'r11')$$, :'role'::jsonb ->> 'id')),
          'PERMISSION_DENIED', 'members do not revoke');
select test.act_as(null);
update flowgres.app_database_roles set expires_at = now() - interval '1 second' where id = (:'role'::jsonb ->> 'id')::uuid;
select is(flowgres.app_database_roles_expired(), jsonb_build_array(:'role'::jsonb ->> 'id'), 'an expired role is found by the sweep');
select is(flowgres.app_database_role_revoke_begin((:'role'::jsonb ->> 'id')::uuid, null, 'r12') -> 'role' ->> 'revoked_reason',
          'expired', 'the operator''s revocation of it says why');
select is(flowgres.app_database_role_report((:'role'::jsonb ->> 'id')::uuid, 'r12', '{"status": "revoked"}') ->> 'status',
          'revoked', 'and ends revoked');

-- data_written events: the service's, for executions that exist
select is(test.error_code_of($$select flowgres.execution_data_written('00000000-0000-0000-0000-000000000001', '{"table": "t", "rows": 1}')$$),
          'EXECUTION_NOT_FOUND', 'a data_written event needs its execution');
select ok(not has_function_privilege('flowgres_user', 'flowgres.execution_data_written(uuid, jsonb)', 'execute'),
          'and only the service records one');

select * from finish();
rollback;
