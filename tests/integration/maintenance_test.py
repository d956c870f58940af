#!/usr/bin/env python3
"""The extension's maintenance worker, on the test cluster (scripts/test.sh points it at
flowgres_test with a 2 s heartbeat timeout and a 200 ms interval): abandoned executions are
failed, live ones are left alone, unclaimed pending ones are announced again."""

import os
import subprocess
import time
import unittest

from harness import PG_PORT, SOCKET_DIR, main, psql

DATABASE = "flowgres_test"


def as_operator(sql):
    return psql(DATABASE, sql)


class MaintenanceWorker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        suffix = str(time.time_ns())
        user = as_operator(f"select flowgres.user_create('worker{suffix}@example.com', 'Worker') -> 'user' ->> 'id'")
        cls.user = user
        workspace = as_operator(f"select id from flowgres.workspaces where owner_user_id = '{user}'")
        act = f"select set_config('flowgres.actor', '{user}', false);"
        cls.act = act
        cls.app = psql(DATABASE, act + f"select flowgres.app_create('{workspace}', 'Maintained {suffix}') ->> 'id'").splitlines()[-1]
        psql(DATABASE, act + f"""select flowgres.version_create('{cls.app}', '1.0.0',
            '{{"nodes": [{{"id": "s", "type": "start"}}, {{"id": "o", "type": "output"}}],
              "edges": [{{"source": "s", "target": "o"}}]}}')""")

    def new_execution(self, start, queued=False):
        execution = psql(DATABASE, self.act + f"select flowgres.execution_create('{self.app}', '{{}}', null, 'trial', {str(queued).lower()}) ->> 'id'").splitlines()[-1]
        if start:
            psql(DATABASE, self.act + f"select flowgres.execution_start('{execution}', 'test')")
        return execution

    def status_of(self, execution):
        return as_operator(f"select status || ' ' || coalesce(error ->> 'error_code', '') from flowgres.executions where id = '{execution}'")

    def test_abandoned_running_executions_fail_and_live_ones_do_not(self):
        stale = self.new_execution(start=True)
        live = self.new_execution(start=True)
        as_operator(f"update flowgres.executions set heartbeat_at = now() - interval '1 minute' where id = '{stale}'")
        deadline = time.time() + 10
        while time.time() < deadline and not self.status_of(stale).startswith("failed"):
            psql(DATABASE, self.act + f"select flowgres.execution_heartbeat('{live}')")
            time.sleep(0.2)
        self.assertEqual(self.status_of(stale).strip(), "failed EXECUTION_ABANDONED")
        self.assertEqual(self.status_of(live).strip(), "running")
        self.assertIsNotNone(as_operator(f"select finished_at from flowgres.executions where id = '{stale}'") or None)

    def test_unclaimed_pending_executions_are_announced_again(self):
        pending = self.new_execution(start=False, queued=True)
        as_operator(f"update flowgres.executions set created_at = now() - interval '1 minute' where id = '{pending}'")
        result = subprocess.run(
            ["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", DATABASE, "-X",
             "-c", "listen flowgres_executions", "-c", "select pg_sleep(1.5)", "-c", "select 1"],
            capture_output=True, text=True, timeout=30)
        self.assertIn(f'payload "{pending}"', result.stdout + result.stderr)
        self.assertEqual(self.status_of(pending).strip(), "pending")
        as_operator(f"delete from flowgres.executions where id = '{pending}'")

    def test_the_worker_is_running(self):
        self.assertEqual(as_operator("select count(*) from pg_stat_activity where backend_type = 'flowgres maintenance'"), "1")


if __name__ == "__main__":
    main()
