// Apps from a prompt and new versions from an instruction (app_generation.cpp says how): a
// model is asked for the app document, its answers validated and repaired, the app or
// version made when one passes.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "run_preparation.hpp"
#include "worker_context.hpp"

namespace flowgres::daemon {

class AppGeneration {
public:
    AppGeneration(WorkerContext &worker, RunPreparation &preparation) : worker_(worker), preparation_(preparation) {}

    // POST /api/v1/workspaces/{id}/apps/from-ai and POST /api/v1/apps/{id}/versions/from-ai.
    void run(std::shared_ptr<Call> call);

private:
    struct Job;

    void ask_model(std::shared_ptr<Job> job);
    void check_answer(std::shared_ptr<Job> job, std::string text);
    // The model calls so far, metered in a transaction of their own; then `then`.
    void record_usage(std::shared_ptr<Job> job, std::function<void()> then);
    void end(std::shared_ptr<Job> job, ErrorCode code, const std::string &message, const std::string &details);

    WorkerContext &worker_;
    RunPreparation &preparation_;
};

}  // namespace flowgres::daemon
