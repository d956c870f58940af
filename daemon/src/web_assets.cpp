// Loading web/ and filling the page shell (see web_assets.hpp).
#include "web_assets.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "flowgres/crypto.hpp"

#ifndef FLOWGRES_WEB_DIR
#define FLOWGRES_WEB_DIR "web"
#endif

namespace flowgres::daemon {
namespace {

// The files served, and their types. page.html is the shell, not served as is.
constexpr std::pair<const char *, const char *> kServed[] = {
    {"page.js", "text/javascript; charset=utf-8"},
    {"render.js", "text/javascript; charset=utf-8"},
    {"markdown.js", "text/javascript; charset=utf-8"},
    {"chart.js", "text/javascript; charset=utf-8"},
    {"page.css", "text/css; charset=utf-8"},
};

std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path + " (set web_dir to the directory of the page's files)");
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

}  // namespace

std::shared_ptr<const WebAssets> WebAssets::load(const std::string &directory) {
    std::string root = directory.empty() ? FLOWGRES_WEB_DIR : directory;
    auto assets = std::make_shared<WebAssets>();
    std::string all;
    for (const auto &[name, type] : kServed) {
        WebAsset asset{read_file(root + "/" + name), type, ""};
        asset.etag = "\"" + sha256_hex(asset.body).substr(0, 20) + "\"";
        all += asset.etag;
        assets->files_.emplace(name, std::move(asset));
    }
    assets->shell_ = read_file(root + "/page.html");
    assets->version_ = sha256_hex(all + assets->shell_).substr(0, 12);
    return assets;
}

const WebAsset *WebAssets::find(std::string_view name) const {
    auto found = files_.find(name);
    return found == files_.end() ? nullptr : &found->second;
}

std::string WebAssets::render_page(const PageFill &fill) const {
    const std::map<std::string_view, std::string> values = {
        {"lang", html_escape(fill.lang)},
        {"title", html_escape(fill.title)},
        {"description", html_escape(fill.description)},
        {"image_url", html_escape(fill.image_url)},
        {"robots", fill.noindex ? "noindex, nofollow" : "index, follow"},
        {"mode", fill.embed ? "embed" : "page"},
        {"version", version_},
        {"boot", script_data_escape(fill.boot_json)},
    };
    // One pass over the shell: a value is never scanned again, so text that looks like a
    // placeholder ("{{boot}}" as a title) stays text.
    std::string page;
    std::istringstream lines(shell_);
    for (std::string line; std::getline(lines, line);) {
        if (fill.image_url.empty() && line.find("{{image_url}}") != std::string::npos) continue;
        size_t at = 0;
        for (size_t open; (open = line.find("{{", at)) != std::string::npos;) {
            size_t close = line.find("}}", open);
            if (close == std::string::npos) break;
            auto value = values.find(std::string_view(line).substr(open + 2, close - open - 2));
            page.append(line, at, open - at);
            if (value != values.end()) page += value->second;
            else page.append(line, open, close + 2 - open);
            at = close + 2;
        }
        page.append(line, at);
        page += "\n";
    }
    return page;
}

std::string html_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string script_data_escape(std::string_view json) {
    std::string out;
    out.reserve(json.size());
    for (size_t i = 0; i < json.size(); i++) {
        char c = json[i];
        if (c == '<') out += "\\u003c";
        else if (c == '>') out += "\\u003e";
        else if (c == '&') out += "\\u0026";
        else if (c == '\xE2' && i + 2 < json.size() && json[i + 1] == '\x80' && (json[i + 2] == '\xA8' || json[i + 2] == '\xA9')) {
            out += json[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace flowgres::daemon
