// Prometheus metrics (text exposition format 0.0.4). Each worker records into its own
// WorkerMetrics under its own mutex (uncontended on the hot path); a scrape sums them all.
// Not for: business usage (the extension meters that).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace flowgres::daemon {

inline constexpr std::array<double, 12> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                           0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

// Waits inside the daemon (an admission, a run's recording), finer than a request's.
inline constexpr std::array<double, 13> kWaitBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01,
                                                        0.025,  0.05,    0.1,    0.25,  0.5,   1.0};

struct WaitSeries {
    uint64_t count = 0;
    double sum_seconds = 0;
    std::array<uint64_t, kWaitBuckets.size()> buckets{};  // non-cumulative here

    void observe(double seconds);
    void add(const WaitSeries &other);
};

struct RequestSeries {
    uint64_t count = 0;
    double sum_seconds = 0;
    std::array<uint64_t, kLatencyBuckets.size()> buckets{};  // non-cumulative here
};

struct PoolGauges {
    int64_t size = 0;
    int64_t connected = 0;
    int64_t in_use = 0;
    int64_t waiting = 0;
};

class WorkerMetrics {
public:
    void record_request(const std::string &route, const std::string &method, int status, double seconds);
    void set_pool(const PoolGauges &gauges);
    // Workflow runs executing on the worker, and event streams open on it.
    void set_active_runs(int64_t runs);
    void set_open_streams(int64_t streams);
    // A batch of finished runs written (run_recorder.hpp), with this many runs in it.
    void count_run_record(size_t runs);
    // A statement of admissions sent (admission_batches.hpp), with this many in it; a batch
    // that failed as a whole and was sent again one by one.
    void count_admission_batch(size_t admissions);
    void count_admission_batch_retry();
    // HTTPS: a custom domain's certificate read from the database for the SNI cache (every other
    // handshake of that name is answered from memory), and a handshake refused for its name.
    void count_tls_certificate_load();
    void count_tls_domain_list_load();
    void count_tls_name_refused();
    // From a run handed to the recorder until its batch's commit answered; from an admission
    // asked until its batch answered. Where a request's time goes between its own steps.
    void observe_run_record_wait(double seconds);
    void observe_admission_wait(double seconds);

private:
    friend class MetricsRegistry;
    std::mutex mutex_;
    // key: route \x1f method \x1f status
    std::map<std::string, RequestSeries, std::less<>> requests_;
    PoolGauges pool_;
    int64_t runs_ = 0;
    int64_t streams_ = 0;
    uint64_t run_records_ = 0;
    uint64_t runs_recorded_ = 0;
    uint64_t admission_batches_ = 0;
    uint64_t admissions_batched_ = 0;
    uint64_t admission_batch_retries_ = 0;
    uint64_t tls_certificate_loads_ = 0;
    uint64_t tls_domain_list_loads_ = 0;
    uint64_t tls_names_refused_ = 0;
    WaitSeries run_record_waits_;
    WaitSeries admission_waits_;
};

class MetricsRegistry {
public:
    WorkerMetrics &add_worker();
    std::string render(long open_connections, int workers);

private:
    std::mutex mutex_;
    std::vector<std::unique_ptr<WorkerMetrics>> workers_;
};

MetricsRegistry &metrics_registry();

}  // namespace flowgres::daemon
