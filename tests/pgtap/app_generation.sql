-- Apps from a prompt (0.15), the extension's half: a generated document checked by the
-- validators versions use, and turned into an app with its draft version in one transaction.
begin;
select plan(12);

select test.new_user('gen-owner@example.com') as owner \gset
select test.home_of(:'owner') as ws \gset
select test.new_user('gen-outsider@example.com') as outsider \gset

\set good '{"app_metadata": {"name": "Greeter", "slug": "greeter", "description": "Says hello."}, "workflow_definition": {"nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"name": "name"}]}}, {"id": "out", "type": "output", "config": {"value": "hello {{name}}"}}], "edges": [{"source": "start", "target": "out"}]}, "ui_schema": {"blocks": [{"id": "f", "type": "form", "children": [{"id": "name", "type": "input", "input_key": "name", "label": "Name"}]}]}, "db_schema": null, "access_policy": {"access_mode": "public_anonymous"}}'

select test.act_as(:'owner');
select is(flowgres.app_document_problems(:'good'), '{"valid": true, "problems": []}'::jsonb, 'a sound document passes');
select is((flowgres.app_document_problems('{"app_metadata": {"name": ""}, "workflow_definition": {"nodes": [], "edges": []},
          "ui_schema": {"blocks": [{"id": "x", "type": "script"}]}, "db_schema": {"tables": "no"},
          "access_policy": {"access_mode": "everyone"}, "surprise": 1}') -> 'valid')::boolean, false, 'a broken one does not');
select ok((select array_agg(distinct split_part(p ->> 'field', '.', 1)) from jsonb_array_elements(flowgres.app_document_problems(
          '{"app_metadata": {"name": ""}, "workflow_definition": {"nodes": [], "edges": []}, "db_schema": {"tables": "no"},
            "access_policy": {"access_mode": "everyone"}, "surprise": 1}') -> 'problems') p)
          @> array['app_metadata', 'workflow', 'db_schema', 'access_policy', 'surprise'], 'every member''s problems are listed');
select is(flowgres.app_document_problems('"text"') ->> 'valid', 'false', 'a document that is not an object fails');

select flowgres.app_create_generated(:'ws', :'good', '{"model": "m", "attempts": 2, "prompt_characters": 12}') as made \gset
select is(:'made'::jsonb -> 'app' ->> 'status', 'draft', 'the app is a draft');
select is(:'made'::jsonb -> 'version' ->> 'version', '0.1.0', 'with version 0.1.0');
select is(:'made'::jsonb -> 'app' -> 'access_policy' ->> 'access_mode', 'public_anonymous', 'under the proposed policy');
select is((select metadata ->> 'attempts' from flowgres.audit_logs where action = 'app.generate'), '2', 'audited with its attempts');
select flowgres.app_create_generated(:'ws', :'good') -> 'app' ->> 'slug' as second_slug \gset
select isnt(:'second_slug'::text, 'greeter'::text, 'a proposed slug in use is not taken over');
select is(test.error_code_of(format($$select flowgres.app_create_generated(%L, '{"app_metadata": {"name": "x"}}')$$, :'ws')),
          'VALIDATION_FAILED', 'an unchecked document is refused');

select test.act_as(:'outsider');
select is(test.error_code_of(format('select flowgres.app_create_generated(%L, %L)', :'ws', :'good')), 'WORKSPACE_NOT_FOUND',
          'an outsider creates nothing');
select is(test.error_code_of(format('select flowgres.app_generation_begin(%L)', :'ws')), 'WORKSPACE_NOT_FOUND',
          'nor begins a generation');

select * from finish();
rollback;
