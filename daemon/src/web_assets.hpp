// The public app page's files (web/): read once at start-up, served from memory under
// /assets/{name} with an ETag, and the HTML shell the runtime fills per app (title, SEO,
// the boot data the page's script starts from). Nothing here builds markup from visitor
// or app text except through html_escape and script_data_escape.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace flowgres::daemon {

struct WebAsset {
    std::string body;
    std::string content_type;
    std::string etag;  // "\"<sha-256 prefix>\""
};

// What one page answer puts into the shell.
struct PageFill {
    std::string lang = "en";
    std::string title;
    std::string description;
    std::string image_url;  // "" leaves the og:image line out
    bool noindex = false;
    bool embed = false;
    std::string boot_json;  // the JSON the script reads from #flowgres-boot
};

class WebAssets {
public:
    // Reads every served file of `directory` ("" → the source tree's web/). Throws
    // std::runtime_error naming a missing file.
    static std::shared_ptr<const WebAssets> load(const std::string &directory);

    // nullptr for anything not served (names are matched exactly: no paths, no dot-dot).
    const WebAsset *find(std::string_view name) const;
    std::string render_page(const PageFill &fill) const;
    // Changes whenever a file does: the shell links assets with ?v=<version>.
    const std::string &version() const { return version_; }

private:
    std::map<std::string, WebAsset, std::less<>> files_;
    std::string shell_;
    std::string version_;
};

// &, <, >, " and ' as character references.
std::string html_escape(std::string_view text);
// JSON made safe inside <script type="application/json">: <, >, & and the two JavaScript
// line separators become \u escapes, so no text can close the element.
std::string script_data_escape(std::string_view json);

}  // namespace flowgres::daemon
