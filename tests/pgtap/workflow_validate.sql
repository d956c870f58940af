-- workflow_validate: the core/ validators on their own, without saving anything.
begin;
select plan(6);

select is(flowgres.workflow_validate(test.workflow()) -> 'valid', 'true'::jsonb, 'the minimal workflow is valid');
select is(flowgres.workflow_validate(test.workflow()) -> 'order', '["start", "out"]'::jsonb, 'and comes with its run order');

select flowgres.workflow_validate(
    '{"nodes": [{"id": "s", "type": "start"}, {"id": "c", "type": "condition", "config": {"operator": "gt", "left": "{{nowhere}}"}},
                {"id": "o", "type": "output"}],
      "edges": [{"source": "s", "target": "c"}, {"source": "c", "target": "o"}]}',
    '{"blocks": [{"type": "input", "id": "q"}], "result_view": {"type": "iframe"}}') as verdict \gset
select is(:'verdict'::jsonb -> 'valid', 'false'::jsonb, 'a broken workflow is not valid');
select ok(:'verdict'::jsonb -> 'problems' @> '[{"node_id": "c", "field": "nodes[1].config.right"},
                                               {"node_id": "c", "field": "edges[1].sourceHandle"},
                                               {"node_id": "c", "field": "nodes[1].config.left"},
                                               {"field": "ui_schema.result_view.type"},
                                               {"field": "ui_schema.input_mapping.q"}]',
          'every problem of both documents is listed with its node id and field');
select is(:'verdict'::jsonb -> 'input_mapping', '{"mapped": [], "missing": [], "duplicate": [], "unmapped": ["q"]}', 'with the input mapping');
select is(test.error_code_of($$select flowgres.workflow_validate(null)$$), 'VALIDATION_FAILED', 'a NULL workflow is refused');

select * from finish();
rollback;
