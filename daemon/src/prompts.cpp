// Prompt templates (prompts.hpp).
#include "prompts.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#ifndef FLOWGRES_PROMPTS_DIR
#define FLOWGRES_PROMPTS_DIR "daemon/prompts"
#endif

namespace flowgres::daemon {

std::shared_ptr<const Prompts> Prompts::load(const std::string &directory) {
    auto prompts = std::make_shared<Prompts>();
    std::string root = directory.empty() ? FLOWGRES_PROMPTS_DIR : directory;
    for (const char *name : {"app_generation", "version_edit", "repair"}) {
        std::string path = root + "/" + name + ".txt";
        std::ifstream in(path, std::ios::binary);
        if (!in) throw std::runtime_error("cannot read " + path + " (set prompts_dir to the directory of the prompt templates)");
        std::stringstream text;
        text << in.rdbuf();
        prompts->templates_[name] = text.str();
    }
    return prompts;
}

std::string Prompts::fill(const std::string &name, const std::map<std::string, std::string> &values) const {
    auto found = templates_.find(name);
    if (found == templates_.end()) return "";
    std::string out;
    const std::string &text = found->second;
    size_t at = 0;
    while (at < text.size()) {
        size_t open = text.find("{{", at);
        if (open == std::string::npos) break;
        size_t close = text.find("}}", open + 2);
        if (close == std::string::npos) break;
        out.append(text, at, open - at);
        auto value = values.find(text.substr(open + 2, close - open - 2));
        out += value != values.end() ? value->second : text.substr(open, close + 2 - open);
        at = close + 2;
    }
    out.append(text, at, std::string::npos);
    return out;
}

}  // namespace flowgres::daemon
