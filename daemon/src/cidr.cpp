// CIDR matching and the forwarding-chain walk.
#include "cidr.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <stdexcept>

namespace flowgres::daemon {
namespace {

bool prefix_matches(const uint8_t *address, const uint8_t *network, int prefix) {
    int whole = prefix / 8, rest = prefix % 8;
    if (std::memcmp(address, network, static_cast<size_t>(whole)) != 0) return false;
    if (rest == 0) return true;
    uint8_t mask = static_cast<uint8_t>(0xFF << (8 - rest));
    return (address[whole] & mask) == (network[whole] & mask);
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

// One hop of a forwarding header as a bare address: strips quotes, [v6] brackets and ports.
std::string bare_address(std::string_view hop) {
    hop = trim(hop);
    if (hop.size() >= 2 && hop.front() == '"' && hop.back() == '"') hop = hop.substr(1, hop.size() - 2);
    if (!hop.empty() && hop.front() == '[') {
        size_t close = hop.find(']');
        return close == std::string_view::npos ? std::string() : std::string(hop.substr(1, close - 1));
    }
    if (hop.find(':') != hop.rfind(':')) return std::string(hop);  // IPv6 without brackets
    return std::string(hop.substr(0, hop.find(':')));              // IPv4, maybe with a port
}

bool is_address(const std::string &text) {
    uint8_t buffer[16];
    return inet_pton(AF_INET, text.c_str(), buffer) == 1 || inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

// The hops of the chain, left (the first client) to right (the last proxy).
std::vector<std::string> forwarding_chain(const ForwardingHeaders &headers) {
    std::vector<std::string> hops;
    if (!headers.forwarded.empty()) {
        // Forwarded: for=a;proto=https, for="[2001:db8::1]:443" — one element per hop.
        std::string_view rest = headers.forwarded;
        while (!rest.empty()) {
            size_t comma = rest.find(',');
            std::string_view element = rest.substr(0, comma);
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
            std::string address;
            while (!element.empty()) {
                size_t semicolon = element.find(';');
                std::string_view pair = trim(element.substr(0, semicolon));
                element = semicolon == std::string_view::npos ? std::string_view() : element.substr(semicolon + 1);
                if (pair.size() > 4 &&
                    (pair.substr(0, 4) == "for=" || pair.substr(0, 4) == "For=" || pair.substr(0, 4) == "FOR="))
                    address = bare_address(pair.substr(4));
            }
            hops.push_back(address);
        }
        return hops;
    }
    std::string_view rest = headers.x_forwarded_for;
    while (!rest.empty()) {
        size_t comma = rest.find(',');
        hops.push_back(bare_address(rest.substr(0, comma)));
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    return hops;
}

}  // namespace

CidrList CidrList::parse(std::string_view list) {
    CidrList result;
    while (!list.empty()) {
        size_t comma = list.find(',');
        std::string entry(trim(list.substr(0, comma)));
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
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
        result.ranges_.push_back(range);
    }
    return result;
}

bool CidrList::contains(const sockaddr *address) const {
    for (const Range &range : ranges_) {
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

bool CidrList::contains(std::string_view address) const {
    std::string text(address);
    sockaddr_storage storage{};
    auto *v4 = reinterpret_cast<sockaddr_in *>(&storage);
    auto *v6 = reinterpret_cast<sockaddr_in6 *>(&storage);
    if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
    } else if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
    } else {
        return false;
    }
    return contains(reinterpret_cast<sockaddr *>(&storage));
}

std::string client_address(std::string_view peer, const ForwardingHeaders &headers, const CidrList &trusted_proxies) {
    std::string client(peer);
    if (!trusted_proxies.contains(peer)) return client;
    std::vector<std::string> hops = forwarding_chain(headers);
    for (auto hop = hops.rbegin(); hop != hops.rend(); ++hop) {
        if (!is_address(*hop)) break;  // garbage (or "unknown"): stop at the last trusted hop
        client = *hop;
        if (!trusted_proxies.contains(*hop)) break;
    }
    return client;
}

}  // namespace flowgres::daemon
