// The batches of run_recorder.hpp.
#include "run_recorder.hpp"

#include "worker_context.hpp"
#include "flowgres/json.hpp"

namespace flowgres::daemon {

namespace {
// Text: the function reads the runs once (as json, PostgreSQL would check them first).
constexpr const char *kRecord = "select flowgres.executions_record_framed($1::text)";

pg::JobResult failed(const char *sqlstate, std::string message) {
    pg::JobResult result;
    result.outcome = pg::JobResult::Outcome::sql_error;
    result.sqlstate = sqlstate;
    result.message = std::move(message);
    return result;
}

// A run's error object {error_code, sqlstate, message} as its statement's error.
pg::JobResult run_error(std::string_view document) {
    const char *sqlstate = nullptr, *message = nullptr;
    Json error;
    try {
        error = parse_json(std::string(document), "a run's error");
        sqlstate = json_string_value(json_object_get(error.get(), "sqlstate"));
        message = json_string_value(json_object_get(error.get(), "message"));
    } catch (const Error &) {
    }
    return failed(sqlstate ? sqlstate : "XX000", message ? message : "the run could not be recorded");
}
}  // namespace

std::vector<pg::JobResult> read_recorded_runs(std::string_view answer, size_t runs) {
    std::vector<pg::JobResult> results;
    size_t at = 0;
    while (results.size() < runs && at < answer.size()) {
        // <E|X><length in bytes>:<document>
        char kind = answer[at];
        size_t colon = answer.find(':', at + 1);
        if ((kind != 'E' && kind != 'X') || colon == std::string_view::npos || colon == at + 1 || colon - at - 1 > 12)
            break;
        size_t length = 0;
        bool digits = true;
        for (size_t i = at + 1; i < colon; i++) {
            digits = digits && answer[i] >= '0' && answer[i] <= '9';
            length = length * 10 + static_cast<size_t>(answer[i] - '0');
        }
        if (!digits || length > answer.size() - colon - 1) break;
        std::string_view document = answer.substr(colon + 1, length);
        if (kind == 'E') {
            pg::JobResult result;
            result.values.emplace_back(std::string(document));
            results.push_back(std::move(result));
        } else {
            results.push_back(run_error(document));
        }
        at = colon + 1 + length;
    }
    if (results.size() == runs && at == answer.size()) return results;
    return std::vector<pg::JobResult>(runs, failed("XX000", "the record's answer could not be read"));
}

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
            std::vector<pg::JobResult> answers = read_recorded_runs(result.values.back().value_or(""), batch.size());
            auto now = std::chrono::steady_clock::now();
            for (size_t i = 0; i < batch.size(); i++) {
                metrics_.observe_run_record_wait(std::chrono::duration<double>(now - batch[i].asked).count());
                batch[i].done(std::move(answers[i]));
            }
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
