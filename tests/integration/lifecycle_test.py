#!/usr/bin/env python3
"""flowgresd's life: configuration errors at start-up, graceful shutdown with requests in
flight, and the database restarting under a running daemon."""

import json
import os
import subprocess
import threading
import time

from harness import (DAEMON, PG_PORT, ROOT, SOCKET_DIR, ApiTestCase, Daemon, fresh_database, hold_workspaces_lock,
                     main, psql)

CLUSTER_DIR = os.path.dirname(SOCKET_DIR)


class StartUp(ApiTestCase):
    def run_daemon(self, *arguments, env=None):
        environment = {k: v for k, v in os.environ.items() if not k.startswith("FLOWGRES_")}
        environment.update(env or {})
        return subprocess.run([DAEMON, *arguments], capture_output=True, text=True, timeout=10, env=environment)

    def test_help_lists_every_key(self):
        result = self.run_daemon("--help")
        self.assertEqual(result.returncode, 0)
        for key in ("database_url", "admin_key", "workers", "max_body_bytes", "idle_timeout_ms", "db_queue_timeout_ms"):
            self.assertIn(key, result.stdout)

    def test_bad_configuration_names_the_key(self):
        cases = [
            ((), {}, "database_url"),
            (("--database_url=x", "--port=99999"), {}, "port"),
            (("--database_url=x", "--workers=lots"), {}, "workers"),
            (("--database_url=x", "--admin_key=secret"), {}, "admin_key"),
            (("--database_url=x", "--no_such_key=1"), {}, "no_such_key"),
            (("--database_url=x",), {"FLOWGRES_IDLE_TIMEOUT_MS": "-5"}, "idle_timeout_ms"),
        ]
        for arguments, env, key in cases:
            result = self.run_daemon(*arguments, env=env)
            self.assertEqual(result.returncode, 2, (arguments, result.stderr))
            self.assertIn(key, result.stderr)

    def test_file_then_environment_then_flags(self):
        path = f"/tmp/flowgresd-config-{os.getpid()}.conf"
        with open(path, "w") as handle:
            handle.write("# test\nport = 1\nlog_level = 'debug'\nbogus_key = 3\n")
        result = self.run_daemon("--config", path, "--database_url=x")
        self.assertEqual(result.returncode, 2)
        self.assertIn("bogus_key", result.stderr)
        self.assertIn(path, result.stderr)
        os.unlink(path)

    def test_port_in_use_is_a_clear_error(self):
        import socket
        with socket.socket() as holder:  # no SO_REUSEPORT: the port is truly taken
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            result = self.run_daemon(f"--database_url=host={SOCKET_DIR}", f"--port={port}")
        self.assertEqual(result.returncode, 1)
        self.assertIn("cannot listen", result.stderr)
        self.assertIn(str(port), result.stderr)


class GracefulShutdown(ApiTestCase):
    def test_sigterm_finishes_requests_in_flight_then_exits_0(self):
        _, workspace, key = self.new_user()
        locker = hold_workspaces_lock(self.database, 1.5)
        results = {}

        def slow_request():
            results["answer"] = self.call("GET", f"/api/v1/workspaces/{workspace['id']}", key=key, timeout=10)

        worker = threading.Thread(target=slow_request)
        worker.start()
        time.sleep(0.3)
        self.daemon.process.terminate()
        time.sleep(0.2)
        # No new connections once draining started.
        with self.assertRaises(OSError):
            self.call("GET", "/health", timeout=1)
        worker.join(10)
        locker.wait(10)
        self.assertEqual(results["answer"][0], 200)
        self.assertEqual(self.daemon.process.wait(10), 0)
        self.assertIn("flowgresd stopped", self.daemon.log_text())
        # tearDownClass stops it again: harmless on an exited process.

    def test_idle_daemon_stops_at_once(self):
        other = Daemon(self.database).start()
        started = time.time()
        self.assertEqual(other.stop(), 0)
        self.assertLess(time.time() - started, 3)


class ShutdownDeadline(ApiTestCase):
    daemon_settings = {"shutdown_timeout_ms": 500}

    def test_requests_past_the_deadline_are_cut_and_the_exit_is_still_clean(self):
        _, workspace, key = self.new_user()
        locker = hold_workspaces_lock(self.database, 3)
        results = {}

        def stuck_request():
            try:
                results["answer"] = self.call("GET", f"/api/v1/workspaces/{workspace['id']}", key=key, timeout=10)
            except Exception as error:  # the connection is cut: that is the point
                results["error"] = error

        worker = threading.Thread(target=stuck_request)
        worker.start()
        time.sleep(0.3)
        started = time.time()
        self.daemon.process.terminate()
        self.assertEqual(self.daemon.process.wait(10), 0)
        self.assertLess(time.time() - started, 2.5, "the deadline was not kept")
        worker.join(10)
        locker.wait(10)
        self.assertIn("error", results)
        self.assertIn("shutdown deadline passed", self.daemon.log_text())


