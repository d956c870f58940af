// Address ranges: CIDR blocks and single addresses, IPv4 and IPv6, and lists of them. One
// parser and one matcher for every user: the egress policy of http steps, trusted proxies,
// and the access policy's block and gray lists checked at runtime admission. An IPv4-mapped
// IPv6 address (::ffff:198.51.100.7) is the IPv4 address it carries.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flowgres {

struct IpAddress {
    bool v6 = false;
    std::array<uint8_t, 16> bytes{};  // IPv4 in the first 4

    // Textual IPv4 or IPv6 (an IPv4-mapped IPv6 address becomes IPv4); nullopt when malformed.
    static std::optional<IpAddress> parse(std::string_view text);
    static std::optional<IpAddress> from(const sockaddr *address);
};

struct CidrRange {
    bool v6 = false;
    std::array<uint8_t, 16> bytes{};
    int prefix = 0;

    // "198.51.100.0/24", "2001:db8::/32" or a single address; nullopt when malformed.
    static std::optional<CidrRange> parse(std::string_view text);
    bool contains(const IpAddress &address) const;
};

// The address as per-address limits count it: an IPv4 address itself, an IPv6 address by its
// /64 ("2001:db8:1:2::/64"), the block one subscriber gets, since a host can move through its
// 2^64 addresses at will. Text that is no address comes back unchanged.
std::string rate_limit_subject(std::string_view address);

class CidrList {
public:
    // Comma-separated addresses or CIDRs; throws std::invalid_argument naming the bad entry.
    static CidrList parse(std::string_view list);
    // Entries one by one (a stored list was checked when written): malformed ones are skipped.
    static CidrList of_entries(const std::vector<std::string> &entries);
    bool contains(const sockaddr *address) const;
    bool contains(std::string_view address) const;  // textual IPv4 or IPv6; false when malformed
    bool contains(const IpAddress &address) const;
    bool empty() const { return ranges_.empty(); }

private:
    std::vector<CidrRange> ranges_;
};

}  // namespace flowgres
