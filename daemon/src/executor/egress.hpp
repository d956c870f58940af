// The egress policy of HTTP steps (SSRF; README "Workflows and executions"): a workflow may
// not reach loopback, private, link-local (cloud metadata at 169.254.169.254), unspecified,
// multicast, site-local or other special addresses, nor an IPv6 address that carries such an
// IPv4 address (mapped, NAT64, 6to4), unless configuration allow-lists them (egress_allow,
// CIDRs). Checked on every address actually connected to, after DNS, on every redirect hop.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "flowgres/cidr.hpp"

namespace flowgres::executor {

class EgressPolicy {
public:
    // "127.0.0.0/8,::1/128"; throws std::invalid_argument naming the bad entry.
    static EgressPolicy parse(std::string_view allow_list);
    bool allowed(const sockaddr *address) const;
    // Why an address is refused ("loopback", "private", …), or "" when it is public.
    static std::string special_kind(const sockaddr *address);

private:
    CidrList allow_;
};

}  // namespace flowgres::executor
