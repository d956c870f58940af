// workflow_validate: the validators of core/ on their own, for editors that check a draft
// before saving it (README "Workflows and executions"). Pure: no actor, no tables, the same rules as version_create.
#include "boundary.hpp"
#include "flowgres/json.hpp"
#include "flowgres/ui_schema.hpp"
#include "flowgres/workflow.hpp"
#include "functions.hpp"

namespace flowgres {

SqlValue workflow_validate(CallArgs &args) {
    std::string workflow_json = args.required_jsonb(0, "workflow");
    std::string ui_schema_json = args.jsonb(1).value_or("{}");
    Json document = parse_json(workflow_json, "workflow");
    Json ui_schema = parse_json(ui_schema_json, "ui_schema");

    workflow::Problems problems = workflow::validate_workflow(document.get());
    workflow::Problems ignored;
    workflow::Workflow parsed = workflow::parse_workflow(document.get(), ignored);
    std::vector<workflow::Port> start_inputs = parsed.start_inputs();
    for (const auto &problem : ui::validate_ui_schema(ui_schema.get(), start_inputs))
        problems.add("", problem.field == "ui_schema" ? "ui_schema" : "ui_schema." + problem.field, problem.message);

    ui::Problems ui_problems;
    ui::UiSchema ui = ui::parse_ui_schema(ui_schema.get(), ui_problems);
    std::string order = "[";
    if (problems.empty())
        for (const auto &id : workflow::topological_order(parsed))
            order += (order.size() > 1 ? "," : "") + json_quote(id);
    order += "]";
    return SqlValue::jsonb(
        "{\"valid\":" + std::string(problems.empty() ? "true" : "false") + ",\"problems\":" + problems.to_json() +
        ",\"input_mapping\":" + ui::map_inputs(ui, start_inputs).to_json() + ",\"order\":" + order + "}");
}

}  // namespace flowgres
