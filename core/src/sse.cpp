// The event-stream reader (sse.hpp).
#include "flowgres/sse.hpp"

namespace flowgres {

bool SseReader::feed(std::string_view bytes, const std::function<bool(const std::string &)> &on_data) {
    if (failed_) return false;
    for (char c : bytes) {
        if (c == '\n' && after_cr_) {  // the LF of a CRLF: the line already ended at the CR
            after_cr_ = false;
            continue;
        }
        after_cr_ = c == '\r';
        if (c == '\r' || c == '\n') {
            if (!line(line_, on_data)) return !(failed_ = true);
            line_.clear();
            continue;
        }
        line_ += c;
        if (line_.size() + data_.size() > max_event_bytes_) return !(failed_ = true);
    }
    return true;
}

bool SseReader::line(std::string_view text, const std::function<bool(const std::string &)> &on_data) {
    if (text.empty()) {  // the end of an event
        if (!has_data_) return true;
        std::string data = std::move(data_);
        data_.clear();
        has_data_ = false;
        return on_data(data);
    }
    if (text[0] == ':') return true;  // a comment (keep-alive)
    size_t colon = text.find(':');
    std::string_view field = text.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    if (field != "data") return true;  // event, id, retry: nothing a model stream needs
    if (has_data_) data_ += '\n';
    data_.append(value);
    has_data_ = true;
    return true;
}

}  // namespace flowgres
