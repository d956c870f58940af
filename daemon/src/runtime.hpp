// The public runtime (runtime.cpp says what each address does): visitors reach published apps
// at /runtime/{workspace}[/{app}] (or at the root of their custom domain) without an API key,
// and the app page's files at /assets/.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "admission_batches.hpp"
#include "event_streams.hpp"
#include "forwarding.hpp"
#include "jwt.hpp"
#include "runs.hpp"
#include "worker_context.hpp"

namespace flowgres::daemon {

class Runtime {
public:
    Runtime(WorkerContext &worker, Runs &runs, EventStreams &streams);

    // The once-a-second flush of shed requests' counts.
    void start();
    void stop();

    // /runtime and everything under it; with `domain` (an active custom domain's name, as the
    // request's host named it), the same addresses below / at that domain.
    void handle(std::shared_ptr<Call> call, const std::string &domain = "");
    // /assets/{name}: the page's script and style, from memory, revalidated by ETag.
    void answer_asset(const std::shared_ptr<Call> &call);

private:
    // `captcha_token`: checked with the provider only when the admission asks for a CAPTCHA
    // (after the rate limits counted the request), then admitted again with the outcome.
    void admit(std::shared_ptr<Call> call, Json admission, const std::string &action, const std::string &suffix,
               bool async, std::string captcha_token = "");
    void verify_captcha(const std::string &token, const std::string &client, std::function<void(bool)> done);
    void answer_schema(const std::shared_ptr<Call> &call, const Json &decision);
    // The HTML page for browsers (entry by Accept, and …/embed): the shell filled with the
    // app's SEO and the boot data, under a strict Content-Security-Policy.
    void answer_page(const std::shared_ptr<Call> &call, const Json &decision, bool embed);
    void flush_shed_counts();

    WorkerContext &worker_;
    Runs &runs_;
    EventStreams &streams_;
    AdmissionBatches admission_batches_;
    const CidrList trusted_proxies_;
    const JwtSettings jwt_;
    // Load shedding (max_in_flight): executes being admitted here (runs_ counts those running).
    int64_t admissions_ = 0;
    // Requests shed since the last flush, by workspace and app slug (or {"@" + domain, ""} at a
    // custom domain): recorded as runtime.load_shed events once a second, a row per app rather
    // than per request.
    std::map<std::pair<std::string, std::string>, int64_t> shed_counts_;
    uv_timer_t shed_timer_{};
    bool started_ = false;
};

}  // namespace flowgres::daemon
