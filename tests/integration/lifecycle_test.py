#!/usr/bin/env python3
"""flowgresd's life: configuration errors at start-up, graceful shutdown with requests in
flight, and the database restarting under a running daemon."""

import os
import subprocess
import threading
import time

from harness import DAEMON, PG_PORT, ROOT, SOCKET_DIR, ApiTestCase, Daemon, fresh_database, main, psql

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
        # Hold the workspace rows so the next request waits in the database.
        locker = subprocess.Popen(
            ["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", self.database, "-v", "ON_ERROR_STOP=1", "-c",
             "begin; lock table flowgres.workspaces in access exclusive mode; select pg_sleep(1.5); commit;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
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


class DatabaseRestart(ApiTestCase):
    daemon_settings = {"db_queue_timeout_ms": 500}

    def test_requests_fail_with_503_then_recover_without_restarting_the_daemon(self):
        _, workspace, key = self.new_user()
        self.ok("GET", f"/api/v1/workspaces/{workspace['id']}", key=key)
        cluster = os.path.join(ROOT, "scripts", "cluster.sh")
        subprocess.run([cluster, "down", CLUSTER_DIR], check=True, timeout=60)
        try:
            document = self.fails("GET", f"/api/v1/workspaces/{workspace['id']}", 503, "DB_UNAVAILABLE", key=key)
            code, headers, _ = self.call("GET", "/ready")
            self.assertEqual(code, 503)
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
        self.assertIn('"msg":"database unavailable"', self.daemon.log_text())


if __name__ == "__main__":
    main()
