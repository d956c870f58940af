// Who a statement acts for (README "Identity").
//  1. A member of flowgres_service (the daemon's role) or a superuser with the GUC
//     flowgres.actor set acts as that user (the daemon sets it per request with SET LOCAL);
//     the value 'operator' makes it the system actor (the daemon's bootstrap admin key).
//  2. A role mapped to a user (users.pg_role) acts as that user.
//  3. A superuser or BYPASSRLS role with neither is the platform's operator: the system actor,
//     allowed everything, recorded in audit rows by role name.
// The role consulted is the "outer" user: SET ROLE counts, SECURITY DEFINER does not.
#pragma once

#include <optional>
#include <string>

#include "spi.hpp"

namespace flowgres {

struct Actor {
    enum class Kind { system, user };
    Kind kind = Kind::system;
    std::string user_id;    // empty for the system actor
    std::string role_name;  // the PostgreSQL role behind the call

    bool is_system() const { return kind == Kind::system; }
    SqlParam user_param() const { return is_system() ? SqlParam() : SqlParam(user_id); }
};

std::optional<Actor> find_actor();

// Makes `user_id`, just found active by api_key_authenticate, the actor for the rest of the
// transaction (flowgres.actor, as set_config(…, true) sets it; honoured only for the roles
// find_actor trusts), so that find_actor does not read the user again in this transaction.
void set_verified_actor(const std::string &user_id);

// The actor, or UNAUTHENTICATED when the caller maps to no active user.
Actor require_actor();

// The system actor only (user creation, workspace status): else PERMISSION_DENIED.
Actor require_system_actor();

// Whether the calling role is the daemon's (a flowgres_service member) or a superuser: the
// roles that may act for a user, and that run executions.
bool caller_runs_executions();

}  // namespace flowgres
