// Per-backend caches of the rows every request reads and almost nothing writes: workspaces by
// slug, apps with their access policies, versions' UI schemas and workflows, and plan limits
// (the runtime); API keys by hash and a caller's role in a workspace (the management API).
// A hit costs no table read.
//
// Invalidation is one generation counter in shared memory. Every write to a table the caches
// are built from (workspaces, apps, app_access_policies, app_domains, billing_plans, workspace_quotas,
// budgets; what a visitor's run is handed before it starts: llm_providers, llm_models,
// llm_model_switches, workspace_secrets, safety_rules; and api_keys, users,
// workspace_members, workspace_roles, app_versions, where a key's last use is the one write
// that moves nothing) fires a trigger, flowgres.catalog_changed(), that marks the writing
// transaction; when it commits, after its changes became visible to new snapshots, the
// counter moves on. A cache reads the counter before it reads a table, and drops everything
// when the counter has moved since it was filled. So an entry is never older than the last
// committed change it could have seen:
//   - a change committed before the counter was read is in the rows read after it;
//   - a change committed after that moves the counter, and the next lookup reloads.
// A transaction that changed a catalogue table itself reads around the caches until it ends
// (its own changes are not committed, so they must not be cached nor hidden by the cache).
// Such changes cannot be PREPAREd: the commit would happen where nobody moves the counter.
// Versions are immutable, so what is cached of them stays true for as long as the id exists.
//
// Visitors' sessions (app_sessions) are cached the same way under a counter of their own, so
// that a new session a minute (pages start one each) does not empty the catalogue's caches:
// flowgres.sessions_changed() moves it when a session is blocked or unblocked, moved to
// another app, shortened, or deleted (runtime_admit.cpp says what else keeps those entries
// true).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

namespace flowgres {

// The tables a cache is built from, each with its generation counter.
enum class CachedTables { catalog, sessions };

// The generation to stamp rows read from now on; nullopt while this transaction has changed
// one of those tables (read, do not cache).
std::optional<uint64_t> cache_generation(CachedTables tables);

// Whether a row whose xmin (as text) is `xmin` was written by this transaction or one of its
// subtransactions: not committed, so not to be cached.
bool written_by_this_transaction(const std::string &xmin);

// The transaction's start (SQL now()) in microseconds since the Unix epoch.
int64_t transaction_start_micros();

// From _PG_init: the counters' shared memory and the transaction callback that moves them.
void register_cache_generations();

// One cache: key → value, dropped whole when the generation moves or it holds `capacity`
// entries. Only found rows are cached (load returns nullopt for none): names that do not
// exist, which anyone can send, never push real entries out.
template <typename Value>
class CatalogCache {
public:
    explicit CatalogCache(size_t capacity, CachedTables tables = CachedTables::catalog)
        : capacity_(capacity), tables_(tables) {}

    template <typename Load>
    std::optional<Value> get(const std::string &key, Load load) {
        return get(key, load, [](const Value &) { return true; });
    }

    // As above, for a value that also goes stale with time (a secret's expiry): an entry
    // `fresh` says no to is loaded again.
    template <typename Load, typename Fresh>
    std::optional<Value> get(const std::string &key, Load load, Fresh fresh) {
        return get(key, load, fresh, [](const Value &) { return true; });
    }

    // As above, for values of which some must not be kept (`keep` says no: read again next
    // time), such as rows this transaction wrote and has not committed.
    template <typename Load, typename Fresh, typename Keep>
    std::optional<Value> get(const std::string &key, Load load, Fresh fresh, Keep keep) {
        std::optional<uint64_t> generation = cache_generation(tables_);
        if (!generation) return load();
        if (*generation != generation_) {
            entries_.clear();
            generation_ = *generation;
        }
        if (auto found = entries_.find(key); found != entries_.end()) {
            if (fresh(found->second)) return found->second;
            entries_.erase(found);
        }
        std::optional<Value> loaded = load();
        if (!loaded || !keep(*loaded)) return loaded;
        if (entries_.size() >= capacity_) entries_.clear();
        entries_.emplace(key, *loaded);
        return loaded;
    }

    // Drops one entry: this backend is about to change what it holds.
    void forget(const std::string &key) { entries_.erase(key); }

private:
    size_t capacity_;
    CachedTables tables_;
    uint64_t generation_ = UINT64_MAX;
    std::unordered_map<std::string, Value> entries_;
};

}  // namespace flowgres
