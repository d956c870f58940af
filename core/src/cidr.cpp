// CIDR parsing and matching (cidr.hpp).
#include "flowgres/cidr.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <stdexcept>

namespace flowgres {
namespace {

constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};

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

IpAddress unmapped(IpAddress address) {
    if (address.v6 && std::memcmp(address.bytes.data(), kMappedPrefix, 12) == 0) {
        std::array<uint8_t, 16> v4{};
        std::memcpy(v4.data(), address.bytes.data() + 12, 4);
        address.bytes = v4;
        address.v6 = false;
    }
    return address;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    if (text.empty() || text.size() > 45) return std::nullopt;
    std::string copy(text);
    IpAddress address;
    if (inet_pton(AF_INET, copy.c_str(), address.bytes.data()) == 1) return address;
    if (inet_pton(AF_INET6, copy.c_str(), address.bytes.data()) != 1) return std::nullopt;
    address.v6 = true;
    return unmapped(address);
}

std::optional<IpAddress> IpAddress::from(const sockaddr *address) {
    IpAddress result;
    if (address->sa_family == AF_INET) {
        std::memcpy(result.bytes.data(), &reinterpret_cast<const sockaddr_in *>(address)->sin_addr, 4);
        return result;
    }
    if (address->sa_family != AF_INET6) return std::nullopt;
    result.v6 = true;
    std::memcpy(result.bytes.data(), reinterpret_cast<const sockaddr_in6 *>(address)->sin6_addr.s6_addr, 16);
    return unmapped(result);
}

std::optional<CidrRange> CidrRange::parse(std::string_view text) {
    text = trim(text);
    if (text.empty() || text.size() > 49) return std::nullopt;
    size_t slash = text.find('/');
    std::string host(text.substr(0, slash));
    CidrRange range;
    range.v6 = host.find(':') != std::string::npos;
    int max_prefix = range.v6 ? 128 : 32;
    if (inet_pton(range.v6 ? AF_INET6 : AF_INET, host.c_str(), range.bytes.data()) != 1) return std::nullopt;
    range.prefix = max_prefix;
    if (slash != std::string_view::npos) {
        std::string_view digits = text.substr(slash + 1);
        if (digits.empty() || digits.size() > 3) return std::nullopt;
        int prefix = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') return std::nullopt;
            prefix = prefix * 10 + (c - '0');
        }
        if (prefix > max_prefix) return std::nullopt;
        range.prefix = prefix;
    }
    // ::ffff:198.51.100.0/120 is 198.51.100.0/24.
    if (range.v6 && range.prefix >= 96 && std::memcmp(range.bytes.data(), kMappedPrefix, 12) == 0) {
        std::array<uint8_t, 16> v4{};
        std::memcpy(v4.data(), range.bytes.data() + 12, 4);
        range.bytes = v4;
        range.v6 = false;
        range.prefix -= 96;
    }
    return range;
}

bool CidrRange::contains(const IpAddress &address) const {
    return address.v6 == v6 && prefix_matches(address.bytes.data(), bytes.data(), prefix);
}

std::string rate_limit_subject(std::string_view address) {
    auto parsed = IpAddress::parse(address);
    if (!parsed) return std::string(address);
    char text[INET6_ADDRSTRLEN] = {};
    if (!parsed->v6) {
        inet_ntop(AF_INET, parsed->bytes.data(), text, sizeof(text));
        return text;
    }
    std::array<uint8_t, 16> network{};
    std::memcpy(network.data(), parsed->bytes.data(), 8);
    inet_ntop(AF_INET6, network.data(), text, sizeof(text));
    return std::string(text) + "/64";
}

CidrList CidrList::parse(std::string_view list) {
    CidrList result;
    while (!list.empty()) {
        size_t comma = list.find(',');
        std::string_view entry = trim(list.substr(0, comma));
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
        if (entry.empty()) continue;
        auto range = CidrRange::parse(entry);
        if (!range) {
            bool has_prefix = entry.find('/') != std::string_view::npos &&
                              IpAddress::parse(entry.substr(0, entry.find('/'))).has_value();
            throw std::invalid_argument("\"" + std::string(entry) + "\"" +
                                        (has_prefix ? " has a bad prefix length" : " is not an address or CIDR"));
        }
        result.ranges_.push_back(*range);
    }
    return result;
}

CidrList CidrList::of_entries(const std::vector<std::string> &entries) {
    CidrList result;
    for (const auto &entry : entries)
        if (auto range = CidrRange::parse(entry)) result.ranges_.push_back(*range);
    return result;
}

bool CidrList::contains(const IpAddress &address) const {
    for (const CidrRange &range : ranges_)
        if (range.contains(address)) return true;
    return false;
}

bool CidrList::contains(const sockaddr *address) const {
    auto parsed = IpAddress::from(address);
    return parsed && contains(*parsed);
}

bool CidrList::contains(std::string_view address) const {
    auto parsed = IpAddress::parse(address);
    return parsed && contains(*parsed);
}

}  // namespace flowgres
