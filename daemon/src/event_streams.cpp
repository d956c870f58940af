// GET /api/v1/executions/{id}/events (README "Workflows and executions"): an execution's events as Server-Sent
// Events. The stream is the execution_events table read in order, so it is the same from any
// daemon and after any restart: a late subscriber first gets what already happened, and a
// client that reconnects with Last-Event-ID (or ?after=) continues after it.
//
// Where new events come from: NOTIFY flowgres_execution_events (payload: the execution id),
// sent by every write from any daemon, including execution_finished, which the database
// writes however the execution ends; the streams of that execution then read what is new.
// Every sse_heartbeat_ms a comment line goes out, which also finds clients that left, and
// every open stream's execution is read again, in case a notification was lost.
// The table is the only source: a stream shows exactly what was stored, so a replay is the
// live stream again, ids included. A run's events reach the table in batches (every
// event_flush_ms, and the rest at its end, with execution_finished), so a stream follows a run
// at most that far behind. A stream writes events in id order, each once, and ends after
// execution_finished. Follow-up reads act as the operator: the caller's logs_view was checked
// when the stream opened.
#include <charconv>

#include "event_streams.hpp"

#include <chrono>

#include "flowgres/json.hpp"
#include "log.hpp"

namespace flowgres::daemon {

namespace {
constexpr const char *kReadEvents = "select flowgres.execution_events($1::uuid, $2::integer)::text";
constexpr long long kMaxEventId = 2147483647;

std::string sse_event(long long id, std::string_view event, std::string_view data) {
    std::string out = "id: " + std::to_string(id) + "\nevent: ";
    out += event;
    out += "\ndata: ";
    out += data;  // compact JSON: no raw line breaks
    out += "\n\n";
    return out;
}

// Last-Event-ID is a decimal event id here; anything else is refused rather than guessed at.
std::optional<long long> parse_event_id(std::string_view text) {
    long long value = -1;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || value < 0 || value > kMaxEventId)
        return std::nullopt;
    return value;
}
}  // namespace

struct EventStreams::Stream {
    std::shared_ptr<Call> call;
    long long last_sent = 0;
    bool ended = false;
    bool visitor = false;  // a runtime visitor's: node events without their data

    // Writes one event if it comes after what was sent (pages are read in id order, and a
    // page overlapping the last one repeats ids); true once the stream has ended with it. Ids
    // may skip: events past their retention are deleted, execution_finished stays.
    bool write(long long id, std::string_view event, std::string_view data) {
        if (ended || id <= last_sent) return ended;
        last_sent = id;
        if (!call->responder.send_chunk(sse_event(id, event, data))) ended = true;
        if (event == "execution_finished") {
            call->responder.end_stream();
            ended = true;
        }
        return ended;
    }
};

// The streams of one execution on this worker.
struct EventStreams::Subscription {
    std::string execution_id;
    std::vector<std::shared_ptr<Stream>> streams;
    bool fetching = false;
    bool fetch_again = false;

    void drop_ended() {
        std::erase_if(streams, [](const auto &stream) { return stream->ended; });
    }
};

void EventStreams::start() {
    started_ = true;
    uv_timer_init(worker_.loop, &timer_);
    timer_.data = this;
    auto beat_every = static_cast<uint64_t>(worker_.config.sse_heartbeat_ms);
    uv_timer_start(
        &timer_, [](uv_timer_t *timer) { static_cast<EventStreams *>(timer->data)->beat(); }, beat_every, beat_every);
}

void EventStreams::stop() {
    if (!started_) return;
    started_ = false;
    uv_close(reinterpret_cast<uv_handle_t *>(&timer_), nullptr);
    end_all();
}

std::optional<long long> EventStreams::resume_point(const std::shared_ptr<Call> &call,
                                                          const std::optional<std::string> &after) {
    // Last-Event-ID (what EventSource sends when it reconnects), else ?after.
    if (auto header = call->request.header("last-event-id")) {
        auto id = parse_event_id(*header);
        if (!id)
            worker_.finish_error(call, ErrorCode::VALIDATION_FAILED, "Last-Event-ID must be an event id",
                                 R"({"problems":[{"field":"Last-Event-ID","message":"must be a number from 0 to 2147483647"}]})");
        return id;
    }
    if (!after) return 0;
    auto id = parse_event_id(*after);
    if (!id)
        worker_.finish_error(call, ErrorCode::VALIDATION_FAILED, "after must be an event id",
                             R"({"problems":[{"field":"after","message":"must be a number from 0 to 2147483647"}]})");
    return id;
}