class PoolExhaustion(ApiTestCase):
    daemon_settings = {"workers": 1, "db_pool_size": 1, "db_pipeline_depth": 1, "db_queue_timeout_ms": 300}

    def test_a_request_waiting_too_long_for_a_connection_gets_503(self):
        _, workspace, key = self.new_user()
        locker = hold_workspaces_lock(self.database, 1.5)
        results = {}
        first = threading.Thread(target=lambda: results.setdefault(
            "first", self.call("GET", f"/api/v1/workspaces/{workspace['id']}", key=key, timeout=10)))
        first.start()
        time.sleep(0.2)
        # The only connection is busy with the first request: the second waits, then gives up.
        document = self.fails("GET", f"/api/v1/workspaces/{workspace['id']}", 503, "DB_UNAVAILABLE", key=key)
        first.join(10)
        locker.wait(10)
        self.assertEqual(results["first"][0], 200)
        code, headers, _ = self.call("GET", f"/api/v1/workspaces/{workspace['id']}", key=key)
        self.assertEqual(code, 200)
        _, metrics_headers, metrics = self.call("GET", "/metrics")
        self.assertIn('status="503"', metrics)


class LeastPrivilegeRole(ApiTestCase):
    """The daemon as a deployment runs it: a login role in flowgres_service, not a superuser."""

    @classmethod
    def setUpClass(cls):
        cls.database = "it_leastprivilegerole"
        fresh_database(cls.database)
        psql("postgres", "drop role if exists flowgresd_it")
        psql("postgres", "create role flowgresd_it login in role flowgres_service")
        cls.daemon = Daemon(cls.database, database_url=f"host={SOCKET_DIR} port={PG_PORT} user=flowgresd_it dbname={cls.database}",
                            api_key_touch_interval_ms=200).start()
        cls.admin = cls.daemon.admin_key

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        psql("postgres", f"drop database if exists {cls.database} with (force)")
        psql("postgres", "drop role if exists flowgresd_it")

    def test_the_service_role_can_do_everything_the_api_offers(self):
        user, _, key = self.new_user()
        ws = self.ok("POST", "/api/v1/workspaces", {"name": "Least"}, key, status=201,
                     headers={"Idempotency-Key": "least-1"})
        self.ok("POST", "/api/v1/workspaces", {"name": "Least"}, key, status=201, headers={"Idempotency-Key": "least-1"})
        self.ok("GET", f"/api/v1/workspaces/{ws['id']}/audit-logs", key=key)
        deadline = time.time() + 5
        while time.time() < deadline and psql(self.database, f"select count(*) from flowgres.api_keys where user_id = '{user['id']}' and last_used_at is not null") != "1":
            time.sleep(0.1)
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.api_keys where user_id = '{user['id']}' and last_used_at is not null"), "1")

    def test_the_service_role_cannot_write_tables_directly(self):
        result = subprocess.run(["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "flowgresd_it", "-d", self.database, "-c",
                                 "delete from flowgres.workspaces"], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("permission denied", result.stderr)


class DatabaseRestart(ApiTestCase):
    daemon_settings = {"db_queue_timeout_ms": 500}

    def test_requests_fail_with_503_then_recover_without_restarting_the_daemon(self):
        _, workspace, key = self.new_user()
        self.ok("GET", f"/api/v1/workspaces/{workspace['id']}", key=key)
        cluster = os.path.join(ROOT, "scripts", "cluster.sh")
        subprocess.run([cluster, "down", CLUSTER_DIR], check=True, timeout=60)
        try:
            document = self.fails("GET", f"/api/v1/workspaces/{workspace['id']}", 503, "DB_UNAVAILABLE", key=key)
            code, headers, ready = self.call("GET", "/ready")
            self.assertEqual(code, 503)
            self.assertIsNone(ready["data"]["details"], "what the database said stays in the log")
            self.assertNotIn(SOCKET_DIR, json.dumps(ready))
            code, _, _ = self.call("GET", "/health")
            self.assertEqual(code, 200)
        finally:
            subprocess.run([cluster, "up", CLUSTER_DIR, PG_PORT], check=True, timeout=60)
        deadline = time.time() + 20
        while time.time() < deadline:
            code, _, _ = self.call("GET", f"/api/v1/workspaces/{workspace['id']}", key=key)
            if code == 200:
                break
            time.sleep(0.2)
        self.assertEqual(code, 200)
        self.assertEqual(self.daemon.process.poll(), None)
        self.assertIn('"msg":"database unavailable"', self.daemon.log_text(having='"msg":"database unavailable"'))


if __name__ == "__main__":
    main()
