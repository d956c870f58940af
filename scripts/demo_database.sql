-- The demo's database app, loaded once by `make run` after the demo workspace has its own
-- database: "guestbook", whose version 1.0.0 declares a table in its db_schema and whose
-- workflow writes a row there and reads the newest back (db_insert, then db_select). run.sh
-- then submits, approves and applies that schema change, and publishes the app.
-- Run as the operator (a superuser); acts as the demo user through flowgres.actor.
\set ON_ERROR_STOP 1
begin;
select id as demo_user_id from flowgres.users where email = 'demo@flowgres.dev' \gset
select set_config('flowgres.actor', :'demo_user_id', true);
select id as workspace_id from flowgres.workspaces where slug = 'demo' \gset
select (flowgres.app_create(:'workspace_id', 'Guestbook', 'guestbook', 'Signs a guestbook kept in the workspace''s own database.'))
    ->> 'id' as app_id \gset
select flowgres.version_create(:'app_id', '1.0.0',
    '{"nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"key": "name", "type": "string"}, {"key": "message", "type": "string"}]}},
                {"id": "sign", "type": "db_insert", "config": {"table": "entries", "values": {"name": "{{start.name}}", "message": "{{start.message}}"}}},
                {"id": "latest", "type": "db_select", "config": {"table": "entries", "columns": ["name", "message", "signed_at"],
                                                                  "order_by": [{"column": "id", "direction": "desc"}], "limit": 10}},
                {"id": "output", "type": "output", "data": {"config": {"value": "{{latest.rows}}"}}}],
      "edges": [{"source": "start", "target": "sign"}, {"source": "sign", "target": "latest"}, {"source": "latest", "target": "output"}]}',
    '{"schema_version": "1.0.0", "layout": "single_column",
      "blocks": [{"id": "main_form", "type": "form",
                  "children": [{"id": "name", "type": "input", "input_key": "name", "label": "Your name",
                                "validation": {"required": true, "max": 100}},
                               {"id": "message", "type": "input", "input_key": "message", "label": "A message",
                                "validation": {"required": true, "max": 500}}]}],
      "actions": [{"id": "submit", "type": "submit", "label": "Sign"}],
      "result_view": {"type": "table"}}',
    '{"tables": [{"name": "entries",
                  "columns": [{"name": "id", "type": "bigint", "identity": true, "primary_key": true},
                              {"name": "name", "type": "varchar(100)", "nullable": false},
                              {"name": "message", "type": "text", "nullable": false},
                              {"name": "signed_at", "type": "timestamptz", "nullable": false, "default": {"expression": "now()"}}],
                  "indexes": [{"columns": ["signed_at"]}]}]}',
    '{}', 'First version');
commit;