void EventStreams::open(std::shared_ptr<Call> call) {
    auto resume = resume_point(call, call->arguments.size() > 1 ? call->arguments[1] : std::nullopt);
    if (!resume) return;
    long long after = *resume;
    std::vector<pg::Statement> statements;
    statements.push_back(worker_.actor_statement(*call));
    statements.push_back(pg::Statement{kReadEvents, {call->arguments[0], std::to_string(after)}});
    worker_.pool.run(std::move(statements), [this, call, after](pg::JobResult &&result) {
        if (result.outcome != pg::JobResult::Outcome::ok) return worker_.finish_database_error(call, result);
        worker_.note_key_use(*call, result.values[0]);
        start_stream(call, after, result.values[1].value_or("{}"), false);
    });
}

// A visitor's SSE stream of their own run (admission checked the session): read as the
// operator, shown as progress without node data.
void EventStreams::open_for_visitor(const std::shared_ptr<Call> &call, const std::string &execution_id) {
    auto resume = resume_point(call, http::query_value(call->request, "after"));
    if (!resume) return;
    call->arguments = {execution_id};
    call->route_label = "runtime_events";
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kActAsOperator, {}});
    statements.push_back(
        pg::Statement{kReadEvents, {execution_id, std::to_string(*resume)}});
    long long from = *resume;
    worker_.pool.run(std::move(statements), [this, call, from](pg::JobResult &&result) {
        if (result.outcome != pg::JobResult::Outcome::ok) return worker_.finish_database_error(call, result);
        start_stream(call, from, result.values[1].value_or("{}"), true);
    });
}

void EventStreams::start_stream(const std::shared_ptr<Call> &call, long long after, const std::string &page,
                                bool visitor) {
    call->answered = true;
    double seconds = std::chrono::duration<double>(Call::Clock::now() - call->started).count();
    worker_.metrics.record_request(call->route_label, call->request.method, 200, seconds);
    if (worker_.config.log_requests && log_enabled(LogLevel::info))
        LogLine(LogLevel::info, "event stream opened")
            .text("trace_id", call->trace.trace_id)
            .text("request_id", call->trace.request_id)
            .text("route", call->route_label)
            .number("status", 200)
            .text("execution_id", *call->arguments[0])
            .number("after", after)
            .text("client", hash_ip(call->request.peer_address));
    http::Response head;
    head.with_header("Content-Type", "text/event-stream; charset=utf-8")
        .with_header("Cache-Control", "no-store")
        .with_header("X-Accel-Buffering", "no")  // nginx in front: pass events through at once
        .with_header("X-Request-Id", call->trace.request_id)
        .with_header("traceparent", call->trace.traceparent());
    if (!call->responder.begin_stream(head) || call->request.method == "HEAD") return;
    // EventSource waits this long before reconnecting after the connection drops.
    call->responder.send_chunk("retry: 2000\n\n");

    const std::string &execution_id = *call->arguments[0];
    auto &subscription = subscriptions_[execution_id];
    if (!subscription) {
        subscription = std::make_shared<Subscription>();
        subscription->execution_id = execution_id;
    }
    auto stream = std::make_shared<Stream>();
    stream->call = call;
    stream->last_sent = after;
    stream->visitor = visitor;
    subscription->streams.push_back(stream);
    deliver_page(*subscription, page);
    // Read again unless the first page already ended the stream: the run may have written (and
    // notified) between that read and this subscription, and the notification found no one.
    if (!stream->ended) fetch(execution_id);
    subscription->drop_ended();
    if (subscription->streams.empty()) subscriptions_.erase(execution_id);
    note_streams();
}

