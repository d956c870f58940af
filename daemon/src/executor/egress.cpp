// Address classification (RFC 6890 special-purpose registries) and allow-list matching.
#include "executor/egress.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <stdexcept>

namespace flowgres::executor {
namespace {

bool prefix_matches(const uint8_t *address, const uint8_t *network, int prefix) {
    int whole = prefix / 8, rest = prefix % 8;
    if (std::memcmp(address, network, static_cast<size_t>(whole)) != 0) return false;
    if (rest == 0) return true;
    uint8_t mask = static_cast<uint8_t>(0xFF << (8 - rest));
    return (address[whole] & mask) == (network[whole] & mask);
}

std::string v4_kind(const uint8_t *a) {
    if (a[0] == 127) return "loopback";
    if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xF0) == 16) || (a[0] == 192 && a[1] == 168)) return "private";
    if (a[0] == 169 && a[1] == 254) return "link-local";
    if (a[0] == 0) return "unspecified";
    if (a[0] == 100 && (a[1] & 0xC0) == 64) return "shared address space";
    if (a[0] >= 224) return "multicast or reserved";
    if (a[0] == 192 && a[1] == 0 && a[2] == 0) return "IETF protocol assignments";
    if (a[0] == 198 && (a[1] & 0xFE) == 18) return "benchmarking";
    return "";
}

}  // namespace

EgressPolicy EgressPolicy::parse(std::string_view allow_list) {
    EgressPolicy policy;
    while (!allow_list.empty()) {
        size_t comma = allow_list.find(',');
        std::string entry(allow_list.substr(0, comma));
        allow_list = comma == std::string_view::npos ? std::string_view() : allow_list.substr(comma + 1);
        while (!entry.empty() && entry.front() == ' ') entry.erase(entry.begin());
        while (!entry.empty() && entry.back() == ' ') entry.pop_back();
        if (entry.empty()) continue;
        size_t slash = entry.find('/');
        std::string host = entry.substr(0, slash);
        Range range{};
        range.v6 = host.find(':') != std::string::npos;
        int max_prefix = range.v6 ? 128 : 32;
        if (inet_pton(range.v6 ? AF_INET6 : AF_INET, host.c_str(), range.bytes.data()) != 1)
            throw std::invalid_argument("\"" + entry + "\" is not an address or CIDR");
        range.prefix = max_prefix;
        if (slash != std::string::npos) {
            try {
                range.prefix = std::stoi(entry.substr(slash + 1));
            } catch (...) {
                range.prefix = -1;
            }
            if (range.prefix < 0 || range.prefix > max_prefix)
                throw std::invalid_argument("\"" + entry + "\" has a bad prefix length");
        }
        policy.allow_.push_back(range);
    }
    return policy;
}

std::string EgressPolicy::special_kind(const sockaddr *address) {
    if (address->sa_family == AF_INET)
        return v4_kind(reinterpret_cast<const uint8_t *>(&reinterpret_cast<const sockaddr_in *>(address)->sin_addr));
    if (address->sa_family != AF_INET6) return "not an IP address";
    const uint8_t *a = reinterpret_cast<const sockaddr_in6 *>(address)->sin6_addr.s6_addr;
    static const uint8_t zero[16] = {};
    if (std::memcmp(a, zero, 15) == 0 && (a[15] == 0 || a[15] == 1)) return a[15] ? "loopback" : "unspecified";
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (std::memcmp(a, mapped, 12) == 0) {  // ::ffff:10.0.0.1 is 10.0.0.1
        std::string kind = v4_kind(a + 12);
        return kind;
    }
    if ((a[0] & 0xFE) == 0xFC) return "private";                     // fc00::/7
    if (a[0] == 0xFE && (a[1] & 0xC0) == 0x80) return "link-local";  // fe80::/10
    if (a[0] == 0xFF) return "multicast";
    return "";
}

bool EgressPolicy::allowed(const sockaddr *address) const {
    if (special_kind(address).empty()) return true;
    for (const Range &range : allow_) {
        if (address->sa_family == AF_INET && !range.v6 &&
            prefix_matches(reinterpret_cast<const uint8_t *>(&reinterpret_cast<const sockaddr_in *>(address)->sin_addr),
                           range.bytes.data(), range.prefix))
            return true;
        if (address->sa_family == AF_INET6 && range.v6 &&
            prefix_matches(reinterpret_cast<const sockaddr_in6 *>(address)->sin6_addr.s6_addr, range.bytes.data(),
                           range.prefix))
            return true;
    }
    return false;
}

}  // namespace flowgres::executor
