#!/usr/bin/env python3
"""Finished runs are recorded in batches (README "Performance"): many runs finishing at once
share one transaction, each answered only once its batch has committed; a run the database
refuses fails alone, with its code, while the others of its batch are recorded; and every run
is billed exactly once."""

import re
from concurrent.futures import ThreadPoolExecutor

from harness import main, psql
from runtime_test import RuntimeCase

RATE = {"rate_limit": {"per_ip": {"max_requests": 100000, "window_seconds": 60},
                       "per_session": {"max_requests": 100000, "window_seconds": 60}}}


class RunRecording(RuntimeCase):

    def counter(self, name):
        _, _, text = self.daemon.request("GET", "/metrics")
        return int(re.search(rf"^{name} (\d+)$", text, re.M).group(1))

    def execute_all(self, path, names, parallel=64):
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            return list(pool.map(lambda name: self.visit("POST", path, {"inputs": {"name": name}}), names))

    def billed(self, app_id, dimension="requests"):
        return int(psql(self.database, "select coalesce(sum(quantity), 0) from flowgres.usage_events "
                                       f"where app_id = '{app_id}' and dimension = '{dimension}'"))

    def test_runs_finishing_together_share_commits_and_are_each_billed_once(self):
        app = self.published("batched", policy=RATE)
        records, runs = self.counter("flowgres_run_records_total"), self.counter("flowgres_runs_recorded_total")
        answers = self.execute_all(f"/runtime/{self.ws_slug}/batched", [f"v{i}" for i in range(240)])
        self.assertEqual([code for code, _, _ in answers], [200] * 240)
        self.assertEqual({body["data"]["status"] for _, _, body in answers}, {"completed"})
        self.assertEqual(sorted(body["data"]["outputs"]["out"] for _, _, body in answers),
                         sorted(f"hello v{i}" for i in range(240)), "each caller gets its own run")
        stored = psql(self.database, "select status || ' ' || count(*) from flowgres.executions "
                                     f"where app_id = '{app['id']}' group by status")
        self.assertEqual(stored, "completed 240")
        self.assertEqual(self.billed(app["id"]), 240, "one request billed per run")
        egress = psql(self.database, "select count(*) from flowgres.usage_events "
                                     f"where app_id = '{app['id']}' and dimension = 'egress'")
        self.assertEqual(egress, "240", "each run's outputs metered once")
        finished = psql(self.database, "select count(*) from flowgres.execution_events v join flowgres.executions e "
                                       f"on e.id = v.execution_id where e.app_id = '{app['id']}' and v.event = 'execution_finished'")
        self.assertEqual(finished, "240")
        self.assertEqual(self.counter("flowgres_runs_recorded_total") - runs, 240)
        self.assertLess(self.counter("flowgres_run_records_total") - records, 240, "runs shared transactions")

    def test_a_run_the_database_refuses_fails_alone(self):
        app = self.published("refused", policy=RATE)
        # A rule the daemon cannot know about: outputs mentioning "poison" cannot be stored.
        psql(self.database, "alter table flowgres.executions add constraint test_no_poison "
                            "check (outputs is null or outputs::text not like '%poison%') not valid")
        try:
            names = [("poison" if i % 5 == 0 else "fine") + str(i) for i in range(60)]
            answers = self.execute_all(f"/runtime/{self.ws_slug}/refused", names)
        finally:
            psql(self.database, "alter table flowgres.executions drop constraint test_no_poison")
        for name, (code, _, body) in zip(names, answers):
            self.assertEqual(code, 200, body)
            if name.startswith("poison"):
                self.assertEqual(body["data"]["status"], "failed", name)
                self.assertEqual(body["data"]["error"]["error_code"], "INTERNAL_ERROR")
            else:
                self.assertEqual((body["data"]["status"], body["data"]["outputs"]), ("completed", {"out": f"hello {name}"}))
        stored = psql(self.database, "select string_agg(status || ' ' || n, ', ' order by status) from "
                                     "(select status, count(*) n from flowgres.executions "
                                     f"where app_id = '{app['id']}' group by status) s")
        self.assertEqual(stored, "completed 48, failed 12", "nothing is left running")
        self.assertEqual(self.billed(app["id"]), 60, "refused or not, each admitted request is billed once")


if __name__ == "__main__":
    main()
