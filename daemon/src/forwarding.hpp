// The client address and the requested host of a request: forwarding headers are trusted only
// from configured proxies (trusted_proxies, a CidrList).
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

// The host a request was sent to: its Host header, unless the peer is a trusted proxy that
// says which host the client asked for (the last element's host= of Forwarded, else the last
// X-Forwarded-Host): what the proxy nearest to us wrote. Not normalized (request_host()).
struct HostHeaders {
    std::string_view host;
    std::string_view forwarded;
    std::string_view x_forwarded_host;
};
std::string requested_host(std::string_view peer, const HostHeaders &headers, const CidrList &trusted_proxies);

}  // namespace flowgres::daemon
