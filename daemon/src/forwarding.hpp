// The client address of a request: the runtime trusts forwarding headers only from configured
// proxies (trusted_proxies, a CidrList).
#pragma once

#include <string>
#include <string_view>

#include "flowgres/cidr.hpp"

namespace flowgres::daemon {

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
