// flowgresd: start-up, workers and shutdown. Start-up order, written once:
//   1. configuration (a bad key stops here, before anything is opened)
//   2. log level, SIGPIPE ignored (a client vanishing must not kill the process), and the
//      open-files limit raised to its hard maximum (each connection is a descriptor)
//   3. the OpenAPI document (built once, shared read-only by the workers)
//   4. one listening socket per worker, all bound before any thread starts, so a port in use
//      fails start-up with one clear message instead of half a server
//   5. the workers: each its own loop, database pool, application and HTTP server
//   6. signals last: SIGTERM/SIGINT drain every worker, then the process exits 0
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "application.hpp"
#include "config.hpp"
#include "flowgres/crypto.hpp"
#include "http/server.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "openapi.hpp"
#include "pg/pool.hpp"

extern char **environ;

namespace flowgres::daemon {
namespace {

class Worker {
public:
    Worker(const Config &config, const RunEnvironment &environment, int index, int count, int fd, int tls_fd,
           std::shared_ptr<http::TlsServerContext> tls, const std::string &openapi)
        : config_(config),
          environment_(environment),
          index_(index),
          count_(count),
          fd_(fd),
          tls_fd_(tls_fd),
          tls_(std::move(tls)),
          openapi_(openapi),
          metrics_(metrics_registry().add_worker()) {}

    void start() {
        thread_ = std::thread([this] { run(); });
    }
    void request_stop() { uv_async_send(&stop_async_); }
    void join() {
        if (thread_.joinable()) thread_.join();
    }

private:
    void run() {
        uv_loop_init(&loop_);
        uv_async_init(&loop_, &stop_async_,
                      [](uv_async_t *async) { static_cast<Worker *>(async->data)->begin_stop(); });
        stop_async_.data = this;

        pg::PoolOptions options;
        options.conninfo = config_.database_url;
        options.size = static_cast<size_t>(config_.db_pool_size);
        options.pipeline_depth = static_cast<size_t>(config_.db_pipeline_depth);
        options.queue_timeout_ms = static_cast<uint64_t>(config_.db_queue_timeout_ms);
        options.statement_timeout_ms = static_cast<uint64_t>(config_.db_statement_timeout_ms);
        pool_ = std::make_unique<pg::Pool>(&loop_, options);
        pool_->start();

        application_ =
            std::make_unique<Application>(config_, environment_, &loop_, *pool_, metrics_, index_, count_, openapi_);
        http::ServerLimits limits;
        limits.parser.max_header_bytes = static_cast<size_t>(config_.max_header_bytes);
        limits.parser.max_url_bytes = static_cast<size_t>(config_.max_url_bytes);
        limits.header_timeout_ms = static_cast<uint64_t>(config_.header_timeout_ms);
        limits.body_timeout_ms = static_cast<uint64_t>(config_.body_timeout_ms);
        limits.idle_timeout_ms = static_cast<uint64_t>(config_.idle_timeout_ms);
        limits.max_connections = static_cast<size_t>(config_.max_connections);
        server_ = std::make_unique<http::HttpServer>(&loop_, limits, *application_);
        server_->listen(fd_);
        if (tls_fd_ >= 0) {
            tls_server_ = std::make_unique<http::HttpServer>(&loop_, limits, *application_);
            tls_server_->listen(tls_fd_, tls_, application_->certificate_source());
        }
        application_->start_background();

        // Pool gauges are published a few times a second for /metrics, which any worker serves.
        uv_timer_init(&loop_, &stats_timer_);
        stats_timer_.data = this;
        uv_timer_start(
            &stats_timer_,
            [](uv_timer_t *timer) {
                auto *self = static_cast<Worker *>(timer->data);
                pg::PoolStats stats = self->pool_->stats();
                self->metrics_.set_pool({static_cast<int64_t>(stats.size), static_cast<int64_t>(stats.connected),
                                         static_cast<int64_t>(stats.in_use), static_cast<int64_t>(stats.waiting)});
            },
            0, 250);

        LoopLogBuffer log_buffer(&loop_);
        uv_run(&loop_, UV_RUN_DEFAULT);
        log_buffer.close();
        // Everything is closed; run once more for close callbacks, then free the loop.
        uv_run(&loop_, UV_RUN_NOWAIT);
        tls_server_.reset();
        server_.reset();
        application_.reset();
        pool_.reset();
        uv_loop_close(&loop_);
    }

    void begin_stop() {
        if (stopping_) return;
        stopping_ = true;
        uv_timer_stop(&stats_timer_);
        uv_close(reinterpret_cast<uv_handle_t *>(&stats_timer_), nullptr);
        // In-flight requests get until the deadline; then their connections are cut.
        uv_timer_init(&loop_, &deadline_timer_);
        deadline_timer_.data = this;
        uv_timer_start(
            &deadline_timer_,
            [](uv_timer_t *timer) {
                auto *self = static_cast<Worker *>(timer->data);
                log_line(LogLevel::warn, "shutdown deadline passed; closing the remaining connections");
                self->server_->close_all();
                if (self->tls_server_) self->tls_server_->close_all();
            },
            static_cast<uint64_t>(config_.shutdown_timeout_ms), 0);
        application_->end_event_streams();
        // Both listeners drain; the worker goes on once the last connection of either is gone.
        servers_draining_ = tls_server_ ? 2 : 1;
        server_->begin_shutdown([this] { one_server_drained(); });
        if (tls_server_) tls_server_->begin_shutdown([this] { one_server_drained(); });
    }

    void one_server_drained() {
        if (--servers_draining_ == 0) drained();
    }

