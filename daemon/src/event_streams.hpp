// An execution's events as Server-Sent Events, for members (GET /api/v1/executions/{id}/events)
// and for the visitor whose run it is (the public runtime's …/executions/{id}/events). How
// the stream is fed and resumed: event_streams.cpp.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "worker_context.hpp"

namespace flowgres::daemon {

class EventStreams {
public:
    explicit EventStreams(WorkerContext &worker) : worker_(worker) {}

    // The heartbeat timer (sse_heartbeat_ms), which also re-reads every stream's execution.
    void start();
    void stop();

    // A member's stream: call->arguments are (execution id, ?after); the read is the caller's,
    // so logs_view is checked when it opens.
    void open(std::shared_ptr<Call> call);
    // A visitor's stream of their own run (admission checked the session): read as the
    // operator, shown as progress without node data.
    void open_for_visitor(const std::shared_ptr<Call> &call, const std::string &execution_id);
    // NOTIFY flowgres_execution_events: its payload names an execution with new events; an
    // empty one means the listener reconnected and anything may have been missed.
    void on_notification(const std::string &payload);
    // Shutdown, before draining: open streams end (clients resume elsewhere with
    // Last-Event-ID), so their connections can close.
    void end_all();

private:
    struct Stream;
    struct Subscription;

    // The resume point from Last-Event-ID or `after`; answers 422 and returns nullopt when bad.
    std::optional<long long> resume_point(const std::shared_ptr<Call> &call, const std::optional<std::string> &after);
    // Streams call->arguments[0]'s events after `after`; a visitor's stream shows node events
    // without their data (progress only) and the execution's end with its outputs.
    void start_stream(const std::shared_ptr<Call> &call, long long after, const std::string &page, bool visitor);
    // Reads the subscription's events after the least any of its streams has sent.
    void fetch(const std::string &execution_id);
    // Writes a page of execution_events to the streams; false if the page was not the last.
    bool deliver_page(Subscription &subscription, const std::string &page);
    void beat();
    void end_stream(Stream &stream);
    // Tells the metrics how many streams this worker has open.
    void note_streams();

    WorkerContext &worker_;
    std::map<std::string, std::shared_ptr<Subscription>> subscriptions_;
    uv_timer_t timer_{};
    bool started_ = false;
};

}  // namespace flowgres::daemon
