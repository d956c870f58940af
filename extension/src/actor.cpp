// Resolution of the acting user from roles, the flowgres.actor setting and users.pg_role.
#include <string>

#include "actor.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "guard.hpp"
#include "spi.hpp"

extern "C" {
#include "storage/proc.h"
}

namespace flowgres {
namespace {

struct CallerRole {
    std::string name;
    bool may_set_actor = false;  // flowgres_service member or superuser
    bool is_operator = false;    // superuser or BYPASSRLS
    std::string actor_setting;
};

CallerRole caller_role() {
    struct Raw {
        char *name;
        bool service;
        bool super;
        bool bypass;
        const char *setting;
    };
    Raw raw = guard([] {
        Oid outer = GetOuterUserId();
        Oid service = get_role_oid("flowgres_service", true);
        Raw out;
        out.name = GetUserNameFromId(outer, false);
        out.super = superuser_arg(outer);
        out.bypass = has_bypassrls_privilege(outer);
        out.service = OidIsValid(service) && has_privs_of_role(outer, service);
        out.setting = GetConfigOption("flowgres.actor", true, false);
        return out;
    });
    CallerRole role;
    role.name = raw.name;
    role.may_set_actor = raw.service || raw.super;
    role.is_operator = raw.super || raw.bypass;
    role.actor_setting = raw.setting ? raw.setting : "";
    return role;
}

// The user api_key_authenticate found active and made the actor, in the transaction it did:
// find_actor need not read that user again in the same transaction.
struct VerifiedActor {
    std::string user_id;
    LocalTransactionId transaction = InvalidLocalTransactionId;
};
VerifiedActor verified_actor;

bool verified_in_this_transaction(const std::string &user_id) {
    return verified_actor.transaction == MyProc->lxid && verified_actor.transaction != InvalidLocalTransactionId &&
           verified_actor.user_id == user_id;
}

}  // namespace

std::optional<Actor> find_actor() {
    CallerRole role = caller_role();
    if (role.may_set_actor && !role.actor_setting.empty()) {
        // 'operator' is how the daemon acts for its bootstrap admin key (configuration, not a
        // stored user); only roles trusted to set the actor can use it.
        if (role.actor_setting == "operator") return Actor{Actor::Kind::system, "", role.name};
        // A service that names a user must name a real, active one: never fall back silently.
        if (!is_uuid(role.actor_setting))
            throw Error(ErrorCode::UNAUTHENTICATED, "flowgres.actor is not a user id");
        if (verified_in_this_transaction(role.actor_setting)) return Actor{Actor::Kind::user, role.actor_setting, role.name};
        auto status = query_value("select status from flowgres.users where id = $1::uuid", {role.actor_setting});
        if (!status || *status != "active")
            throw Error(ErrorCode::UNAUTHENTICATED, "flowgres.actor names no active user");
        return Actor{Actor::Kind::user, role.actor_setting, role.name};
    }
    auto mapped = query_value("select id from flowgres.users where pg_role = $1 and status = 'active'", {role.name});
    if (mapped) return Actor{Actor::Kind::user, *mapped, role.name};
    if (role.is_operator) return Actor{Actor::Kind::system, "", role.name};
    return std::nullopt;
}

Actor require_actor() {
    auto actor = find_actor();
    if (!actor)
        throw Error(ErrorCode::UNAUTHENTICATED,
                    "this role acts for no flowgres user (map it with users.pg_role or set flowgres.actor)");
    return *actor;
}

bool caller_runs_executions() { return caller_role().may_set_actor; }

Actor require_system_actor() {
    Actor actor = require_actor();
    if (!actor.is_system())
        throw Error(ErrorCode::PERMISSION_DENIED, "only the platform operator (a superuser or BYPASSRLS role) may do this");
    return actor;
}

}  // namespace flowgres

namespace flowgres {

void set_verified_actor(const std::string &user_id) {
    set_transaction_setting("flowgres.actor", user_id);
    verified_actor = VerifiedActor{user_id, MyProc->lxid};
}

}  // namespace flowgres