    void drained() {
        uv_timer_stop(&deadline_timer_);
        uv_close(reinterpret_cast<uv_handle_t *>(&deadline_timer_), nullptr);
        application_->stop_background(
            [this] { pool_->close([this] { uv_close(reinterpret_cast<uv_handle_t *>(&stop_async_), nullptr); }); });
    }

    const Config &config_;
    const RunEnvironment &environment_;
    int index_;
    int count_;
    int fd_;
    int tls_fd_;  // -1: no HTTPS listener
    std::shared_ptr<http::TlsServerContext> tls_;
    int servers_draining_ = 0;
    const std::string &openapi_;
    WorkerMetrics &metrics_;
    std::thread thread_;
    uv_loop_t loop_{};
    uv_async_t stop_async_{};
    uv_timer_t stats_timer_{};
    uv_timer_t deadline_timer_{};
    bool stopping_ = false;
    std::unique_ptr<pg::Pool> pool_;
    std::unique_ptr<Application> application_;
    std::unique_ptr<http::HttpServer> server_;
    std::unique_ptr<http::HttpServer> tls_server_;
};

std::vector<std::unique_ptr<Worker>> *running_workers = nullptr;

int run(int argc, char **argv) {
    std::vector<std::string> arguments(argv + 1, argv + argc);
    if (arguments.size() == 1 && arguments[0] == "--new-key") {
        std::cout << new_api_key() << "\n";
        return 0;
    }
    Config config;
    try {
        if (!load_config(config, arguments, environ)) {
            std::cout << usage_text();
            return 0;
        }
    } catch (const ConfigError &error) {
        std::cerr << "flowgresd: configuration error: " << error.what() << "\n";
        return 2;
    }
    set_log_level(config.log_level);
    signal(SIGPIPE, SIG_IGN);
    rlimit files{};
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }

    const std::string openapi = openapi_document();
    std::shared_ptr<const WebAssets> web;
    std::shared_ptr<const Prompts> prompts;
    try {
        web = WebAssets::load(config.web_dir);
        prompts = Prompts::load(config.prompts_dir);
    } catch (const std::exception &error) {
        std::cerr << "flowgresd: " << error.what() << "\n";
        return 1;
    }
    std::string tls_error;
    const RunEnvironment environment{
        std::make_shared<const executor::EgressPolicy>(executor::EgressPolicy::parse(config.egress_allow)),
        executor::TlsClientContext::create(config.http_ca_file, tls_error), web,
        std::make_shared<const Keyring>(Keyring::load(
            config.master_key_file, config.master_keys.empty() ? nullptr : config.master_keys.c_str())),
        prompts};

    int worker_count = config.workers > 0 ? static_cast<int>(config.workers)
                                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    std::vector<int> sockets;
    for (int i = 0; i < worker_count; i++) {
        int fd = http::open_reuseport_listener(config.listen_host, static_cast<int>(config.port), 1024);
        if (fd < 0) {
            std::cerr << "flowgresd: cannot listen on " << config.listen_host << ":" << config.port << ": "
                      << std::strerror(-fd) << " (listen_host / port)\n";
            return 1;
        }
        sockets.push_back(fd);
    }

    // HTTPS (tls_port): the platform's certificate, one context for every worker.
    std::shared_ptr<http::TlsServerContext> tls;
    std::vector<int> tls_sockets(static_cast<size_t>(worker_count), -1);
    if (config.tls_port > 0) {
        std::string error;
        tls = http::TlsServerContext::create(config.tls_cert_file, config.tls_key_file, error);
        if (!tls) {
            std::cerr << "flowgresd: " << error << "\n";
            return 2;
        }
        for (int i = 0; i < worker_count; i++) {
            int fd = http::open_reuseport_listener(config.listen_host, static_cast<int>(config.tls_port), 1024);
            if (fd < 0) {
                std::cerr << "flowgresd: cannot listen on " << config.listen_host << ":" << config.tls_port << ": "
                          << std::strerror(-fd) << " (listen_host / tls_port)\n";
                return 1;
            }
            tls_sockets[static_cast<size_t>(i)] = fd;
        }
    }

    std::vector<std::unique_ptr<Worker>> workers;
    for (int i = 0; i < worker_count; i++)
        workers.push_back(std::make_unique<Worker>(config, environment, i, worker_count, sockets[i],
                                                   tls_sockets[static_cast<size_t>(i)], tls, openapi));
    for (auto &worker : workers) worker->start();
    running_workers = &workers;
    log_line(LogLevel::info, "flowgresd listening",
             {{"address", config.listen_host + ":" + std::to_string(config.port)},
              {"tls_address", config.tls_port > 0 ? config.listen_host + ":" + std::to_string(config.tls_port) : "none"},
              {"workers", std::to_string(worker_count), true},
              {"admin_key", config.admin_key.empty() ? "not configured" : "configured"}});

    uv_loop_t *loop = uv_default_loop();
    uv_signal_t terminate{}, interrupt{};
    auto on_signal = [](uv_signal_t *handle, int signal_number) {
        log_line(LogLevel::info, "shutting down", {{"signal", std::to_string(signal_number), true}});
        for (auto &worker : *running_workers) worker->request_stop();
        uv_close(reinterpret_cast<uv_handle_t *>(handle->data), nullptr);
        uv_close(reinterpret_cast<uv_handle_t *>(handle), nullptr);
    };
    uv_signal_init(loop, &terminate);
    uv_signal_init(loop, &interrupt);
    terminate.data = &interrupt;
    interrupt.data = &terminate;
    uv_signal_start(&terminate, on_signal, SIGTERM);
    uv_signal_start(&interrupt, on_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    for (auto &worker : workers) worker->join();
    log_line(LogLevel::info, "flowgresd stopped");
    return 0;
}

}  // namespace
}  // namespace flowgres::daemon

int main(int argc, char **argv) {
    return flowgres::daemon::run(argc, argv);
}
