// Recording and rendering.
#include "metrics.hpp"

#include <cstdio>
#include <memory>
#include <sstream>
#include <string_view>

namespace flowgres::daemon {

void WorkerMetrics::record_request(const std::string &route, const std::string &method, int status, double seconds) {
    // The key is built in a reused buffer and looked up without a copy; only a new series
    // allocates.
    thread_local std::string key;
    key.clear();
    key.append(route).append(1, '\x1f').append(method).append(1, '\x1f');
    char digits[8];
    int length = std::snprintf(digits, sizeof(digits), "%d", status);
    key.append(digits, static_cast<size_t>(length));
    std::lock_guard lock(mutex_);
    auto found = requests_.find(std::string_view(key));
    if (found == requests_.end()) found = requests_.emplace(key, RequestSeries{}).first;
    RequestSeries &series = found->second;
    series.count++;
    series.sum_seconds += seconds;
    for (size_t i = 0; i < kLatencyBuckets.size(); i++)
        if (seconds <= kLatencyBuckets[i]) {
            series.buckets[i]++;
            break;
        }
}

void WaitSeries::observe(double seconds) {
    count++;
    sum_seconds += seconds;
    for (size_t i = 0; i < kWaitBuckets.size(); i++)
        if (seconds <= kWaitBuckets[i]) {
            buckets[i]++;
            break;
        }
}

void WaitSeries::add(const WaitSeries &other) {
    count += other.count;
    sum_seconds += other.sum_seconds;
    for (size_t i = 0; i < buckets.size(); i++) buckets[i] += other.buckets[i];
}

void WorkerMetrics::observe_run_record_wait(double seconds) {
    std::lock_guard lock(mutex_);
    run_record_waits_.observe(seconds);
}

void WorkerMetrics::observe_admission_wait(double seconds) {
    std::lock_guard lock(mutex_);
    admission_waits_.observe(seconds);
}

void WorkerMetrics::set_pool(const PoolGauges &gauges) {
    std::lock_guard lock(mutex_);
    pool_ = gauges;
}

void WorkerMetrics::set_active_runs(int64_t runs) {
    std::lock_guard lock(mutex_);
    runs_ = runs;
}

void WorkerMetrics::set_open_streams(int64_t streams) {
    std::lock_guard lock(mutex_);
    streams_ = streams;
}

void WorkerMetrics::count_run_record(size_t runs) {
    std::lock_guard lock(mutex_);
    run_records_++;
    runs_recorded_ += runs;
}

void WorkerMetrics::count_admission_batch(size_t admissions) {
    std::lock_guard lock(mutex_);
    admission_batches_++;
    admissions_batched_ += admissions;
}

void WorkerMetrics::count_admission_batch_retry() {
    std::lock_guard lock(mutex_);
    admission_batch_retries_++;
}

void WorkerMetrics::count_tls_certificate_load() {
    std::lock_guard lock(mutex_);
    tls_certificate_loads_++;
}

void WorkerMetrics::count_tls_domain_list_load() {
    std::lock_guard lock(mutex_);
    tls_domain_list_loads_++;
}

void WorkerMetrics::count_tls_name_refused() {
    std::lock_guard lock(mutex_);
    tls_names_refused_++;
}

WorkerMetrics &MetricsRegistry::add_worker() {
    std::lock_guard lock(mutex_);
    workers_.push_back(std::make_unique<WorkerMetrics>());
    return *workers_.back();
}

namespace {
std::string label_value(const std::string &text) {
    std::string out;
    for (char c : text) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

std::string number(double value) {
    std::ostringstream out;
    out << value;
    return out.str();
}

void render_waits(std::ostringstream &out, const char *name, const char *help, const WaitSeries &series) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kWaitBuckets.size(); i++) {
        cumulative += series.buckets[i];
        out << name << "_bucket{le=\"" << number(kWaitBuckets[i]) << "\"} " << cumulative << "\n";
    }
    out << name << "_bucket{le=\"+Inf\"} " << series.count << "\n";
    out << name << "_sum " << number(series.sum_seconds) << "\n";
    out << name << "_count " << series.count << "\n";
}
}  // namespace

