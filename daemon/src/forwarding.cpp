// The forwarding-chain walk (forwarding.hpp).
#include "forwarding.hpp"

#include <string>
#include <vector>

namespace flowgres::daemon {
namespace {

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

bool is_address(const std::string &text) { return IpAddress::parse(text).has_value(); }

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

std::string requested_host(std::string_view peer, const HostHeaders &headers, const CidrList &trusted_proxies) {
    if (!trusted_proxies.contains(peer)) return std::string(trim(headers.host));
    if (!headers.forwarded.empty()) {
        std::string_view last = headers.forwarded.substr(headers.forwarded.rfind(',') + 1);
        while (!last.empty()) {
            size_t semicolon = last.find(';');
            std::string_view pair = trim(last.substr(0, semicolon));
            last = semicolon == std::string_view::npos ? std::string_view() : last.substr(semicolon + 1);
            if (pair.size() > 5 && (pair.substr(0, 5) == "host=" || pair.substr(0, 5) == "Host=" || pair.substr(0, 5) == "HOST=")) {
                std::string_view value = pair.substr(5);
                if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
                return std::string(value);
            }
        }
    }
    if (!headers.x_forwarded_host.empty())
        return std::string(trim(headers.x_forwarded_host.substr(headers.x_forwarded_host.rfind(',') + 1)));
    return std::string(trim(headers.host));
}

}  // namespace flowgres::daemon
