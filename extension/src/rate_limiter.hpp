// Fixed-window rate limits in shared memory (README "Public runtime"): one table for the whole server, so
// every daemon and backend on this database counts against the same windows, and no table row
// is written or locked per request. Windows are aligned to the epoch (a 60 s window starts at
// :00), so every counter of a policy resets at the same moment.
//
// The table is flowgres.rate_limit_slots entries (a server setting), split into partitions of
// 64 with a spinlock each: a hit takes one partition's lock for a short scan of up to
// kProbeLength entries, never a lock shared by all. A key lives in its partition's probe run;
// when no entry there is free or expired, no open window is evicted (that would start its
// count over, and a flood of new keys could reset a victim's): the key counts in the
// partition's spill slot, shared by every key that spilled, so it is limited at least as
// strictly as on its own. Memory stays bounded; size flowgres.rate_limit_slots so that spills
// (rate_limit_stats) stay rare.
// Keys are 64-bit hashes of the caller's key text; two keys sharing a hash would share a
// counter (odds ~ n² / 2⁶⁵).
#pragma once

#include <cstdint>
#include <string>

namespace flowgres {

struct RateLimitHit {
    bool allowed = false;
    int64_t count = 0;       // hits in this window, this one included (allowed or not)
    int64_t limit = 0;
    int64_t remaining = 0;   // limit - count, never below 0
    int64_t reset_at = 0;    // epoch seconds when this window ends
    int64_t retry_after = 0; // seconds until then (at least 1) when refused, else 0
};

struct RateLimitStats {
    int64_t slots = 0;
    int64_t in_use = 0;  // entries whose window has not ended
    int64_t spills = 0;  // hits counted in a partition's shared spill slot (since start-up)
};

// Counts a hit of `key` against `limit` per `window_seconds` at `now_seconds` (epoch). Never
// raises: callable anywhere (it holds a spinlock only around plain memory reads and writes).
RateLimitHit rate_limit_hit(const char *key, int key_length, int64_t limit, int64_t window_seconds,
                            int64_t now_seconds);
// As rate_limit_hit, for `amount` units at once (tokens, say): allowed when the window's count
// plus `amount` stays within `limit`; a refused take counts only when `count_refused` (requests
// do: hammering a closed window keeps it closed; tokens not sent do not).
RateLimitHit rate_limit_take(const char *key, int key_length, int64_t amount, bool count_refused, int64_t limit,
                             int64_t window_seconds, int64_t now_seconds);
RateLimitStats rate_limit_stats(int64_t now_seconds);

// What rate_limit_hit answered for the hit `key` already had in this window, counting nothing
// (a request admitted twice, as a CAPTCHA's second round is, counts once).
RateLimitHit rate_limit_peek(const char *key, int key_length, int64_t limit, int64_t window_seconds,
                             int64_t now_seconds);

// The hits `key` has in the window of `window_seconds` that contains `at_seconds`, when the
// table still holds that window (0 when it never had it, moved on, or evicted it). Counts
// nothing: for reading the previous window, or a counter other requests move.
int64_t rate_limit_count(const char *key, int key_length, int64_t window_seconds, int64_t at_seconds);

// The clock, in epoch seconds.
int64_t epoch_seconds_now();
// The transaction's start (SQL now()) as ISO 8601 in UTC with microseconds, as jsonb shows a
// timestamptz: "2026-11-29T20:13:29.123456+00:00".
std::string transaction_start_iso();

// From _PG_init: the setting, and the shared-memory request and start-up hooks.
void register_rate_limiter();

}  // namespace flowgres
