// Custom domain names as flowgres binds and routes them (README "Custom domains"). One rule
// set for the extension (binding) and the daemon (Host routing, SNI):
//   - stored and compared as A-labels: lowercase ASCII, IDN converted to punycode (IDNA 2008,
//     libidn2, NFC), without the trailing dot;
//   - 1 to 253 characters, labels of 1 to 63 letters, digits and hyphens, no hyphen at either
//     end, "xx--" only as a valid "xn--" label, at least two labels;
//   - no IP literal (a numeric last label, brackets, a colon), no wildcard, no port, no path.
// Linear in the input, which is refused past kMaxDomainInputBytes before any conversion.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flowgres {

inline constexpr size_t kMaxDomainInputBytes = 1024;

struct DomainName {
    std::string ascii;    // what is stored, matched and asked for in DNS and ACME
    std::string unicode;  // as people read it (equal to ascii for plain ASCII names)
};

struct DomainNameCheck {
    std::optional<DomainName> name;
    std::string problem;  // why not, when name is empty: "must …" / "is …", for a field error
};

DomainNameCheck check_domain_name(std::string_view input);

// "Apps.Example.com, flowgres.test" → {"apps.example.com", "flowgres.test"}: a list of host
// names as settings give them (platform_host, flowgres.platform_hosts), trimmed, lowercase,
// without a final dot, empty entries dropped.
std::vector<std::string> host_list(std::string_view comma_separated);

// Whether `domain` is `host` or a name below it (both normalized A-labels).
bool domain_within(std::string_view domain, std::string_view host);

// The host a request names (a Host header, or a host from Forwarded / X-Forwarded-Host), as
// the A-label name to look up: lowercase, without port or trailing dot; empty when it is not a
// domain name (an IP literal, garbage).
std::string request_host(std::string_view header);

}  // namespace flowgres
