// Address ranges (CIDR lists such as "127.0.0.0/8,::1/128") and the client address of a
// request. Used by the egress policy of http steps and by the runtime, which trusts
// forwarding headers only from configured proxies.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flowgres::daemon {

class CidrList {
public:
    // Comma-separated addresses or CIDRs; throws std::invalid_argument naming the bad entry.
    static CidrList parse(std::string_view list);
    bool contains(const sockaddr *address) const;
    bool contains(std::string_view address) const;  // textual IPv4 or IPv6; false when malformed
    bool empty() const { return ranges_.empty(); }

private:
    struct Range {
        bool v6;
        std::array<uint8_t, 16> bytes;
        int prefix;
    };
    std::vector<Range> ranges_;
};

// The client of a request: the socket peer, unless the peer is a trusted proxy; then the
// forwarding chain (Forwarded's for=, else X-Forwarded-For) is read from the right, skipping
// trusted proxies, and the first address not trusted is the client. What a client wrote
// further left cannot be spoofed past a trusted proxy that appends. A malformed entry ends
// the walk at the last trusted hop.
struct ForwardingHeaders {
    std::string_view forwarded;        // RFC 7239 Forwarded
    std::string_view x_forwarded_for;  // X-Forwarded-For
};
std::string client_address(std::string_view peer, const ForwardingHeaders &headers, const CidrList &trusted_proxies);

}  // namespace flowgres::daemon
