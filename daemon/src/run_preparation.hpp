// What a run needs from the control plane before it starts: the secrets its credential fields
// reference, the routes to its llm steps' models and the output safety rules, read in one
// round trip and opened with the master keys (run_preparation.cpp says how).
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "executor/engine.hpp"
#include "worker_context.hpp"

namespace flowgres::daemon {

class RunPreparation {
public:
    using Prepared = std::function<void(std::shared_ptr<const executor::RunSecrets>,
                                        std::shared_ptr<const llm::RunModels>,
                                        std::shared_ptr<const safety::RuleSet>)>;

    explicit RunPreparation(WorkerContext &worker) : worker_(worker) {}

    // Reads and opens them (a trial or queued run, app generation); `done` always runs.
    void prepare(const std::string &workspace_id, const std::set<std::string> &secret_names,
                 const std::set<std::string> &model_names, Prepared done);
    // The same from documents already read ({"secrets", "routes", "safety_rules"}: a visitor's
    // run gets them with its admission).
    void open(const std::string &workspace_id, const std::set<std::string> &secret_names,
              const std::set<std::string> &model_names, const json_t *preparation, const Prepared &done) const;

private:
    WorkerContext &worker_;
};

}  // namespace flowgres::daemon
