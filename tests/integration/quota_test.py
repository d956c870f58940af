#!/usr/bin/env python3
"""Quotas, budgets and the usage reports through the real daemon: a request quota used up
(429 QUOTA_EXCEEDED with Retry-After until the month ends) with the database crashing half-way
(the running totals come back from usage_events: nothing lost, nothing doubled); budget alerts
at their thresholds and the spend limit; the usage, metrics and access-stats routes; operator-
only overrides; bad input to each."""

import os
from concurrent.futures import ThreadPoolExecutor
import subprocess
import time

from harness import ROOT, SOCKET_DIR, PG_PORT, main, psql
from runtime_test import RuntimeCase

CLUSTER = os.path.join(ROOT, "scripts", "cluster.sh")
CLUSTER_DIR = os.path.dirname(SOCKET_DIR)


class Quotas(RuntimeCase):

    def execute(self, slug, name="Ada"):
        return self.visit("POST", f"/runtime/{self.ws_slug}/{slug}", {"inputs": {"name": name}})

    def count(self, sql):
        return int(psql(self.database, sql))

    def test_a_used_up_quota_refuses_and_survives_a_crash(self):
        self.published("metered")
        ws = self.workspace["id"]
        self.fails("PUT", f"/api/v1/workspaces/{ws}/quotas/requests", 403, "PERMISSION_DENIED", {"quota": 10**9}, self.key)
        limits = self.ok("PUT", f"/api/v1/workspaces/{ws}/quotas/requests", {"quota": 4}, self.admin)
        self.assertEqual(limits["quota"]["requests"], 4)
        for _ in range(2):
            code, _, body = self.execute("metered")
            self.assertEqual(code, 200, body)

        # The database crashes: its shared memory, and the running totals in it, are gone.
        subprocess.run([CLUSTER, "crash", CLUSTER_DIR], check=True, timeout=60)
        subprocess.run([CLUSTER, "up", CLUSTER_DIR, PG_PORT], check=True, timeout=60)
        deadline = time.time() + 30
        code = 0
        while time.time() < deadline:
            code, _, body = self.execute("metered")
            if code != 503:
                break
            time.sleep(0.2)
        self.assertEqual(code, 200, body)  # the third
        code, _, body = self.execute("metered")
        self.assertEqual(code, 200, body)  # the fourth uses the quota up

        code, headers, body = self.execute("metered")
        self.assertEqual(code, 429, body)
        self.assertEqual(body["error_code"], "QUOTA_EXCEEDED")
        details = body["data"]["details"]
        self.assertEqual({k: details[k] for k in ("exceeded", "plan", "quota", "used", "overage_policy")},
                         {"exceeded": "requests", "plan": "enterprise", "quota": 4, "used": 4, "overage_policy": "block"})
        self.assertEqual(headers["retry-after"], str(details["retry_after_seconds"]))
        self.assertGreater(details["retry_after_seconds"], 0)
        self.assertRegex(details["reset_at"], r"^\d{4}-\d{2}-01T00:00:00Z$")
        self.assertEqual(self.count(f"select count(*) from flowgres.usage_events where workspace_id = '{ws}' "
                                    "and dimension = 'requests'"), 4, "billed once each, the refused one not at all")

        usage = self.ok("GET", f"/api/v1/workspaces/{ws}/usage", key=self.key)
        self.assertEqual(usage["usage"]["requests"], {"used": 4, "quota": 4, "remaining": 0})
        self.assertGreater(usage["usage"]["egress"]["used"], 0, "the answers' bytes are metered as egress")
        self.assertEqual(usage["apps"][0]["requests"], 4)

        # The operator lifts the quota: requests run again.
        self.ok("DELETE", f"/api/v1/workspaces/{ws}/quotas/requests", key=self.admin)
        code, _, body = self.execute("metered")
        self.assertEqual(code, 200, body)

    def test_a_truncate_of_usage_events_gives_the_quotas_back(self):
        # A TRUNCATE removes usage without the transactions that keep the running totals: its
        # commit counts this database's workspaces again; rolled back, it changes nothing.
        _, workspace, key = self.new_user("truncated")
        ws = workspace["id"]
        slug = psql(self.database, f"select slug from flowgres.workspaces where id = '{ws}'")
        self.publish_in(ws, key, "reset")
        self.ok("PUT", f"/api/v1/workspaces/{ws}/quotas/requests", {"quota": 2}, self.admin)

        def codes(count):
            return [self.visit("POST", f"/runtime/{slug}/reset", {"inputs": {"name": "Bo"}})[0] for _ in range(count)]
        self.assertEqual(codes(3), [200, 200, 429])
        psql(self.database, "begin; truncate flowgres.usage_events; rollback;")
        self.assertEqual(codes(1), [429], "a TRUNCATE rolled back gives nothing back")
        psql(self.database, "set session_replication_role = replica; truncate flowgres.usage_events")
        self.assertEqual(codes(3), [200, 200, 429], "the quota's worth again, and no more")
        self.assertEqual(self.count(f"select count(*) from flowgres.usage_events where workspace_id = '{ws}' "
                                    "and dimension = 'requests'"), 2)

        # TRUNCATEs committing while sixteen visitors run at once: however they interleave,
        # the quota counts what the table holds afterwards, no more and no less.
        self.ok("PUT", f"/api/v1/workspaces/{ws}/quotas/requests", {"quota": 8}, self.admin)
        with ThreadPoolExecutor(max_workers=16) as pool:
            racing = [pool.submit(codes, 1) for _ in range(16)]
            for _ in range(2):
                psql(self.database, "truncate flowgres.usage_events")
            self.assertTrue(all(future.result()[0] in (200, 429) for future in racing))
        held = self.count(f"select count(*) from flowgres.usage_events where workspace_id = '{ws}' and dimension = 'requests'")
        self.assertLessEqual(held, 8)
        self.assertEqual(codes(8 - held + 1), [200] * (8 - held) + [429], f"{held} requests were in the table")

    def test_budget_alerts_and_spend_limit(self):
        _, workspace, key = self.new_user("budget")
        ws = workspace["id"]
        slug = psql(self.database, f"select slug from flowgres.workspaces where id = '{ws}'")
        psql(self.database, "insert into flowgres.billing_plans (code, name, price_per_1k_requests_micros) "
                            "values ('it_metered', 'Metered', 2500000) on conflict do nothing")
        psql(self.database, f"update flowgres.workspaces set plan = 'it_metered' where id = '{ws}'")
        self.publish_in(ws, key, "spender")

        for bad in ({"spend_limit_cents": -1}, {"spend_limit_cents": "1; drop table flowgres.budgets"},
                    {"alert_thresholds": [50, 101]}, {"spend_limit_enabled": "yes"}, {"<script>": 1}):
            self.fails("PATCH", f"/api/v1/workspaces/{ws}/budget", 422, "VALIDATION_FAILED", bad, key)
        self.fails("PATCH", f"/api/v1/workspaces/{ws}/budget", 404, "WORKSPACE_NOT_FOUND", {"spend_limit_cents": 1},
                   self.key)
        # 0.25 cents a request against 1 cent: alerts at the 2nd and 4th, the 5th refused.
        budget = self.ok("PATCH", f"/api/v1/workspaces/{ws}/budget",
                         {"spend_limit_cents": 1, "spend_limit_enabled": True, "alert_thresholds": [100, 50]}, key)
        self.assertEqual(budget["alert_thresholds"], [50, 100])
        codes = [self.visit("POST", f"/runtime/{slug}/spender", {"inputs": {"name": "Bo"}})[0] for _ in range(5)]
        self.assertEqual(codes, [200, 200, 200, 200, 429])
        code, _, body = self.visit("POST", f"/runtime/{slug}/spender", {"inputs": {"name": "Bo"}})
        self.assertEqual(body["data"]["details"]["exceeded"], "budget")

        budget = self.ok("GET", f"/api/v1/workspaces/{ws}/budget", key=key)
        self.assertEqual([alert["threshold"] for alert in budget["alerts"]], [50, 100])
        self.assertEqual(budget["spend_micros"], 10000)
        self.assertEqual(budget["used_percent"], 100)
        self.assertEqual(self.count(f"select count(*) from flowgres.runtime_events where workspace_id = '{ws}' "
                                    "and event_type = 'budget.alert'"), 2)
        self.assertEqual(self.ok("GET", f"/api/v1/workspaces/{ws}/usage", key=key)["spend"],
                         {"currency": "USD", "micros": 10000, "usd": "0.010000"})

    def test_metrics_and_access_stats(self):
        app = self.published("measured")
        for name in ("Ann", "Ben", "Cy"):
            self.assertEqual(self.execute("measured", name)[0], 200)
        self.assertEqual(self.execute("measured", "")[0], 422)  # refused before billing: not a request
        metrics = self.ok("GET", f"/api/v1/apps/{app['id']}/metrics?days=1", key=self.key)
        self.assertEqual((metrics["requests"], metrics["completed"], metrics["errors"]), (3, 3, 0))
        self.assertIsNotNone(metrics["duration_ms"]["p50"])
        self.assertEqual(metrics["by_day"][0]["executions"], 3)
        deadline = time.time() + 5
        while time.time() < deadline:  # executes and outcomes are counted, then written per minute
            psql(self.database, "select flowgres.runtime_refusals_flush()")
            stats = self.ok("GET", f"/api/v1/apps/{app['id']}/access-stats", key=self.key)
            if stats["by_type"].get("runtime.execute_succeeded") == 3:
                break
            time.sleep(0.1)
        self.assertEqual(stats["by_type"]["runtime.execute"], 3)
        self.assertEqual(stats["by_type"]["runtime.execute_succeeded"], 3)
        self.assertEqual(stats["visitors"], 1)
        self.assertEqual(stats["days"], 30)

        for bad in ("days=0", "days=abc", "days=100000"):
            self.fails("GET", f"/api/v1/apps/{app['id']}/metrics?{bad}", 422, "VALIDATION_FAILED", key=self.key)
        _, _, stranger = self.new_user("stranger")
        self.fails("GET", f"/api/v1/apps/{app['id']}/access-stats", 404, "APP_NOT_FOUND", key=stranger)
        self.fails("GET", f"/api/v1/workspaces/{self.workspace['id']}/usage", 404, "WORKSPACE_NOT_FOUND", key=stranger)
        self.fails("PUT", f"/api/v1/workspaces/{self.workspace['id']}/quotas/bandwidth", 422, "VALIDATION_FAILED",
                   {"quota": 1}, self.admin)


if __name__ == "__main__":
    main()
