// What the functions of custom domains share (app_domain.cpp: binding, checks, activation,
// blocks; domain_certificate.cpp: certificates).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "actor.hpp"
#include "boundary.hpp"
#include "flowgres/permissions.hpp"
#include "permission.hpp"

namespace flowgres {

// Who may act on a domain: members with app_publish; the operator acts on any.
inline constexpr std::string_view kManageDomains = permission::app_publish;

struct DomainRow {
    std::string id;
    std::string workspace_id;
    std::string app_id;
    std::string domain;
    std::string status;
    std::optional<std::string> claimed_by;  // of a DNS check
    bool claim_live = false;
    std::optional<std::string> replaced_domain_id;
    std::optional<std::string> status_before_block;
};

// The domain (FOR UPDATE when `lock`), if the actor may see it: a domain of an app in a
// workspace the actor is no member of is DOMAIN_NOT_FOUND, as is one of another app when the
// nested route names an app (`app_id`); a member lacking `permission` is PERMISSION_DENIED.
DomainRow find_domain(const Actor &actor, const std::string &domain_id, const std::optional<std::string> &app_id,
                      std::string_view permission, WorkspaceUse use, bool lock);

// The domain as its functions answer it (flowgres.app_domain_document).
std::string document_of(const std::string &domain_id);

// Routing and certificate caches of every daemon drop what they hold for the name
// (NOTIFY flowgres_domains).
void announce(const std::string &domain);

// An audit row on the domain; `extra` continues its metadata object (",\"key\":value…").
void audit_domain(const Actor &actor, const DomainRow &domain, std::string_view action, const std::string &extra = "");

// A runtime event of the domain's app: details {domain_id, domain}, which `extra` continues.
void record_event(const DomainRow &domain, std::string_view event_type, std::string_view severity,
                  const std::string &extra);

// The claimant of a DNS check or a certificate order: the daemon's name for itself.
std::string required_claimant(CallArgs &args, int position);
// How long such a claim holds (lease_seconds, 1 to 3600; `fallback` when absent): a daemon that
// dies mid-work leaves a claim that runs out, and the sweep takes the domain up again.
long long lease_seconds(CallArgs &args, int position, long long fallback);

}  // namespace flowgres