std::string MetricsRegistry::render(long open_connections, int workers) {
    std::map<std::string, RequestSeries> requests;
    PoolGauges pool;
    int64_t runs = 0, streams = 0;
    uint64_t run_records = 0, runs_recorded = 0, admission_batches = 0, admissions_batched = 0, admission_retries = 0;
    uint64_t tls_loads = 0, tls_list_loads = 0, tls_refused = 0;
    WaitSeries run_record_waits, admission_waits;
    {
        std::lock_guard lock(mutex_);
        for (auto &worker : workers_) {
            std::lock_guard worker_lock(worker->mutex_);
            for (const auto &[key, series] : worker->requests_) {
                RequestSeries &total = requests[key];
                total.count += series.count;
                total.sum_seconds += series.sum_seconds;
                for (size_t i = 0; i < series.buckets.size(); i++) total.buckets[i] += series.buckets[i];
            }
            pool.size += worker->pool_.size;
            pool.connected += worker->pool_.connected;
            pool.in_use += worker->pool_.in_use;
            pool.waiting += worker->pool_.waiting;
            runs += worker->runs_;
            streams += worker->streams_;
            run_records += worker->run_records_;
            runs_recorded += worker->runs_recorded_;
            admission_batches += worker->admission_batches_;
            admissions_batched += worker->admissions_batched_;
            admission_retries += worker->admission_batch_retries_;
            tls_loads += worker->tls_certificate_loads_;
            tls_list_loads += worker->tls_domain_list_loads_;
            tls_refused += worker->tls_names_refused_;
            run_record_waits.add(worker->run_record_waits_);
            admission_waits.add(worker->admission_waits_);
        }
    }
    std::ostringstream out;
    out << "# HELP flowgres_http_requests_total HTTP requests answered, by route, method and status.\n"
           "# TYPE flowgres_http_requests_total counter\n";
    auto labels_of = [](const std::string &key) {
        size_t first = key.find('\x1f'), second = key.find('\x1f', first + 1);
        return "route=\"" + label_value(key.substr(0, first)) + "\",method=\"" +
               label_value(key.substr(first + 1, second - first - 1)) + "\",status=\"" + key.substr(second + 1) + "\"";
    };
    for (const auto &[key, series] : requests)
        out << "flowgres_http_requests_total{" << labels_of(key) << "} " << series.count << "\n";
    out << "# HELP flowgres_http_request_duration_seconds Time from a request's last byte to its response.\n"
           "# TYPE flowgres_http_request_duration_seconds histogram\n";
    for (const auto &[key, series] : requests) {
        std::string labels = labels_of(key);
        uint64_t cumulative = 0;
        for (size_t i = 0; i < kLatencyBuckets.size(); i++) {
            cumulative += series.buckets[i];
            out << "flowgres_http_request_duration_seconds_bucket{" << labels << ",le=\"" << number(kLatencyBuckets[i])
                << "\"} " << cumulative << "\n";
        }
        out << "flowgres_http_request_duration_seconds_bucket{" << labels << ",le=\"+Inf\"} " << series.count << "\n";
        out << "flowgres_http_request_duration_seconds_sum{" << labels << "} " << number(series.sum_seconds) << "\n";
        out << "flowgres_http_request_duration_seconds_count{" << labels << "} " << series.count << "\n";
    }
    out << "# HELP flowgres_http_connections_open Client connections open now.\n"
           "# TYPE flowgres_http_connections_open gauge\n"
           "flowgres_http_connections_open "
        << open_connections
        << "\n"
           "# HELP flowgres_workers Event-loop workers.\n"
           "# TYPE flowgres_workers gauge\n"
           "flowgres_workers "
        << workers
        << "\n"
           "# HELP flowgres_db_pool_size Database connections configured, over all workers.\n"
           "# TYPE flowgres_db_pool_size gauge\n"
           "flowgres_db_pool_size "
        << pool.size
        << "\n"
           "# HELP flowgres_db_pool_connected Database connections up.\n"
           "# TYPE flowgres_db_pool_connected gauge\n"
           "flowgres_db_pool_connected "
        << pool.connected
        << "\n"
           "# HELP flowgres_db_pool_in_use Database connections with a statement in flight.\n"
           "# TYPE flowgres_db_pool_in_use gauge\n"
           "flowgres_db_pool_in_use "
        << pool.in_use
        << "\n"
           "# HELP flowgres_db_pool_waiting Requests waiting for a database connection.\n"
           "# TYPE flowgres_db_pool_waiting gauge\n"
           "flowgres_db_pool_waiting "
        << pool.waiting
        << "\n"
           "# HELP flowgres_runs_active Workflow runs executing now.\n"
           "# TYPE flowgres_runs_active gauge\n"
           "flowgres_runs_active "
        << runs
        << "\n"
           "# HELP flowgres_event_streams_open Execution event streams (SSE) open now.\n"
           "# TYPE flowgres_event_streams_open gauge\n"
           "flowgres_event_streams_open "
        << streams
        << "\n"
           "# HELP flowgres_run_records_total Batches of finished runs written, one transaction each.\n"
           "# TYPE flowgres_run_records_total counter\n"
           "flowgres_run_records_total "
        << run_records
        << "\n"
           "# HELP flowgres_runs_recorded_total Finished runs written in those batches.\n"
           "# TYPE flowgres_runs_recorded_total counter\n"
           "flowgres_runs_recorded_total "
        << runs_recorded
        << "\n"
           "# HELP flowgres_admission_batches_total Statements of public runtime admissions sent, one transaction each.\n"
           "# TYPE flowgres_admission_batches_total counter\n"
           "flowgres_admission_batches_total "
        << admission_batches
        << "\n"
           "# HELP flowgres_admissions_batched_total Admissions sent in those statements.\n"
           "# TYPE flowgres_admissions_batched_total counter\n"
           "flowgres_admissions_batched_total "
        << admissions_batched
        << "\n"
           "# HELP flowgres_admission_batch_retries_total Statements of admissions that failed as a whole, sent again one by one.\n"
           "# TYPE flowgres_admission_batch_retries_total counter\n"
           "flowgres_admission_batch_retries_total "
        << admission_retries
        << "\n"
           "# HELP flowgres_tls_certificate_loads_total Custom domains' certificates read from the database for the SNI cache.\n"
           "# TYPE flowgres_tls_certificate_loads_total counter\n"
           "flowgres_tls_certificate_loads_total "
        << tls_loads
        << "\n"
           "# HELP flowgres_tls_domain_list_loads_total Lists of the names the HTTPS listener answers for, read from the database.\n"
           "# TYPE flowgres_tls_domain_list_loads_total counter\n"
           "flowgres_tls_domain_list_loads_total "
        << tls_list_loads
        << "\n"
           "# HELP flowgres_tls_names_refused_total TLS handshakes refused for their name (unknown, inactive or blocked).\n"
           "# TYPE flowgres_tls_names_refused_total counter\n"
           "flowgres_tls_names_refused_total "
        << tls_refused << "\n";
    render_waits(out, "flowgres_run_record_wait_seconds",
                 "From a finished run handed to its worker's recorder until its batch committed.", run_record_waits);
    render_waits(out, "flowgres_admission_wait_seconds",
                 "From a runtime admission asked until its batch's decisions came back.", admission_waits);
    return out.str();
}

MetricsRegistry &metrics_registry() {
    static MetricsRegistry registry;
    return registry;
}

}  // namespace flowgres::daemon
