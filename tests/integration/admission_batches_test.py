#!/usr/bin/env python3
"""Admissions of the public runtime go to the database in batches (README "Runtime executes"):
requests that arrive while a worker's admissions are being decided leave together, as one
statement; each request still gets its own answer (allowed, refused, not found), and an
admission that fails the whole statement fails alone: the batch is admitted again one by one."""

import re
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from harness import main, psql
from runtime_test import RuntimeCase

RATE = {"rate_limit": {"per_ip": {"max_requests": 100000, "window_seconds": 60},
                       "per_session": {"max_requests": 100000, "window_seconds": 60}}}

# Admission writes the row of a run answered 202 (?async=true): "slow" waits there, holding
# the worker's batch in flight; "poison…" fails the statement it is in.
TRAP = """
create function test_admission_trap_fn() returns trigger language plpgsql as $$
begin
    if new.inputs ->> 'name' = 'slow' then perform pg_sleep(1); end if;
    if new.inputs ->> 'name' like 'poison%' then raise exception 'poisoned admission'; end if;
    return new;
end $$;
create trigger test_admission_trap before insert on flowgres.executions
    for each row execute function test_admission_trap_fn();
"""
UNTRAP = "drop trigger if exists test_admission_trap on flowgres.executions; drop function if exists test_admission_trap_fn();"


