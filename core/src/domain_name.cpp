// Custom domain names (domain_name.hpp).
#include "flowgres/domain_name.hpp"

#include <idn2.h>

#include <memory>

namespace flowgres {
namespace {

struct IdnFree {
    void operator()(char *text) const { idn2_free(text); }
};
using IdnText = std::unique_ptr<char, IdnFree>;

bool is_ldh(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The label rules of an A-label name; "" when they hold.
std::string label_problem(std::string_view name) {
    if (name.empty()) return "is required";
    if (name.size() > 253) return "must be at most 253 characters (as punycode)";
    size_t labels = 0;
    std::string_view last;
    size_t start = 0;
    while (start <= name.size()) {
        size_t end = name.find('.', start);
        if (end == std::string_view::npos) end = name.size();
        std::string_view label = name.substr(start, end - start);
        if (label.empty()) return "must not have an empty label (two dots, or a dot at the start)";
        if (label.size() > 63) return "must have labels of at most 63 characters";
        for (char c : label)
            if (!is_ldh(c)) return "must have labels of letters, digits and hyphens only";
        if (label.front() == '-' || label.back() == '-') return "must not have a label starting or ending with a hyphen";
        if (label.size() >= 4 && label[2] == '-' && label[3] == '-' && !label.starts_with("xn--"))
            return "must not have a label with hyphens in the third and fourth places (reserved for xn--)";
        labels++;
        last = label;
        start = end + 1;
    }
    if (labels < 2) return "must have at least two labels (example.com)";
    bool numeric = true;
    for (char c : last) numeric = numeric && is_digit(c);
    if (numeric) return "must be a domain name, not an IP address";
    return "";
}

}  // namespace

DomainNameCheck check_domain_name(std::string_view input) {
    DomainNameCheck check;
    if (input.empty()) {
        check.problem = "is required";
        return check;
    }
    if (input.size() > kMaxDomainInputBytes) {
        check.problem = "must be at most 253 characters";
        return check;
    }
    bool ascii = true;
    for (char c : input) {
        auto byte = static_cast<unsigned char>(c);
        if (byte >= 0x80) {
            ascii = false;
            continue;
        }
        if (c == '*') {
            check.problem = "must not be a wildcard: bind each name";
            return check;
        }
        if (c == ':' || c == '[' || c == ']') {
            check.problem = "must be a domain name, not an IP address or a host with a port";
            return check;
        }
        if (c == '/' || c == '\\' || c == '@' || c == '?' || c == '#') {
            check.problem = "must be a bare domain name, not a URL";
            return check;
        }
        if (byte <= 0x20 || byte == 0x7f) {
            check.problem = "must not contain spaces or control characters";
            return check;
        }
    }
    std::string name(input);
    if (name.back() == '.') name.pop_back();  // the root's dot: example.com. is example.com
    if (!ascii) {
        char *converted = nullptr;
        int status = idn2_to_ascii_8z(name.c_str(), &converted, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
        IdnText owned(converted);
        if (status != IDN2_OK) {
            check.problem = std::string("is not a valid internationalized domain name (") + idn2_strerror(status) + ")";
            return check;
        }
        name = converted;
    }
    for (char &c : name)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (std::string problem = label_problem(name); !problem.empty()) {
        check.problem = problem;
        return check;
    }
    // Punycode labels must decode: "xn--" followed by garbage is not a name anybody can own.
    std::string unicode = name;
    if (name.starts_with("xn--") || name.find(".xn--") != std::string::npos) {
        char *decoded = nullptr;
        int status = idn2_to_unicode_8z8z(name.c_str(), &decoded, 0);
        IdnText owned(decoded);
        if (status != IDN2_OK) {
            check.problem = std::string("has an invalid xn-- label (") + idn2_strerror(status) + ")";
            return check;
        }
        unicode = decoded;
    }
    check.name = DomainName{std::move(name), std::move(unicode)};
    return check;
}

std::vector<std::string> host_list(std::string_view comma_separated) {
    std::vector<std::string> hosts;
    while (!comma_separated.empty()) {
        size_t comma = comma_separated.find(',');
        std::string_view entry = comma_separated.substr(0, comma);
        comma_separated = comma == std::string_view::npos ? std::string_view() : comma_separated.substr(comma + 1);
        while (!entry.empty() && (entry.front() == ' ' || entry.front() == '\t')) entry.remove_prefix(1);
        while (!entry.empty() && (entry.back() == ' ' || entry.back() == '\t' || entry.back() == '.')) entry.remove_suffix(1);
        if (entry.empty()) continue;
        std::string host(entry);
        for (char &c : host)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        hosts.push_back(std::move(host));
    }
    return hosts;
}

bool domain_within(std::string_view domain, std::string_view host) {
    if (host.empty()) return false;
    if (domain == host) return true;
    return domain.size() > host.size() && domain.ends_with(host) && domain[domain.size() - host.size() - 1] == '.';
}

std::string request_host(std::string_view header) {
    if (header.empty() || header.size() > 300 || header.front() == '[') return "";
    std::string_view host = header;
    if (size_t colon = host.find(':'); colon != std::string_view::npos) {
        std::string_view port = host.substr(colon + 1);
        if (port.empty() || port.size() > 5) return "";
        for (char c : port)
            if (!is_digit(c)) return "";
        host = host.substr(0, colon);
    }
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);
    std::string name(host);
    for (char &c : name)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (!label_problem(name).empty()) return "";
    return name;
}

}  // namespace flowgres
