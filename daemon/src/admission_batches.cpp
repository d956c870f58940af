// The batches of admission_batches.hpp.
#include "admission_batches.hpp"

#include <memory>

namespace flowgres::daemon {

namespace {
// Admission acts as the operator, and a refusal's or a read's session and events need not wait
// for the disk (an execution's outcome commits durably at its end, which covers its admission
// too). The statement makes both settings itself, in its FROM clause, which is evaluated before
// the calls: one statement per batch rather than two.
constexpr const char *kSettings =
    "(select set_config('flowgres.actor', 'operator', true), set_config('synchronous_commit', 'off', true)) as settings";
// The requests as one JSON array, their answers in order as another (runtime_admit_batch reads
// the text once: a json argument would be checked by PostgreSQL's parser first).
const std::string kAdmit = std::string("select flowgres.runtime_admit_batch($1::text)::text from ") + kSettings;
}  // namespace

void AdmissionBatches::admit(std::string request, Done done) { batches_.add(Pending{std::move(request), std::move(done)}); }

void AdmissionBatches::send(std::vector<Pending> batch) {
    std::string requests = "[";
    for (const Pending &pending : batch) requests += (requests.size() > 1 ? "," : "") + pending.request;
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kAdmit, {requests + "]"}});
    metrics_.count_admission_batch(batch.size());
    auto held = std::make_shared<std::vector<Pending>>(std::move(batch));
    pool_.run(std::move(statements), [this, held](pg::JobResult &&result) {
        std::vector<Pending> &batch = *held;
        if (result.outcome == pg::JobResult::Outcome::ok) {
            Json answer = parse_json(result.values.back().value_or("null"), "admission");
            auto now = std::chrono::steady_clock::now();
            for (size_t i = 0; i < batch.size(); i++) {
                metrics_.observe_admission_wait(std::chrono::duration<double>(now - batch[i].asked).count());
                json_t *decision = json_array_get(answer.get(), i);
                if (json_is_object(decision) && json_is_string(json_object_get(decision, "decision"))) {
                    batch[i].done(pg::JobResult{}, Json(json_incref(decision)));
                    continue;
                }
                pg::JobResult missing;
                missing.outcome = pg::JobResult::Outcome::sql_error;
                missing.sqlstate = "XX000";
                missing.message = "the admission answered no decision for this request";
                batch[i].done(std::move(missing), Json());
            }
        } else if (result.outcome == pg::JobResult::Outcome::sql_error && batch.size() > 1) {
            // One request's admission failed the statement: each on its own finds whose.
            metrics_.count_admission_batch_retry();
            batches_.resend_alone(std::move(batch));
        } else {
            for (Pending &pending : batch) {
                pg::JobResult copy = result;
                pending.done(std::move(copy), Json());
            }
        }
        batches_.answered();
    });
}

}  // namespace flowgres::daemon
