-- The demo `make run` loads once: a user, their workspace "demo", and a published app "hello".
-- Run as the operator (a superuser); acts as the demo user through flowgres.actor.
\set ON_ERROR_STOP 1
begin;
select (flowgres.user_create('demo@flowgres.dev', 'Demo User')) ->> 'user' as demo_user \gset
select (:'demo_user'::jsonb) ->> 'id' as demo_user_id \gset
select set_config('flowgres.actor', :'demo_user_id', true);
select id as workspace_id from flowgres.workspaces where owner_user_id = :'demo_user_id'::uuid \gset
select flowgres.workspace_update(:'workspace_id', '{"slug": "demo", "name": "Demo"}');
select (flowgres.app_create(:'workspace_id', 'Hello', 'hello', 'Greets whoever fills in the form.')) ->> 'id' as app_id \gset
select flowgres.version_create(:'app_id', '1.0.0',
    '{"nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"key": "name", "type": "string"}]}},
                {"id": "greet", "type": "transform", "data": {"config": {"template": {"greeting": "hello {{start.name}}"}}}},
                {"id": "output", "type": "output", "data": {"config": {"value": "{{greet.greeting}}"}}}],
      "edges": [{"source": "start", "target": "greet"}, {"source": "greet", "target": "output"}]}',
    '{"schema_version": "1.0.0", "layout": "single_column",
      "blocks": [{"id": "main_form", "type": "form",
                  "children": [{"id": "name", "type": "input", "input_key": "name", "label": "Your name",
                                "validation": {"required": true, "max": 100}}]}],
      "actions": [{"id": "submit", "type": "submit", "label": "Greet me"}],
      "result_view": {"type": "text"}}',
    '{}', '{}', 'First version');
select flowgres.app_publish(:'app_id', null, '{"access_mode": "public_anonymous"}');
commit;