bool EventStreams::deliver_page(Subscription &subscription, const std::string &page) {
    Json parsed = parse_json(page, "events");
    json_t *events = json_object_get(parsed.get(), "events");
    size_t index;
    json_t *event;
    json_array_foreach(events, index, event) {
        long long id = json_integer_value(json_object_get(event, "id"));
        const char *name = json_string_value(json_object_get(event, "event"));
        if (!name) continue;
        json_t *payload = json_object_get(event, "data");
        std::string data = dump_json(payload);
        // Visitors follow progress (which node, how it went) and streamed model text, not the
        // nodes' data.
        std::string progress = data;
        if (std::string_view(name) != "execution_finished") {
            Json visible(new_json_object());
            // node_delta's text is what the public page shows as it streams.
            for (const char *member : {"node_id", "node_type", "status", "duration_ms", "delta"})
                if (json_t *value = json_object_get(payload, member)) json_object_set(visible.get(), member, value);
            progress = dump_json(visible.get());
        }
        for (auto &stream : subscription.streams) stream->write(id, name, stream->visitor ? progress : data);
    }
    // Complete: the execution has ended and every stream has had all of it.
    bool complete = json_is_true(json_object_get(parsed.get(), "complete"));
    if (complete)
        for (auto &stream : subscription.streams) end_stream(*stream);
    // Not the last page: a full page (more may follow) of an execution still going.
    return complete || json_array_size(events) < 500;
}

void EventStreams::fetch(const std::string &execution_id) {
    auto found = subscriptions_.find(execution_id);
    if (found == subscriptions_.end()) return;
    std::shared_ptr<Subscription> subscription = found->second;
    if (subscription->fetching) {
        subscription->fetch_again = true;
        return;
    }
    long long after = kMaxEventId;
    for (const auto &stream : subscription->streams) after = std::min(after, stream->last_sent);
    subscription->fetching = true;
    subscription->fetch_again = false;
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kActAsOperator, {}});
    statements.push_back(pg::Statement{kReadEvents, {execution_id, std::to_string(after)}});
    worker_.pool.run(std::move(statements), [this, subscription](pg::JobResult &&result) {
        subscription->fetching = false;
        bool again = subscription->fetch_again;
        if (result.outcome == pg::JobResult::Outcome::ok && result.values[1])
            again = !deliver_page(*subscription, *result.values[1]) || again;
        else if (result.outcome == pg::JobResult::Outcome::sql_error)
            // The execution is gone (or cannot be read): nothing more will come.
            for (auto &stream : subscription->streams) end_stream(*stream);
        subscription->drop_ended();
        auto current = subscriptions_.find(subscription->execution_id);
        if (subscription->streams.empty()) {
            if (current != subscriptions_.end() && current->second == subscription) subscriptions_.erase(current);
            note_streams();
            return;
        }
        note_streams();
        if (again) fetch(subscription->execution_id);
    });
}

void EventStreams::on_notification(const std::string &payload) {
    if (payload.empty()) {
        // The listener was reconnected: anything may have been missed.
        std::vector<std::string> ids;
        for (const auto &[id, subscription] : subscriptions_) ids.push_back(id);
        for (const auto &id : ids) fetch(id);
        return;
    }
    if (subscriptions_.count(payload)) fetch(payload);
}

void EventStreams::beat() {
    std::vector<std::string> ids;
    for (auto &[id, subscription] : subscriptions_) {
        for (auto &stream : subscription->streams)
            if (!stream->ended && !stream->call->responder.send_chunk(": heartbeat\n\n")) stream->ended = true;
        subscription->drop_ended();
        ids.push_back(id);
    }
    for (const auto &id : ids) {
        auto found = subscriptions_.find(id);
        if (found == subscriptions_.end()) continue;
        if (found->second->streams.empty() && !found->second->fetching)
            subscriptions_.erase(found);
        else
            fetch(id);  // a safety net for a lost notification
    }
    note_streams();
}

void EventStreams::note_streams() {
    int64_t streams = 0;
    for (const auto &[id, subscription] : subscriptions_) streams += static_cast<int64_t>(subscription->streams.size());
    worker_.metrics.set_open_streams(streams);
}

void EventStreams::end_stream(Stream &stream) {
    if (stream.ended) return;
    stream.ended = true;
    stream.call->responder.end_stream();
}

void EventStreams::end_all() {
    for (auto &[id, subscription] : subscriptions_)
        for (auto &stream : subscription->streams) end_stream(*stream);
    subscriptions_.clear();
    note_streams();
}

}  // namespace flowgres::daemon
