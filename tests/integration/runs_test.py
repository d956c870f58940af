#!/usr/bin/env python3
"""Trial runs through the real daemon: synchronous and asynchronous, concurrency of branches,
condition skipping in the node logs, the wait limit, cancellation mid-run, and who may run."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from concurrent.futures import ThreadPoolExecutor

from harness import PG_PORT, SOCKET_DIR, ApiTestCase, Caller, Daemon, fresh_database, main, psql


def graph(nodes, edges):
    return {"nodes": nodes, "edges": [{"source": s, "target": t, **({"sourceHandle": h} if h else {})} for s, t, h in edges]}


GREETER = graph([{"id": "start", "type": "start", "data": {"inputs": [{"name": "name", "required": True}]}},
                 {"id": "greet", "type": "transform", "config": {"template": {"greeting": "hello {{name}}"}}},
                 {"id": "out", "type": "output", "config": {"value": "{{greet.greeting}}"}}],
                [("start", "greet", None), ("greet", "out", None)])

DIAMOND = graph([{"id": "s", "type": "start"},
                 {"id": "a", "type": "delay", "config": {"duration_ms": 300}},
                 {"id": "b", "type": "delay", "config": {"duration_ms": 300}},
                 {"id": "o", "type": "output"}],
                [("s", "a", None), ("s", "b", None), ("a", "o", None), ("b", "o", None)])

SLOW = graph([{"id": "s", "type": "start"}, {"id": "wait", "type": "delay", "config": {"duration_ms": 3000}},
              {"id": "o", "type": "output"}], [("s", "wait", None), ("wait", "o", None)])

GATE = graph([{"id": "s", "type": "start", "data": {"inputs": [{"name": "age"}]}},
              {"id": "adult", "type": "condition", "config": {"left": "{{age}}", "operator": "gte", "right": 18}},
              {"id": "yes", "type": "transform", "config": {"template": {"verdict": "welcome"}}},
              {"id": "no", "type": "transform", "config": {"template": {"verdict": "too young"}}},
              {"id": "o1", "type": "output"}, {"id": "o2", "type": "output"}],
             [("s", "adult", None), ("adult", "yes", "true"), ("adult", "no", "false"), ("yes", "o1", None), ("no", "o2", None)])


class TrialRuns(ApiTestCase):
    daemon_settings = {"execution_heartbeat_interval_ms": 200, "run_wait_ms": 5000}

    def wait_for(self, key, execution_id, status, seconds=10):
        deadline = time.time() + seconds
        while time.time() < deadline:
            execution = self.ok("GET", f"/api/v1/executions/{execution_id}", key=key)
            if execution["status"] == status:
                return execution
            time.sleep(0.1)
        self.fail(f"execution {execution_id} never became {status}: {execution}")

    def test_synchronous_run_returns_outputs_and_node_logs(self):
        user, workspace, key = self.new_user()
        app = self.app_with(key, workspace, GREETER)
        execution = self.ok("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": {"name": "Ada"}}, key)
        self.assertEqual(execution["status"], "completed")
        self.assertEqual(execution["outputs"], {"out": "hello Ada"})
        self.assertEqual([log["node_id"] for log in execution["node_logs"]], ["start", "greet", "out"])
        self.assertEqual(execution["trigger"], "trial")
        user_id = user["id"]
        self.assertEqual(execution["triggered_by"], user_id)
        stored = psql(self.database, f"select status from flowgres.executions where id = '{execution['id']}'")
        self.assertEqual(stored, "completed")
        listed = self.ok("GET", f"/api/v1/apps/{app['id']}/executions?status=completed", key=key)
        self.assertEqual([item["id"] for item in listed["items"]], [execution["id"]])
        # The answer is the execution as stored, node logs included, exactly as it is read back.
        self.assertEqual(execution, self.ok("GET", f"/api/v1/executions/{execution['id']}", key=key))
        # Later runs of the app reuse the workflow each worker holds: the same answers.
        for name in ("Bo", "Cy", "Di", "Ed"):
            again = self.ok("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": {"name": name}}, key)
            self.assertEqual((again["status"], again["outputs"]), ("completed", {"out": f"hello {name}"}))
        # Written once, when it ended: one request billed, one audit row as its caller.
        self.assertEqual(psql(self.database, "select string_agg(dimension || '=' || quantity, ',') from flowgres.usage_events "
                                             f"where execution_id = '{execution['id']}'"), "requests=1")
        self.assertEqual(psql(self.database, "select string_agg(action || ' ' || actor_user_id || ' ' || (metadata ->> 'trigger'), ',') "
                                             f"from flowgres.audit_logs where target_id = '{execution['id']}'"),
                         f"execution.create {user_id} trial")

    def test_branches_run_concurrently(self):
        _, workspace, key = self.new_user()
        app = self.app_with(key, workspace, DIAMOND)
        started = time.time()
        execution = self.ok("POST", f"/api/v1/apps/{app['id']}/runs", {}, key)
        elapsed = time.time() - started
        self.assertEqual(execution["status"], "completed")
        self.assertLess(elapsed, 0.55, "two 300 ms branches took as long as running one after the other")
        delays = [log for log in execution["node_logs"] if log["node_type"] == "delay"]
        self.assertEqual(len(delays), 2)

    def test_condition_skips_are_logged(self):
        _, workspace, key = self.new_user()
        app = self.app_with(key, workspace, GATE)
        execution = self.ok("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": {"age": 12}}, key)
        statuses = {log["node_id"]: log["status"] for log in execution["node_logs"]}
        self.assertEqual(statuses["yes"], "skipped")
        self.assertEqual(statuses["o1"], "skipped")
        self.assertEqual(statuses["no"], "completed")
        self.assertEqual(execution["outputs"], {"o2": {"verdict": "too young"}})

    def test_async_run_answers_202_and_finishes_later(self):
        _, workspace, key = self.new_user()
        app = self.app_with(key, workspace, DIAMOND)
        code, _, document = self.call("POST", f"/api/v1/apps/{app['id']}/runs?async=true", {}, key)
        self.assertEqual(code, 202)
        self.assertEqual(document["data"]["status"], "pending", "an asynchronous run is queued for any daemon")
        finished = self.wait_for(key, document["data"]["id"], "completed")
        self.assertEqual(len(finished["node_logs"]), 4)

    def test_cancel_mid_run_stops_it(self):
        _, workspace, key = self.new_user()
        app = self.app_with(key, workspace, SLOW)
        code, _, document = self.call("POST", f"/api/v1/apps/{app['id']}/runs?async=true", {}, key)
        execution_id = document["data"]["id"]
        time.sleep(0.3)
        cancelled = self.ok("POST", f"/api/v1/executions/{execution_id}/cancel", key=key)
        self.assertEqual(cancelled["status"], "cancelled")
        time.sleep(1.0)  # several heartbeats: the daemon has noticed and stopped the run
        execution = self.ok("GET", f"/api/v1/executions/{execution_id}", key=key)
        self.assertEqual(execution["status"], "cancelled")
        self.assertNotIn("wait", [log["node_id"] for log in execution["node_logs"] if log["status"] == "completed"])
        self.fails("POST", f"/api/v1/executions/{execution_id}/cancel", 409, "STATE_CONFLICT", key=key)

    def test_idempotency_keys_make_a_retried_run_the_same_run(self):
        _, workspace, key = self.new_user()
        app = self.app_with(key, workspace, GREETER)
        path = f"/api/v1/apps/{app['id']}/runs"
        count = lambda: psql(self.database, f"select count(*) from flowgres.executions where app_id = '{app['id']}'")
        code, _, first = self.call("POST", path + "?async=true", {"inputs": {"name": "Ada"}}, key,
                                   headers={"Idempotency-Key": "queue-once"})
        self.assertEqual(code, 202, first)
        code, headers, again = self.call("POST", path + "?async=true", {"inputs": {"name": "Ada"}}, key,
                                         headers={"Idempotency-Key": "queue-once"})
        self.assertEqual((code, headers.get("idempotent-replayed")), (202, "true"), again)
        self.assertEqual(again["data"]["id"], first["data"]["id"])
        self.assertEqual(count(), "1", "a retried asynchronous run created no second execution")
        code, _, body = self.call("POST", path + "?async=true", {"inputs": {"name": "Bo"}}, key,
                                  headers={"Idempotency-Key": "queue-once"})
        self.assertEqual((code, body["error_code"]), (409, "IDEMPOTENCY_CONFLICT"))
        ran = self.ok("POST", path, {"inputs": {"name": "Cy"}}, key, headers={"Idempotency-Key": "run-once"})
        code, headers, replayed = self.call("POST", path, {"inputs": {"name": "Cy"}}, key, headers={"Idempotency-Key": "run-once"})
        self.assertEqual((code, headers.get("idempotent-replayed")), (200, "true"))
        self.assertEqual(replayed["data"]["id"], ran["id"])
        self.assertEqual(replayed["data"]["outputs"], {"out": "hello Cy"})
        self.assertEqual(count(), "2")
        # A run refused (here: an input that is no object) keeps no claim: the retry runs.
        code, _, _ = self.call("POST", path, {"inputs": "x"}, key, headers={"Idempotency-Key": "refused-once"})
        self.assertEqual(code, 422)
        code, _, _ = self.call("POST", path, {"inputs": "x"}, key, headers={"Idempotency-Key": "refused-once"})
        self.assertEqual(code, 422, "refused again, not replayed")

    def test_a_daemon_killed_mid_run_leaves_its_key_claimed_not_a_second_run(self):
        _, workspace, key = self.new_user()
        app = self.app_with(key, workspace, SLOW)
        path = f"/api/v1/apps/{app['id']}/runs"
        doomed = Daemon(self.database, admin_key=self.admin, execution_heartbeat_interval_ms=200).start()
        self.addCleanup(doomed.stop)  # whatever fails below, it does not outlive the test
        caller = Caller(lambda: doomed.request("POST", path, {}, key=key, headers={"Idempotency-Key": "once"}, timeout=10))
        deadline = time.time() + 5
        while time.time() < deadline and psql(self.database, f"select count(*) from flowgres.executions where app_id = '{app['id']}'") == "0":
            time.sleep(0.05)
        doomed.process.kill()  # kill -9, mid-run: no release, no outcome
        doomed.process.wait()
        caller.join(timeout=15)
        self.assertIsNotNone(caller.error, "the caller's connection ended with the daemon")
        code, _, body = self.call("POST", path, {}, key, headers={"Idempotency-Key": "once"})
        self.assertEqual((code, body["error_code"]), (409, "IDEMPOTENCY_IN_PROGRESS"), "a retry does not start a second run")
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.executions where app_id = '{app['id']}'"), "1")
        doomed.stop()

    def test_refusals(self):
        _, workspace, key = self.new_user()
        app = self.app_with(key, workspace, GREETER)
        _, _, outsider = self.new_user()
        self.fails("POST", f"/api/v1/apps/{app['id']}/runs", 404, "APP_NOT_FOUND", {}, outsider)
        self.fails("POST", f"/api/v1/apps/{app['id']}/runs?async=maybe", 422, "VALIDATION_FAILED", {}, key)
        self.fails("POST", f"/api/v1/apps/{app['id']}/runs", 422, "VALIDATION_FAILED", {"inputs": [1]}, key)
        self.fails("GET", "/api/v1/executions/not-an-id", 404, "EXECUTION_NOT_FOUND", key=key)
        other = self.app_with(key, workspace, GREETER)
        version = self.ok("GET", f"/api/v1/apps/{other['id']}/versions", key=key)[0]["id"]
        self.fails("POST", f"/api/v1/apps/{app['id']}/runs", 404, "VERSION_NOT_FOUND", {"version_id": version}, key)


class DurableRuns(ApiTestCase):
    """Queued runs on the database the maintenance worker watches (flowgres_test): any daemon
    claims them; one whose daemon is killed is failed as abandoned, nothing stays running."""

    database = "flowgres_test"
    reuse_database = True
    daemon_settings = {"execution_heartbeat_interval_ms": 200}

    def test_a_killed_daemons_run_is_failed_and_the_other_daemon_carries_on(self):
        from harness import Daemon
        other = Daemon(self.database, execution_heartbeat_interval_ms=200, admin_key=self.admin).start()
        try:
            _, workspace, key = self.new_user()
            psql(self.database, f"update flowgres.workspaces set plan = 'enterprise' where id = '{workspace['id']}'")
            app = self.ok("POST", f"/api/v1/workspaces/{workspace['id']}/apps", {"name": f"durable {time.time_ns()}"}, key, status=201)
            self.ok("POST", f"/api/v1/apps/{app['id']}/versions", {"version": "1.0.0", "workflow": SLOW}, key, status=201)
            code, _, document = self.call("POST", f"/api/v1/apps/{app['id']}/runs?async=true", {}, key)
            self.assertEqual(code, 202)
            execution_id = document["data"]["id"]
            running = None
            deadline = time.time() + 5
            while time.time() < deadline:
                running = self.ok("GET", f"/api/v1/executions/{execution_id}", key=key)
                if running["status"] == "running":
                    break
                time.sleep(0.05)
            self.assertEqual(running["status"], "running", "no daemon claimed the queued run")
            claimer_pid = int(running["claimed_by"].rsplit(":", 1)[1])
            daemons = {self.daemon.process.pid: self.daemon, other.process.pid: other}
            self.assertIn(claimer_pid, daemons)
            daemons[claimer_pid].process.kill()
            daemons[claimer_pid].process.wait()
            survivor = other if claimer_pid == self.daemon.process.pid else self.daemon
            deadline = time.time() + 15
            status = None
            while time.time() < deadline:
                _, _, doc = survivor.request("GET", f"/api/v1/executions/{execution_id}", key=key)
                status = doc["data"]["status"]
                if status != "running":
                    break
                time.sleep(0.2)
            self.assertEqual(status, "failed")
            self.assertEqual(doc["data"]["error"]["error_code"], "EXECUTION_ABANDONED")
            # Its event stream ends too: the database wrote execution_finished when it was failed.
            code, headers, stream = survivor.request("GET", f"/api/v1/executions/{execution_id}/events", key=key)
            self.assertEqual(code, 200)
            last = stream.strip().split("\n\n")[-1]
            self.assertIn("event: execution_finished", last)
            self.assertIn('"EXECUTION_ABANDONED"', last)
            # The survivor takes the next queued run and finishes it.
            # (The class daemon may be the one killed: from here on only the survivor is asked.)
            code, _, quick = survivor.request("POST", f"/api/v1/workspaces/{workspace['id']}/apps",
                                              {"name": f"quick {time.time_ns()}"}, key=key)
            self.assertEqual(code, 201, quick)
            code, _, version = survivor.request("POST", f"/api/v1/apps/{quick['data']['id']}/versions",
                                                {"version": "1.0.0", "workflow": GREETER}, key=key)
            self.assertEqual(code, 201, version)
            quick = quick["data"]
            _, _, queued = survivor.request("POST", f"/api/v1/apps/{quick['id']}/runs?async=true", {"inputs": {"name": "Bo"}}, key=key)
            deadline = time.time() + 10
            while time.time() < deadline:
                _, _, doc = survivor.request("GET", f"/api/v1/executions/{queued['data']['id']}", key=key)
                if doc["data"]["status"] == "completed":
                    break
                time.sleep(0.1)
            self.assertEqual(doc["data"]["outputs"], {"out": "hello Bo"})
        finally:
            other.stop()

    def test_a_daemon_killed_mid_run_gives_its_runs_room_back(self):
        """kill -9 while the cap's worth of synchronous trial runs (created running) go on in
        a daemon: the maintenance worker fails them as abandoned, and the workspace can run as
        many again at once."""
        _, workspace, key = self.new_user()
        psql(self.database, f"update flowgres.workspaces set plan = 'enterprise' where id = '{workspace['id']}'")
        app = self.ok("POST", f"/api/v1/workspaces/{workspace['id']}/apps", {"name": f"doomed {time.time_ns()}"}, key, status=201)
        self.ok("POST", f"/api/v1/apps/{app['id']}/versions", {"version": "1.0.0", "workflow": SLOW}, key, status=201)
        cap = int(psql(self.database, "show flowgres.max_concurrent_runs_per_workspace"))
        doomed = Daemon(self.database, admin_key=self.admin, execution_heartbeat_interval_ms=200).start()
        self.addCleanup(doomed.stop)  # whatever fails below, it does not outlive the test
        path = f"/api/v1/apps/{app['id']}/runs"
        callers = [Caller(lambda: doomed.request("POST", path, {}, key=key, timeout=15)) for _ in range(cap)]
        count = f"select count(*) from flowgres.executions where app_id = '{app['id']}' and status = 'running'"
        deadline = time.time() + 5
        while time.time() < deadline and psql(self.database, count) != str(cap):
            time.sleep(0.05)
        self.assertEqual(psql(self.database, count), str(cap), "the runs are running in the doomed daemon")
        doomed.process.kill()
        doomed.process.wait()
        for caller in callers:
            caller.join(timeout=20)
        deadline = time.time() + 15
        abandoned = f"select count(*) from flowgres.executions where app_id = '{app['id']}' and status = 'failed' " \
                    "and error ->> 'error_code' = 'EXECUTION_ABANDONED'"
        while time.time() < deadline and psql(self.database, abandoned) != str(cap):
            time.sleep(0.2)
        self.assertEqual(psql(self.database, abandoned), str(cap), "every run it held is failed as abandoned")
        with ThreadPoolExecutor(max_workers=cap) as pool:
            answers = list(pool.map(lambda _: self.call("POST", path, {}, key, timeout=20), range(cap)))
        self.assertEqual(sorted(code for code, _, _ in answers), [200] * cap, "their room came back")
        doomed.stop()


class ConcurrentRunCap(ApiTestCase):
    """flowgres.max_concurrent_runs_per_workspace under parallel callers: exactly the cap's
    number of runs at once, the rest refused with QUOTA_EXCEEDED (exceeded: concurrent_runs),
    and room again once they end. The setting is the server's (reload), set for this class."""

    CAP = 4

    @classmethod
    def setUpClass(cls):
        cls.database = "it_" + cls.__name__.lower()
        fresh_database(cls.database)
        psql(cls.database, f"alter system set flowgres.max_concurrent_runs_per_workspace = {cls.CAP}")
        psql(cls.database, "select pg_reload_conf()")
        cls.reuse_database = True
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        psql(cls.database, "alter system reset flowgres.max_concurrent_runs_per_workspace")
        psql(cls.database, "select pg_reload_conf()")

    def wait_for_cap(self):
        """Until this class's cap is the server's (set by a reload)."""
        deadline = time.time() + 5
        while time.time() < deadline and psql(self.database, "show flowgres.max_concurrent_runs_per_workspace") != str(self.CAP):
            time.sleep(0.05)

    def test_parallel_callers_get_exactly_the_cap(self):
        _, workspace, key = self.new_user()
        psql(self.database, f"update flowgres.workspaces set plan = 'enterprise' where id = '{workspace['id']}'")
        app = self.app_with(key, workspace, SLOW)
        self.wait_for_cap()
        path = f"/api/v1/apps/{app['id']}/runs"
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda _: self.call("POST", path, {}, key, timeout=20), range(16)))
        codes = sorted(code for code, _, _ in answers)
        self.assertEqual(codes, [200] * self.CAP + [429] * (16 - self.CAP))
        refused = [body for code, _, body in answers if code == 429]
        self.assertEqual({body["error_code"] for body in refused}, {"QUOTA_EXCEEDED"})
        self.assertEqual({body["data"]["details"]["exceeded"] for body in refused}, {"concurrent_runs"})
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.executions where app_id = '{app['id']}'"),
                         str(self.CAP), "refused runs leave no execution behind")
        code, _, again = self.call("POST", path, {}, key, timeout=20)
        self.assertEqual((code, again["data"]["status"]), (200, "completed"), "room again once they ended")


    def as_daemon_for(self, user, select):
        """`select` as the daemon's role acting for `user`, in a session of its own (which ends at
        once, releasing whatever it held): its one value, or the error code it was refused with."""
        result = subprocess.run(
            ["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", self.database, "-AtX", "-v", "ON_ERROR_STOP=1",
             "-c", f"select set_config('flowgres.actor', '{user['id']}', false)", "-c", select],
            capture_output=True, text=True, timeout=60)
        if result.returncode == 0:
            return result.stdout.strip().splitlines()[-1]
        found = re.search(r'"error_code"\s*:\s*"([A-Z_]+)"', result.stderr)
        return found.group(1) if found else result.stderr.strip()[-200:]

    def running_as(self, user, app, daemon_name):
        """execution_create_running as the daemon does for a synchronous trial run whose model
        calls hold tokens: its id, or the error code it was refused with."""
        return self.as_daemon_for(
            user, f"select flowgres.execution_create_running('{app['id']}', '{{}}', null, '{daemon_name}') ->> 'id'")

    def test_runs_created_running_by_parallel_sessions_get_exactly_the_cap(self):
        user, workspace, key = self.new_user()
        app = self.app_with(key, workspace, SLOW)
        self.wait_for_cap()
        # Sixteen sessions at once, each the daemon's role creating a run it says it runs.
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(lambda i: self.running_as(user, app, f"racer:{i}"), range(16)))
        created = [result for result in results if len(result) == 36]
        self.assertEqual(len(created), self.CAP, results)
        self.assertEqual(sorted(set(results) - set(created)), ["QUOTA_EXCEEDED"], results)
        self.assertEqual(psql(self.database, f"select string_agg(distinct status, ',') || '/' || count(*) "
                                             f"from flowgres.executions where app_id = '{app['id']}'"),
                         f"running/{self.CAP}", "only the runs admitted exist, each running")
        # Nobody runs them (no such daemon): cancelled, they give their room back.
        for run in created:
            psql(self.database, f"select set_config('flowgres.actor', '{user['id']}', false); "
                                f"select flowgres.execution_cancel('{run}')")
        self.assertEqual(len(self.running_as(user, app, "racer:again")), 36, "room again once they ended")

    def admit_trial_as(self, user, app, daemon_name="admitter"):
        """execution_admit_trial as the daemon does for a synchronous trial run: the admitted
        row, or the error code it was refused with."""
        answer = self.as_daemon_for(
            user, f"select flowgres.execution_admit_trial('{app['id']}', '{{}}', null, '{daemon_name}')")
        return json.loads(answer) if answer.startswith("{") else answer

    def test_trial_runs_admitted_without_rows_hold_their_place_until_written(self):
        """A synchronous trial run is admitted without its row: its place under the cap is held
        across transactions by the session that admitted it, until the transaction that writes
        its row commits (ended: the place is free; running: the row holds it), or that session
        ends. Rolled back, a record changes nothing."""
        user, workspace, key = self.new_user()
        app = self.app_with(key, workspace, SLOW)
        self.wait_for_cap()
        directory = tempfile.mkdtemp()
        script = os.path.join(directory, "hold.sql")
        with open(script, "w") as out:
            out.write(f"select set_config('flowgres.actor', '{user['id']}', false) \\g /dev/null\n")
            for i in range(self.CAP):
                out.write(f"select flowgres.execution_admit_trial('{app['id']}', '{{}}', null, 'holder')::text "
                          f"\\g {directory}/{i}\n")
            out.write("select pg_sleep(60)\n")
        holder = subprocess.Popen(["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", self.database,
                                   "-AtX", "-v", "ON_ERROR_STOP=1", "-f", script],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            admitted = []
            deadline = time.time() + 10
            for i in range(self.CAP):
                path = os.path.join(directory, str(i))
                while time.time() < deadline and not (os.path.exists(path) and open(path).read().strip()):
                    time.sleep(0.02)
                admitted.append(json.loads(open(path).read().strip()))
            self.assertEqual({run["deferred"] for run in admitted}, {True})
            self.assertEqual(psql(self.database, f"select count(*) from flowgres.executions where app_id = '{app['id']}'"),
                             "0", "nothing is written at admission")
            self.assertEqual(self.admit_trial_as(user, app), "QUOTA_EXCEEDED", "held runs count under the cap")
            self.assertEqual(self.create_as(user, app), "refused")

            def record(run, rollback=False):
                item = {"execution_id": run["id"], "status": "completed", "outputs": {"out": 1}, "fold": True,
                        "view": "full", "logs": [{"node_id": "start", "node_type": "start", "status": "completed"}],
                        "admitted": {k: run[k] for k in ("id", "workspace_id", "app_id", "version_id", "trigger",
                                                         "triggered_by", "inputs", "claimed_by", "started_at")}}
                text = json.dumps([item]).replace("'", "''")
                return psql(self.database, ("begin; " if rollback else "") +
                            "select set_config('flowgres.actor', 'operator', true); "
                            f"select flowgres.executions_record('{text}')" + ("; rollback" if rollback else ""))

            # Recorded by another session: the place is free when that commits, and only one.
            answer = json.loads(record(admitted[0]).splitlines()[-1])["runs"][0]["execution"]
            self.assertEqual((answer["status"], answer["trigger"], answer["triggered_by"]), ("completed", "trial", user["id"]))
            self.assertEqual([log["node_id"] for log in answer["node_logs"]], ["start"])
            self.assertEqual(len(self.create_as(user, app)), 36, "room for one once recorded")
            self.assertEqual(self.create_as(user, app), "refused")
            # A record rolled back leaves the run held.
            record(admitted[1], rollback=True)
            self.assertEqual(psql(self.database, f"select count(*) from flowgres.executions where id = '{admitted[1]['id']}'"), "0")
            self.assertEqual(self.create_as(user, app), "refused", "a rolled-back record frees nothing")
            # Stored running (it outlived its first heartbeat): its row holds the place from then on.
            stored = {k: admitted[2][k] for k in ("id", "workspace_id", "app_id", "version_id", "trigger", "triggered_by",
                                                   "inputs", "claimed_by", "started_at")}
            psql(self.database, "select set_config('flowgres.actor', 'operator', false); "
                                f"select flowgres.execution_store_admitted('{json.dumps(stored)}')")
            self.assertEqual(psql(self.database, f"select status || ' ' || trigger from flowgres.executions "
                                                 f"where id = '{admitted[2]['id']}'"), "running trial")
            self.assertEqual(self.create_as(user, app), "refused", "stored running, it still counts")
            record(admitted[2])  # ends the row it now has
            self.assertEqual(psql(self.database, f"select status from flowgres.executions where id = '{admitted[2]['id']}'"),
                             "completed")
            self.assertEqual(len(self.create_as(user, app)), 36, "room for one once it ended")
            self.assertEqual(self.create_as(user, app), "refused")
            # The admitting session ends (its daemon died): the runs it still held go.
            holder.kill()
            holder.wait()
            psql(self.database, "select pg_terminate_backend(pid) from pg_stat_activity "
                                "where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()")
            deadline = time.time() + 5
            while time.time() < deadline and psql(self.database, "select count(*) from pg_stat_activity "
                                                                  "where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()") != "0":
                time.sleep(0.05)
            room = [self.create_as(user, app) for _ in range(2)]
            self.assertTrue(all(len(run) == 36 for run in room), room)
            self.assertEqual(self.create_as(user, app), "refused", "exactly the two it held")
            # Each written run is billed once and audited once, as its caller.
            for run in (admitted[0], admitted[2]):
                self.assertEqual(psql(self.database, "select count(*) from flowgres.usage_events where dimension = 'requests' "
                                                     f"and execution_id = '{run['id']}'"), "1")
                self.assertEqual(psql(self.database, "select string_agg(actor_user_id::text, ',') from flowgres.audit_logs "
                                                     f"where action = 'execution.create' and target_id = '{run['id']}'"),
                                 user["id"])
        finally:
            holder.kill()
            holder.wait()
            shutil.rmtree(directory, ignore_errors=True)

    def test_trial_admissions_held_by_parallel_sessions_get_exactly_the_cap(self):
        user, workspace, key = self.new_user()
        app = self.app_with(key, workspace, SLOW)
        self.wait_for_cap()
        # Sixteen sessions at once, each admitting one run and staying (holding it) a while.
        sessions = [subprocess.Popen(
            ["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", self.database, "-AtX", "-v", "ON_ERROR_STOP=1",
             "-c", f"select set_config('flowgres.actor', '{user['id']}', false)",
             "-c", f"select flowgres.execution_admit_trial('{app['id']}', '{{}}', null, 'racer:{i}') ->> 'id'",
             "-c", "select pg_sleep(4)"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(16)]
        outcomes = []
        for session in sessions:
            out, err = session.communicate(timeout=60)
            lines = out.strip().splitlines()
            outcomes.append("admitted" if len(lines) >= 2 and len(lines[1]) == 36 else
                            "QUOTA_EXCEEDED" if '"QUOTA_EXCEEDED"' in err else err[-200:])
        self.assertEqual(sorted(outcomes), ["QUOTA_EXCEEDED"] * (16 - self.CAP) + ["admitted"] * self.CAP, outcomes)
        # Their sessions ended: every place is free again, and nothing was written.
        runs = [self.create_as(user, app) for _ in range(self.CAP)]
        self.assertTrue(all(len(run) == 36 for run in runs), runs)
        self.assertEqual(self.create_as(user, app), "refused")

    def create_as(self, user, app):
        """execution_create as `user` in SQL, a run that nobody claims (pending): its id, or the
        error code it was refused with."""
        result = subprocess.run(
            ["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", self.database, "-AtX", "-v", "ON_ERROR_STOP=1",
             "-c", f"select flowgres.execution_create('{app['id']}', '{{}}') ->> 'id' "
                   f"from (select set_config('flowgres.actor', '{user['id']}', false)) s"],
            capture_output=True, text=True, timeout=60)
        if result.returncode == 0:
            return result.stdout.strip()
        self.assertIn("runs pending or running", result.stderr)  # QUOTA_EXCEEDED, concurrent_runs
        return "refused"

    def test_the_count_follows_every_way_a_run_ends(self):
        user, workspace, key = self.new_user()
        app = self.app_with(key, workspace, SLOW)
        self.wait_for_cap()
        runs = [self.create_as(user, app) for _ in range(self.CAP)]
        self.assertTrue(all(len(run) == 36 for run in runs), runs)
        self.assertEqual(self.create_as(user, app), "refused", "the cap holds for pending runs")

        def room_after(change):
            psql(self.database, change)
            run = self.create_as(user, app)
            self.assertEqual(len(run), 36, f"room again after: {change}")
            self.assertEqual(self.create_as(user, app), "refused", f"and only one: {change}")
            return run

        actor = f"select set_config('flowgres.actor', '{user['id']}', false)"
        # Cancelled through the API's function, deleted, and ended in replica mode (a restore).
        runs.append(room_after(f"{actor}; select flowgres.execution_cancel('{runs[0]}')"))
        runs.append(room_after(f"delete from flowgres.executions where id = '{runs[1]}'"))
        runs.append(room_after(f"set session_replication_role = replica; "
                               f"update flowgres.executions set status = 'failed', error = '{{}}' where id = '{runs[2]}'"))
        # A cancel rolled back gives no room; one not committed yet gives none either.
        psql(self.database, f"begin; {actor}; select flowgres.execution_cancel('{runs[3]}'); rollback;")
        self.assertEqual(self.create_as(user, app), "refused")
        same_transaction = subprocess.run(
            ["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", self.database, "-AtX", "-v", "ON_ERROR_STOP=1",
             "-c", f"begin; {actor}; select flowgres.execution_cancel('{runs[3]}'); "
                   f"select flowgres.execution_create('{app['id']}', '{{}}'); commit;"],
            capture_output=True, text=True, timeout=60)
        self.assertIn("runs pending or running", same_transaction.stderr)
        self.assertEqual(self.create_as(user, app), "refused", "and what failed with it changed nothing")
        in_flight = psql(self.database, "select count(*) from flowgres.executions "
                                        f"where app_id = '{app['id']}' and status in ('pending', 'running')")
        self.assertEqual(in_flight, str(self.CAP), "the count is the table's")


    def test_a_truncate_of_executions_gives_this_databases_workspaces_their_room_back(self):
        # A TRUNCATE fires none of the row triggers that note a run's end: its commit counts this
        # database's workspaces again; rolled back, or in another database, it changes nothing.
        apps = []
        for _ in range(2):
            user, workspace, key = self.new_user()
            apps.append((user, self.app_with(key, workspace, SLOW)))
        self.wait_for_cap()

        def fill(user, app):
            runs = [self.create_as(user, app) for _ in range(self.CAP)]
            self.assertTrue(all(len(run) == 36 for run in runs), runs)
            self.assertEqual(self.create_as(user, app), "refused", "at the cap")
        for user, app in apps:
            fill(user, app)
        psql(self.database, "begin; truncate flowgres.executions; rollback;")
        for user, app in apps:
            self.assertEqual(self.create_as(user, app), "refused", "a TRUNCATE rolled back gives no room")
        other = self.database + "_other"
        fresh_database(other)
        psql(other, "truncate flowgres.executions")
        for user, app in apps:
            self.assertEqual(self.create_as(user, app), "refused", "nor does one in another database")
        psql(self.database, "set session_replication_role = replica; truncate flowgres.executions")
        for user, app in apps:
            fill(user, app)  # the cap's number of runs again, and no more
        self.assertEqual(psql(self.database, "select count(*) from flowgres.executions"), str(2 * self.CAP))

    def test_truncates_racing_parallel_creations_leave_the_count_the_tables(self):
        # Sixteen sessions create and cancel runs while TRUNCATEs of executions commit among
        # them: however they interleave, the count ends as the table's.
        user, workspace, key = self.new_user()
        app = self.app_with(key, workspace, SLOW)
        self.wait_for_cap()
        actor = f"select set_config('flowgres.actor', '{user['id']}', false)"

        def churn(index):
            for round in range(5):
                if index == 0 and round in (1, 3):
                    psql(self.database, "truncate flowgres.executions")
                    continue
                run = self.create_as(user, app)
                if run != "refused" and (index + round) % 2 == 0:
                    # Truncated meanwhile, it has nothing to cancel: that refusal is expected.
                    psql(self.database, f"{actor}; select flowgres.execution_cancel('{run}')", check=False)
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(churn, range(16)))
        in_flight = int(psql(self.database, "select count(*) from flowgres.executions "
                                            f"where app_id = '{app['id']}' and status in ('pending', 'running')"))
        self.assertLessEqual(in_flight, self.CAP)
        room = [self.create_as(user, app) for _ in range(self.CAP - in_flight)]
        self.assertTrue(all(len(run) == 36 for run in room), (in_flight, room))
        self.assertEqual(self.create_as(user, app), "refused", f"the cap holds: {in_flight} were in flight")

    def test_the_count_holds_under_parallel_creations_ends_and_a_killed_session(self):
        user, workspace, key = self.new_user()
        app = self.app_with(key, workspace, SLOW)
        self.wait_for_cap()
        actor = f"select set_config('flowgres.actor', '{user['id']}', false)"

        def churn(_):
            # Create and cancel, over and over, 16 sessions at once: refusals are expected,
            # drift is not.
            for _ in range(6):
                run = self.create_as(user, app)
                if run != "refused":
                    psql(self.database, f"{actor}; select flowgres.execution_cancel('{run}')")
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(churn, range(16)))
        # A session killed while its creation is uncommitted gives its place back.
        doomed = subprocess.Popen(
            ["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", self.database, "-AtX",
             "-c", f"begin; {actor}; select flowgres.execution_create('{app['id']}', '{{}}'); "
                   "select pg_sleep(30); commit;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 10
            while time.time() < deadline and psql(self.database, "select count(*) from pg_stat_activity "
                                                                  "where query like '%pg_sleep(30)%' and pid <> pg_backend_pid()") != "1":
                time.sleep(0.05)
            psql(self.database, "select pg_terminate_backend(pid) from pg_stat_activity "
                                "where query like '%pg_sleep(30)%' and pid <> pg_backend_pid()")
        finally:
            doomed.wait(timeout=10)
        # Nothing is running now: exactly the cap can be created again, and no more.
        self.assertEqual(psql(self.database, "select count(*) from flowgres.executions "
                                             f"where app_id = '{app['id']}' and status in ('pending', 'running')"), "0")
        runs = [self.create_as(user, app) for _ in range(self.CAP)]
        self.assertTrue(all(len(run) == 36 for run in runs), runs)
        self.assertEqual(self.create_as(user, app), "refused")


class RunWaitLimit(ApiTestCase):
    daemon_settings = {"run_wait_ms": 300, "execution_heartbeat_interval_ms": 200}

    def test_a_run_longer_than_the_wait_answers_202_and_completes(self):
        _, workspace, key = self.new_user()
        psql(self.database, f"update flowgres.workspaces set plan = 'enterprise' where id = '{workspace['id']}'")
        app = self.ok("POST", f"/api/v1/workspaces/{workspace['id']}/apps", {"name": "Waiting"}, key, status=201)
        self.ok("POST", f"/api/v1/apps/{app['id']}/versions", {"version": "1.0.0", "workflow": DIAMOND}, key, status=201)
        code, _, document = self.call("POST", f"/api/v1/apps/{app['id']}/runs", {}, key)
        self.assertEqual(code, 202)
        self.assertEqual(document["data"]["status"], "running")
        deadline = time.time() + 5
        while time.time() < deadline:
            if self.ok("GET", f"/api/v1/executions/{document['data']['id']}", key=key)["status"] == "completed":
                return
            time.sleep(0.1)
        self.fail("the run never completed")


if __name__ == "__main__":
    main()
