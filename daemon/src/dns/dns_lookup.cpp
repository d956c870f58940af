// DNS questions with c-ares (dns_lookup.hpp): one channel per question, driven by poll() until
// the answer or the deadline.
#include "dns/dns_lookup.hpp"

#include <ares.h>
#include <arpa/nameser.h>
#include <poll.h>

#include <chrono>
#include <mutex>

namespace flowgres::daemon::dns {
namespace {

constexpr int kTypeTxt = 16;
constexpr int kTypeCname = 5;
constexpr int kClassIn = 1;
constexpr size_t kMaxRecords = 100;          // a name with more is not a name we are asked to prove
constexpr size_t kMaxRecordBytes = 4096;     // one TXT record's strings together

struct Pending {
    bool done = false;
    int status = ARES_SUCCESS;
    std::vector<unsigned char> reply;
};

void on_reply(void *argument, int status, int /*timeouts*/, unsigned char *buffer, int length) {
    auto *pending = static_cast<Pending *>(argument);
    pending->done = true;
    pending->status = status;
    if (status == ARES_SUCCESS && buffer && length > 0) pending->reply.assign(buffer, buffer + length);
}

std::string lowercase_without_final_dot(std::string name) {
    if (!name.empty() && name.back() == '.') name.pop_back();
    for (char &c : name)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return name;
}

// The reply to (name, type), or why there is none. NXDOMAIN and "no such records" are answers.
Answer ask(const std::string &resolver, const std::string &name, int type, int timeout_ms, std::vector<unsigned char> &reply) {
    static std::once_flag initialized;
    std::call_once(initialized, [] { ares_library_init(ARES_LIB_INIT_ALL); });
    Answer answer;
    ares_options options{};
    options.timeout = timeout_ms < 2 ? 1 : timeout_ms / 2;  // two tries within the deadline
    options.tries = 2;
    ares_channel channel = nullptr;
    if (int status = ares_init_options(&channel, &options, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES); status != ARES_SUCCESS) {
        answer.error = std::string("the resolver could not be set up: ") + ares_strerror(status);
        return answer;
    }
    if (!resolver.empty()) {
        if (int status = ares_set_servers_ports_csv(channel, resolver.c_str()); status != ARES_SUCCESS) {
            ares_destroy(channel);
            answer.error = "dns_resolver " + resolver + " is not host:port (" + ares_strerror(status) + ")";
            return answer;
        }
    }
    Pending pending;
    ares_query(channel, name.c_str(), kClassIn, type, on_reply, &pending);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!pending.done) {
        ares_socket_t sockets[ARES_GETSOCK_MAXNUM];
        int bits = ares_getsock(channel, sockets, ARES_GETSOCK_MAXNUM);
        pollfd fds[ARES_GETSOCK_MAXNUM];
        nfds_t count = 0;
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short events = 0;
            if (ARES_GETSOCK_READABLE(bits, i)) events |= POLLIN;
            if (ARES_GETSOCK_WRITABLE(bits, i)) events |= POLLOUT;
            if (!events) continue;
            fds[count++] = pollfd{sockets[i], events, 0};
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0 || count == 0) break;
        timeval wait_buffer{};
        timeval *wait = ares_timeout(channel, nullptr, &wait_buffer);
        long long wait_ms = wait ? wait->tv_sec * 1000LL + wait->tv_usec / 1000 : left;
        int ready = poll(fds, count, static_cast<int>(std::max<long long>(1, std::min<long long>(wait_ms, left))));
        if (ready <= 0) {
            ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
            continue;
        }
        for (nfds_t i = 0; i < count; i++)
            ares_process_fd(channel, (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) ? fds[i].fd : ARES_SOCKET_BAD,
                            (fds[i].revents & POLLOUT) ? fds[i].fd : ARES_SOCKET_BAD);
    }
    if (!pending.done) {
        ares_cancel(channel);  // calls on_reply with ARES_ECANCELLED
        pending.status = ARES_ETIMEOUT;
    }
    ares_destroy(channel);
    if (pending.status == ARES_SUCCESS) {
        answer.ok = true;
        reply = std::move(pending.reply);
    } else if (pending.status == ARES_ENOTFOUND || pending.status == ARES_ENODATA) {
        answer.ok = true;  // no such name, or no such record: an answer with nothing in it
    } else {
        answer.error = std::string("the DNS server did not answer: ") + ares_strerror(pending.status);
    }
    return answer;
}

// The CNAME targets in a reply's answer section (c-ares 1.18 parses no CNAME reply itself).
std::vector<std::string> cname_targets(const std::vector<unsigned char> &reply) {
    std::vector<std::string> targets;
    const unsigned char *start = reply.data();
    const int length = static_cast<int>(reply.size());
    if (length < 12) return targets;
    int questions = (start[4] << 8) | start[5];
    int answers = (start[6] << 8) | start[7];
    int offset = 12;
    auto skip_name = [&]() {
        char *name = nullptr;
        long used = 0;
        if (ares_expand_name(start + offset, start, length, &name, &used) != ARES_SUCCESS) return false;
        ares_free_string(name);
        offset += static_cast<int>(used);
        return offset <= length;
    };
    for (int i = 0; i < questions; i++) {
        if (!skip_name() || offset + 4 > length) return targets;
        offset += 4;  // type, class
    }
    for (int i = 0; i < answers && targets.size() < kMaxRecords; i++) {
        if (!skip_name() || offset + 10 > length) return targets;
        int type = (start[offset] << 8) | start[offset + 1];
        int data_length = (start[offset + 8] << 8) | start[offset + 9];
        offset += 10;
        if (offset + data_length > length) return targets;
        if (type == kTypeCname) {
            char *target = nullptr;
            long used = 0;
            if (ares_expand_name(start + offset, start, length, &target, &used) == ARES_SUCCESS) {
                targets.push_back(lowercase_without_final_dot(target));
                ares_free_string(target);
            }
        }
        offset += data_length;
    }
    return targets;
}

}  // namespace

Answer lookup_txt(const std::string &resolver, const std::string &name, int timeout_ms) {
    std::vector<unsigned char> reply;
    Answer answer = ask(resolver, name, kTypeTxt, timeout_ms, reply);
    if (!answer.ok || reply.empty()) return answer;
    ares_txt_ext *records = nullptr;
    if (ares_parse_txt_reply_ext(reply.data(), static_cast<int>(reply.size()), &records) != ARES_SUCCESS) return answer;
    for (ares_txt_ext *part = records; part; part = part->next) {
        if (part->record_start || answer.records.empty()) {
            if (answer.records.size() >= kMaxRecords) break;
            answer.records.emplace_back();
        }
        std::string &record = answer.records.back();
        if (record.size() + part->length <= kMaxRecordBytes)
            record.append(reinterpret_cast<const char *>(part->txt), part->length);
    }
    ares_free_data(records);
    return answer;
}

Answer lookup_cname(const std::string &resolver, const std::string &name, int timeout_ms) {
    std::vector<unsigned char> reply;
    Answer answer = ask(resolver, name, kTypeCname, timeout_ms, reply);
    if (answer.ok && !reply.empty()) answer.records = cname_targets(reply);
    return answer;
}

}  // namespace flowgres::daemon::dns
