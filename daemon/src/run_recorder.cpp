// The batches of run_recorder.hpp.
#include "run_recorder.hpp"

#include "worker_context.hpp"
#include "flowgres/json.hpp"

namespace flowgres::daemon {

namespace {
constexpr const char *kRecord = "select flowgres.executions_record($1::json)::text";

pg::JobResult run_answer(const json_t *answer) {
    pg::JobResult result;
    if (const json_t *execution = json_object_get(answer, "execution")) {
        result.values.push_back(dump_json(execution));
        return result;
    }
    const json_t *error = json_object_get(answer, "error");
    result.outcome = pg::JobResult::Outcome::sql_error;
    const char *sqlstate = json_string_value(json_object_get(error, "sqlstate"));
    const char *message = json_string_value(json_object_get(error, "message"));
    result.sqlstate = sqlstate ? sqlstate : "XX000";
    result.message = message ? message : "the run could not be recorded";
    return result;
}
}  // namespace

void RunRecorder::record(std::string run, Done done) { batches_.add(Pending{std::move(run), std::move(done)}); }

void RunRecorder::write(std::vector<Pending> batch) {
    std::string runs = "[";
    for (const Pending &pending : batch) runs += (runs.size() > 1 ? "," : "") + pending.run;
    runs += "]";
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kActAsOperator, {}});
    statements.push_back(pg::Statement{kRecord, {std::move(runs)}});
    auto held = std::make_shared<std::vector<Pending>>(std::move(batch));
    pool_.run(std::move(statements), [this, held](pg::JobResult &&result) {
        std::vector<Pending> &batch = *held;
        if (result.outcome == pg::JobResult::Outcome::ok) {
            metrics_.count_run_record(batch.size());
            Json answer = parse_json(result.values.back().value_or("{}"), "recorded runs");
            const json_t *runs = json_object_get(answer.get(), "runs");
            for (size_t i = 0; i < batch.size(); i++) batch[i].done(run_answer(json_array_get(runs, i)));
        } else if (result.outcome == pg::JobResult::Outcome::sql_error && batch.size() > 1) {
            // Someone's data (a constraint, invalid text): each run on its own finds whose.
            batches_.resend_alone(std::move(batch));
        } else {
            for (Pending &pending : batch) {
                pg::JobResult copy = result;
                pending.done(std::move(copy));
            }
        }
        batches_.answered();
    });
}

}  // namespace flowgres::daemon
