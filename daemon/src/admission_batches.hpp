// Admissions of the public runtime go to the database in batches (README "Runtime executes"):
// the requests that arrive while a worker's admissions are being decided wait for them and
// then leave together (group_commit.hpp), as one call of flowgres.runtime_admit_batch (which
// admits each request as runtime_admit_json does), in one transaction. Each statement the server
// runs costs it a bind, an execution, an answer and a commit of its own, whatever it does; a
// batch pays those once.
//
// Each request keeps its own answer. When the statement fails as a whole (one admission
// raised an error, a lock wait timed out), the batch's requests are admitted again one by one,
// so that only the one at fault gets the error. What they counted in shared memory before the
// failure (rate limit windows, anomaly windows) stays counted: such a request counts twice.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "flowgres/json.hpp"
#include "group_commit.hpp"
#include "metrics.hpp"
#include "pg/pool.hpp"

namespace flowgres::daemon {

class AdmissionBatches {
public:
    // One admission's outcome: the decision (runtime_admit's answer), or, when it is null, the
    // statement's failure (sql_error with its SQLSTATE, or unavailable).
    using Done = std::function<void(pg::JobResult &&failure, Json decision)>;

    AdmissionBatches(pg::Pool &pool, WorkerMetrics &metrics, size_t max_batch, size_t max_in_flight)
        : pool_(pool), metrics_(metrics), batches_(max_batch, max_in_flight, [this](auto batch) { send(std::move(batch)); }) {}

    // `request`: runtime_admit's request, as JSON text.
    void admit(std::string request, Done done);

private:
    struct Pending {
        std::string request;
        Done done;
        std::chrono::steady_clock::time_point asked = std::chrono::steady_clock::now();
    };

    void send(std::vector<Pending> batch);

    pg::Pool &pool_;
    WorkerMetrics &metrics_;
    GroupCommit<Pending> batches_;
};

}  // namespace flowgres::daemon
