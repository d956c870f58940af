// The prompt templates the daemon sends models (daemon/prompts/, one reviewed file each): read
// once at start-up; fill() puts values where a template names them between double braces.
// Not for: workflow templates (the llm step renders its own prompts with core/template).
#pragma once

#include <map>
#include <memory>
#include <string>

namespace flowgres::daemon {

class Prompts {
public:
    // Reads app_generation.txt, version_edit.txt and repair.txt from `directory` ("" → the
    // source tree's daemon/prompts). Throws std::runtime_error naming a missing file.
    static std::shared_ptr<const Prompts> load(const std::string &directory);
    // The template `name` with each {{key}} replaced by its value (others left as they are).
    std::string fill(const std::string &name, const std::map<std::string, std::string> &values) const;

private:
    std::map<std::string, std::string> templates_;
};

}  // namespace flowgres::daemon
