// Server-Sent Events, read incrementally (the WHATWG event-stream format): bytes go in as
// they arrive, in pieces cut anywhere, and each complete event's data comes out. Lines end in
// LF, CR or CRLF; "data:" lines of one event are joined with LF; comments (":…") and other
// fields are skipped; a blank line ends an event. Memory is bounded: an event larger than the
// limit is an error, never a growing buffer.
// Not for: writing event streams (the daemon's event_streams.cpp does that).
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace flowgres {

class SseReader {
public:
    explicit SseReader(size_t max_event_bytes = 1024 * 1024) : max_event_bytes_(max_event_bytes) {}

    // Feeds bytes; calls on_data(data) for each event completed by them. False (and nothing
    // more is read) once an event outgrew the limit or on_data returned false.
    bool feed(std::string_view bytes, const std::function<bool(const std::string &data)> &on_data);

private:
    bool line(std::string_view text, const std::function<bool(const std::string &)> &on_data);
    std::string line_;
    std::string data_;
    bool has_data_ = false;
    bool after_cr_ = false;
    bool failed_ = false;
    size_t max_event_bytes_;
};

}  // namespace flowgres
