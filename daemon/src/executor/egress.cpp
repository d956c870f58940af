// Address classification (RFC 6890 special-purpose registries) and allow-list matching.
#include "executor/egress.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace flowgres::executor {
namespace {

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
    policy.allow_ = CidrList::parse(allow_list);
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
    if (std::memcmp(a, mapped, 12) == 0) return v4_kind(a + 12);  // ::ffff:10.0.0.1 is 10.0.0.1
    // Addresses that carry an IPv4 address reach it: judged by that address.
    static const uint8_t nat64[12] = {0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
    if (std::memcmp(a, nat64, 12) == 0) return v4_kind(a + 12);    // 64:ff9b::/96, RFC 6052
    if (a[0] == 0x20 && a[1] == 0x02) return v4_kind(a + 2);       // 6to4 2002::/16, RFC 3056
    if (std::memcmp(a, zero, 12) == 0) return "IPv4-compatible";   // ::/96, deprecated (RFC 4291)
    if (a[0] == 0 && a[1] == 0x64 && a[2] == 0xFF && a[3] == 0x9B && a[4] == 0 && a[5] == 1)
        return "local-use NAT64";                                   // 64:ff9b:1::/48, RFC 8215
    if ((a[0] & 0xFE) == 0xFC) return "private";                     // fc00::/7
    if (a[0] == 0xFE && (a[1] & 0xC0) == 0x80) return "link-local";  // fe80::/10
    if (a[0] == 0xFE && (a[1] & 0xC0) == 0xC0) return "site-local";  // fec0::/10, deprecated
    if (a[0] == 0xFF) return "multicast";
    return "";
}

bool EgressPolicy::allowed(const sockaddr *address) const {
    return special_kind(address).empty() || allow_.contains(address);
}

}  // namespace flowgres::executor