class AdmissionBatches(RuntimeCase):
    # One worker: every request queues behind the same admissions in flight.
    daemon_settings = {**RuntimeCase.daemon_settings, "workers": 1}

    def counter(self, name):
        _, _, text = self.daemon.request("GET", "/metrics")
        return int(re.search(rf"^{re.escape(name)} (\d+)$", text, re.M).group(1))

    def long_admission_waits(self):
        return (self.counter("flowgres_admission_wait_seconds_count") -
                self.counter('flowgres_admission_wait_seconds_bucket{le="0.1"}'))

    def test_requests_admitted_together_each_get_their_own_answer(self):
        app = self.published("together", policy=RATE)
        self.published("elsewhere", policy=RATE)
        base = f"/runtime/{self.ws_slug}"
        batches, batched = self.counter("flowgres_admission_batches_total"), self.counter("flowgres_admissions_batched_total")
        retries = self.counter("flowgres_admission_batch_retries_total")
        long_waits = self.long_admission_waits()
        psql(self.database, TRAP)
        try:
            slow = threading.Thread(target=self.visit, args=("POST", f"{base}/together?async=true", {"inputs": {"name": "slow"}}))
            slow.start()
            deadline = time.time() + 10
            while time.time() < deadline and psql(self.database, "select count(*) from pg_stat_activity "
                                                                 "where wait_event = 'PgSleep'") != "1":
                time.sleep(0.02)
            # While it sleeps, these wait for it, and then go together.
            requests = ([("POST", f"{base}/together", {"inputs": {"name": f"v{i}"}}) for i in range(20)] +
                        [("POST", f"{base}/together?async=true", {"inputs": {"name": "poison1"}}),
                         ("GET", f"{base}/elsewhere", None),
                         ("POST", f"{base}/missing", {"inputs": {"name": "x"}}),
                         ("POST", f"{base}/together", {"inputs": {}}),
                         ("POST", f"{base}/together?async=true", {"inputs": {"name": "later"}})])
            with ThreadPoolExecutor(max_workers=len(requests)) as pool:
                answers = list(pool.map(lambda r: self.visit(*r), requests))
            slow.join()
        finally:
            psql(self.database, UNTRAP)
        codes = [code for code, _, _ in answers]
        self.assertEqual(codes[:20], [200] * 20, answers[:20])
        self.assertEqual(sorted(body["data"]["outputs"]["out"] for _, _, body in answers[:20]),
                         sorted(f"hello v{i}" for i in range(20)), "each caller gets its own run")
        poison, elsewhere, missing, invalid, later = answers[20:]
        self.assertEqual((poison[0], poison[2]["error_code"]), (500, "INTERNAL_ERROR"), poison)
        self.assertEqual((elsewhere[0], elsewhere[2]["data"]["app"]["name"]), (200, "elsewhere"), elsewhere)
        self.assertEqual((missing[0], missing[2]["error_code"]), (404, "RUNTIME_APP_NOT_FOUND"), missing)
        self.assertEqual((invalid[0], invalid[2]["error_code"]), (422, "VALIDATION_FAILED"), invalid)
        self.assertEqual(later[0], 202, later)
        stored = psql(self.database, "select string_agg(inputs ->> 'name', ',' order by inputs ->> 'name') "
                                     f"from flowgres.executions where app_id = '{app['id']}' "
                                     "and inputs ->> 'name' in ('slow', 'later', 'poison1')")
        self.assertEqual(stored, "later,slow", "the poisoned admission left nothing; the others of its batch ran")
        self.assertGreater((self.counter("flowgres_admissions_batched_total") - batched) -
                           (self.counter("flowgres_admission_batches_total") - batches), 10,
                           "requests that waited shared statements")
        self.assertGreaterEqual(self.counter("flowgres_admission_batch_retries_total") - retries, 1,
                                "the failed batch was admitted again one by one")
        self.assertGreaterEqual(self.long_admission_waits() - long_waits, 20,
                                "the requests behind the sleeping admission waited for it, as the histogram says")
        self.assertEqual(self.visit("POST", f"{base}/together", {"inputs": {"name": "after"}})[0], 200)

    def test_a_quota_holds_across_requests_admitted_together(self):
        _, workspace, key = self.new_user("batched-quota")
        app = self.publish_in(workspace["id"], key, "metered", policy=RATE)
        slug = psql(self.database, f"select slug from flowgres.workspaces where id = '{workspace['id']}'")
        # The slow run spends one request of the quota; twelve remain for the sixty behind it.
        self.ok("PUT", f"/api/v1/workspaces/{workspace['id']}/quotas/requests", {"quota": 13}, self.admin)
        base = f"/runtime/{slug}/metered"
        batched = self.counter("flowgres_admissions_batched_total") - self.counter("flowgres_admission_batches_total")
        psql(self.database, TRAP)
        try:
            slow = threading.Thread(target=self.visit, args=("POST", f"{base}?async=true", {"inputs": {"name": "slow"}}))
            slow.start()
            deadline = time.time() + 10
            while time.time() < deadline and psql(self.database, "select count(*) from pg_stat_activity "
                                                                 "where wait_event = 'PgSleep'") != "1":
                time.sleep(0.02)
            with ThreadPoolExecutor(max_workers=60) as pool:
                answers = list(pool.map(lambda i: self.visit("POST", base, {"inputs": {"name": f"q{i}"}}), range(60)))
            slow.join()
        finally:
            psql(self.database, UNTRAP)
        codes = sorted(code for code, _, _ in answers)
        self.assertEqual(codes, [200] * 12 + [429] * 48)
        self.assertEqual({body["error_code"] for code, _, body in answers if code == 429}, {"QUOTA_EXCEEDED"})
        billed = psql(self.database, "select coalesce(sum(quantity), 0) from flowgres.usage_events "
                                     f"where app_id = '{app['id']}' and dimension = 'requests'")
        self.assertEqual(billed, "13", "exactly the quota, every admitted request billed once")
        self.assertGreater(self.counter("flowgres_admissions_batched_total") -
                           self.counter("flowgres_admission_batches_total") - batched, 10,
                           "requests that waited shared statements")

    def test_a_rate_limit_and_a_changed_block_list_hold_in_batches(self):
        # The batch is one call of runtime_admit_batch, and an app's policy documents are parsed
        # once per backend, keyed by their text (0.37): sixty visitors at once still get
        # exactly the per-IP window, a block list of 10,000 entries changed between two
        # requests counts from the next one, and a hostile input in the same batch is its own
        # refusal.
        limited = self.published("windowed", policy={"rate_limit": {"per_ip": {"max_requests": 15, "window_seconds": 60}}})
        base = f"/runtime/{self.ws_slug}"
        with ThreadPoolExecutor(max_workers=60) as pool:
            answers = list(pool.map(lambda i: self.visit("POST", f"{base}/windowed", {"inputs": {"name": f"w{i}"}}),
                                    range(60)))
        self.assertEqual([code for code, _, _ in answers].count(200), 15, "exactly the window")
        # Past the window the visitor's session is refused, then blocked for its refusals.
        self.assertEqual({(code, body["error_code"]) for code, _, body in answers if code != 200},
                         {(429, "RATE_LIMITED"), (403, "SESSION_BLOCKED")})
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.executions where app_id = '{limited['id']}'"),
                         "15", "every admitted request ran once, no refused one did")

        guarded = self.published("listed", policy=RATE)
        others = [f"10.{i // 256}.{i % 256}.0/24" for i in range(9999)]
        self.assertEqual(self.visit("GET", f"{base}/listed")[0], 200)
        self.ok("PATCH", f"/api/v1/apps/{guarded['id']}/access-policy", {"blocked_ips": others + ["127.0.0.1"]}, self.key)
        requests = [("POST", f"{base}/listed", {"inputs": {"name": f"b{i}"}}) for i in range(20)]
        hostile = {"name": "<script>alert(1)</script>'; drop table flowgres.executions; --" + "x" * 900_000}
        with ThreadPoolExecutor(max_workers=23) as pool:
            answers = list(pool.map(lambda r: self.visit(*r), requests +
                                    [("POST", f"{base}/windowed", {"inputs": hostile}),
                                     ("POST", f"{base}/missing", {"inputs": hostile}),
                                     ("POST", f"{base}/listed", {"inputs": {"name": "\u0000"}})]))
        self.assertEqual({(code, body["error_code"]) for code, _, body in answers[:20]}, {(403, "IP_BLOCKED")})
        self.assertIn((answers[20][0], answers[20][2]["error_code"]), {(429, "RATE_LIMITED"), (403, "SESSION_BLOCKED")},
                      "its window is spent")
        self.assertIn(answers[21][0], (404, 413), answers[21][2])
        self.assertEqual((answers[22][0], answers[22][2]["error_code"]), (400, "BAD_REQUEST"), "a NUL is refused at the door")
        self.ok("PATCH", f"/api/v1/apps/{guarded['id']}/access-policy", {"blocked_ips": others}, self.key)
        code, _, body = self.visit("POST", f"{base}/listed", {"inputs": hostile})
        self.assertIn(code, (200, 413, 422), body)
        self.assertEqual(self.visit("POST", f"{base}/listed", {"inputs": {"name": "unblocked"}})[0], 200,
                         "the list without the address counts from the next request")
        self.assertEqual(psql(self.database, "select count(*) > 0 from flowgres.executions"), "t", "nothing was dropped")


if __name__ == "__main__":
    main()
