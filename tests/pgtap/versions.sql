-- Versions: semver, uniqueness, growth, immutability, list, get, diff.
begin;
select plan(22);

select test.new_user('writer@example.com') as writer \gset
select test.home_of(:'writer') as ws \gset
select test.act_as(:'writer');
select flowgres.app_create(:'ws', 'Versioned') ->> 'id' as app \gset

select flowgres.version_create(:'app', '1.0.0', '{"nodes": [{"id": "a", "type": "start"}, {"id": "b", "type": "output"}], "edges": [{"source": "a", "target": "b"}]}',
                               '{"layout": "grid"}', '{}', '{}', 'first') ->> 'id' as v1 \gset
select is((select version from flowgres.app_versions where id = :'v1'), '1.0.0', 'version_create stores the version');
select is(test.audit_count(:'ws', 'version.create'), 1::bigint, 'version.create is audited');
select is(test.error_code_of(format('select flowgres.version_create(%L, %L, %L)', :'app', '1.0.0', test.workflow())), 'VERSION_EXISTS', 'a version number is used once');
select is(test.error_code_of(format('select flowgres.version_create(%L, %L, %L)', :'app', '0.9.0', test.workflow())), 'VALIDATION_FAILED', 'versions must grow');
select is(test.error_code_of(format('select flowgres.version_create(%L, %L, %L)', :'app', 'v2', test.workflow())), 'VALIDATION_FAILED', 'non-semver versions are refused');
select is(test.error_code_of(format('select flowgres.version_create(%L, %L, %L)', :'app', '2.0.0', '[1, 2]')), 'VALIDATION_FAILED', 'a workflow must be an object');
select is(test.error_code_of(format('select flowgres.version_create(%L, %L, %L, %L)', :'app', '2.0.0', test.workflow(), '"text"')), 'VALIDATION_FAILED', 'a UI schema must be an object');
select is(test.error_code_of(format('select flowgres.version_create(%L, %L, null)', :'app', '2.0.0')), 'VALIDATION_FAILED', 'a NULL workflow is refused');
-- The workflow validator of core/ runs here: every problem, each with its node id.
select test.error_detail_of(format('select flowgres.version_create(%L, %L, %L)', :'app', '3.0.0',
    '{"nodes": [{"id": "s", "type": "start"}, {"id": "a", "type": "transform", "config": {"template": {"x": "{{ghost.y}}"}}},
                {"id": "b", "type": "delay", "config": {"duration_ms": 5}}, {"id": "o", "type": "output"}],
      "edges": [{"source": "s", "target": "a"}, {"source": "a", "target": "b"}, {"source": "b", "target": "a"}, {"source": "x", "target": "o"}]}')) as refusal \gset
select is(:'refusal'::jsonb ->> 'error_code', 'VALIDATION_FAILED', 'an invalid workflow is refused with VALIDATION_FAILED');
select ok((select count(*) from jsonb_array_elements(:'refusal'::jsonb -> 'details') problem
           where problem ->> 'node_id' in ('a', 'b') and problem ->> 'message' like '%cycle%') = 2
          and exists (select 1 from jsonb_array_elements(:'refusal'::jsonb -> 'details') problem
                      where problem ->> 'field' = 'workflow.edges[3].source'),
          'every problem is listed, each with its node id or field');
select flowgres.app_create(:'ws', 'Graph checks') ->> 'id' as graph_app \gset
select is(test.error_detail_of(format('select flowgres.version_create(%L, %L, %L, %L)', :'graph_app', '0.1.0', test.workflow(),
    '{"blocks": [{"type": "card", "props": {"innerHTML": "<img src=x onerror=alert(1)>"}}, {"type": "input", "id": "stray"}]}'))
          -> 'details' @> '[{"field": "ui_schema.blocks[0].props.innerHTML"}, {"field": "ui_schema.input_mapping.stray"}]',
          true, 'UI schemas with HTML-capable properties or fields feeding no input are refused, every problem listed');
select is((select count(*) from flowgres.app_versions where app_id = :'graph_app'), 0::bigint, 'and nothing is stored');
select is(test.error_code_of(format('select flowgres.version_create(%L, %L, %L)', :'graph_app', '1.0.0',
    '{"nodes": [{"id": "s", "type": "start", "data": {"inputs": [{"name": "q"}]}}, {"id": "o", "type": "output", "config": {"value": "{{q}} {{s.q}}"}}],
      "edges": [{"source": "s", "target": "o"}]}')), 'ok', 'a workflow whose references resolve is accepted');
select is(test.error_code_of(format('select flowgres.version_create(%L, %L, %L)', :'app', '2.0.0', jsonb_build_object('blob', repeat('x', 1100000)))), 'VALIDATION_FAILED', 'documents over 1 MiB are refused');

select flowgres.version_create(:'app', '1.1.0-beta.1', '{"nodes": [{"id": "a", "type": "start"}, {"id": "b", "type": "output", "label": "Out"}, {"id": "c", "type": "end"}], "edges": [{"source": "a", "target": "b"}, {"source": "a", "target": "c"}]}',
                               '{"layout": "grid"}') ->> 'id' as v2 \gset
select is(test.error_code_of(format('update flowgres.app_versions set changelog = %L where id = %L', 'edited', :'v1')), 'VERSION_IMMUTABLE', 'a stored version cannot be edited, even by a superuser');

select is(jsonb_array_length(flowgres.version_list(:'app')), 2, 'version_list lists both');
select is((flowgres.version_list(:'app')) -> 0 ->> 'version', '1.1.0-beta.1', 'newest first');
select is((flowgres.version_get(:'v1')) ->> 'changelog', 'first', 'version_get returns the documents');

select is((flowgres.version_diff(:'v1', :'v2')) -> 'changed_fields', '["workflow", "changelog"]'::jsonb, 'diff names the changed fields');
select is((flowgres.version_diff(:'v1', :'v2')) -> 'workflow_nodes', '{"added": ["c"], "removed": [], "changed": ["b"]}'::jsonb, 'and the nodes added, removed and changed');

select test.new_user('stranger@example.com') as stranger \gset
select test.act_as(:'stranger');
select is(test.error_code_of(format('select flowgres.version_get(%L)', :'v1')), 'VERSION_NOT_FOUND', 'another tenant''s version does not exist for the actor');
select flowgres.app_create(test.home_of(:'stranger'), 'Theirs') ->> 'id' as their_app \gset
select flowgres.version_create(:'their_app', '1.0.0', test.workflow()) ->> 'id' as their_version \gset
select test.act_as(null);
select is(test.error_code_of(format('select flowgres.version_diff(%L, %L)', :'v1', :'their_version')), 'VALIDATION_FAILED', 'versions of two apps are not diffed');

select * from finish();
rollback;
