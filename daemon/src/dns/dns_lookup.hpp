// DNS questions for custom domain checks (README "Custom domains"), asked with c-ares of the
// configured resolver (dns_resolver, host:port; empty: the system's, /etc/resolv.conf).
// Blocking, bounded by the timeout: run on a thread of the daemon's own (domain_checks.cpp),
// never on a loop. Not for: the host names http steps and providers connect to (libuv's
// getaddrinfo resolves those).
#pragma once

#include <string>
#include <vector>

namespace flowgres::daemon::dns {

struct Answer {
    bool ok = false;                   // the server answered (records, or none)
    std::vector<std::string> records;  // TXT: each record's strings joined; CNAME: targets, lowercase, no final dot
    std::string error;                 // why not ok, or "" (NXDOMAIN and "no such record" are ok with no records)
};

Answer lookup_txt(const std::string &resolver, const std::string &name, int timeout_ms);
Answer lookup_cname(const std::string &resolver, const std::string &name, int timeout_ms);

}  // namespace flowgres::daemon::dns
