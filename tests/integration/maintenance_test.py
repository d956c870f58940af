#!/usr/bin/env python3
"""The extension's maintenance worker, on the test cluster (scripts/test.sh points it at
flowgres_test with a 2 s heartbeat timeout and a 200 ms interval): abandoned executions are
failed, live ones are left alone, unclaimed pending ones are announced again, node events of
long-ended executions are pruned."""

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
            as_operator(f"select flowgres.execution_start('{execution}', 'test')")  # the service's, as the daemon
        return execution

    def status_of(self, execution):
        return as_operator(f"select status || ' ' || coalesce(error ->> 'error_code', '') from flowgres.executions where id = '{execution}'")

    def test_abandoned_running_executions_fail_and_live_ones_do_not(self):
        stale = self.new_execution(start=True)
        live = self.new_execution(start=True)
        as_operator(f"update flowgres.executions set heartbeat_at = now() - interval '1 minute' where id = '{stale}'")
        deadline = time.time() + 10
        while time.time() < deadline and not self.status_of(stale).startswith("failed"):
            as_operator(f"select flowgres.execution_heartbeat('{live}')")
            time.sleep(0.2)
        self.assertEqual(self.status_of(stale).strip(), "failed EXECUTION_ABANDONED")
        self.assertEqual(self.status_of(live).strip(), "running")
        self.assertIsNotNone(as_operator(f"select finished_at from flowgres.executions where id = '{stale}'") or None)

    def test_node_events_of_long_ended_executions_are_pruned(self):
        ended = self.new_execution(start=True)
        running = self.new_execution(start=True)
        for execution in (ended, running):
            as_operator(f"""select flowgres.execution_events_append('{execution}',
                '[{{"sequence": 1, "event": "node_started", "data": {{"node_id": "s"}}}}]')""")
        as_operator(f"select flowgres.execution_finish('{ended}', 'completed', '{{}}')")
        as_operator(f"update flowgres.executions set finished_at = now() - interval '40 days' where id = '{ended}'")
        as_operator(f"update flowgres.execution_events set created_at = now() - interval '40 days' "
                    f"where execution_id in ('{ended}', '{running}')")
        events = lambda execution: as_operator(f"select coalesce(string_agg(event, ',' order by sequence), '') "
                                               f"from flowgres.execution_events where execution_id = '{execution}'")
        # A changed setting is picked up on the next pass, not the next hour.
        as_operator("alter system set flowgres.execution_event_retention_days = 30")
        try:
            as_operator("select pg_reload_conf()")
            deadline = time.time() + 30
            while time.time() < deadline and events(ended) != "execution_finished":
                time.sleep(0.2)
        finally:
            as_operator("alter system reset flowgres.execution_event_retention_days")
            as_operator("select pg_reload_conf()")
        self.assertEqual(events(ended), "execution_finished")
        self.assertEqual(events(running), "node_started")

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

    def test_partition_ddl_gives_way_to_a_long_reader_and_is_retried(self):
        # A month past retention, as a partition the next maintenance pass drops, made by the
        # reader's session right before it takes its lock: the worker (every 200 ms here) has no
        # time to drop it first.
        reader = subprocess.Popen(
            ["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", DATABASE, "-X",
             "-c", "create table flowgres.runtime_events_2020_01 partition of flowgres.runtime_events "
                   "for values from ('2020-01-01 00:00+00') to ('2020-02-01 00:00+00')",
             "-c", "begin; lock table flowgres.runtime_events in access share mode; select pg_sleep(3); commit;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.4)
            started = time.time()
            result = as_operator("select flowgres.partitions_maintain(90)")
            self.assertLess(time.time() - started, 2, "the DDL waited for the reader instead of giving way")
            self.assertIn('"skipped": 1', result)
            self.assertEqual(as_operator("select to_regclass('flowgres.runtime_events_2020_01') is not null"), "t")
            # Inserts (every admission writes events) do not queue behind waiting DDL.
            started = time.time()
            as_operator("insert into flowgres.runtime_events (workspace_id, event_type) "
                        "values (gen_random_uuid(), 'test.during_reader')")
            self.assertLess(time.time() - started, 2)
            # The worker meets the same lock, then tries again each pass until the reader is gone.
            as_operator("select pg_reload_conf()")
        finally:
            reader.wait(timeout=30)
        deadline = time.time() + 15
        while time.time() < deadline and as_operator("select to_regclass('flowgres.runtime_events_2020_01') is null") != "t":
            time.sleep(0.2)
        self.assertEqual(as_operator("select to_regclass('flowgres.runtime_events_2020_01') is null"), "t")
        as_operator("delete from flowgres.runtime_events where event_type = 'test.during_reader'")

    def test_expired_visitor_sessions_are_purged(self):
        workspace = as_operator(f"select workspace_id from flowgres.apps where id = '{self.app}'")
        old = as_operator(f"insert into flowgres.app_sessions (workspace_id, app_id, session_type, ip_hash, expires_at) "
                          f"values ('{workspace}', '{self.app}', 'anon', 'x', now() - interval '2 hours') returning id").splitlines()[0]
        live = as_operator(f"insert into flowgres.app_sessions (workspace_id, app_id, session_type, ip_hash, expires_at) "
                           f"values ('{workspace}', '{self.app}', 'anon', 'y', now() + interval '2 hours') returning id").splitlines()[0]
        as_operator("select pg_reload_conf()")  # a reload starts the hourly clean-ups over
        deadline = time.time() + 15
        while time.time() < deadline and as_operator(f"select count(*) from flowgres.app_sessions where id = '{old}'") != "0":
            time.sleep(0.2)
        self.assertEqual(as_operator(f"select count(*) from flowgres.app_sessions where id = '{old}'"), "0")
        self.assertEqual(as_operator(f"select count(*) from flowgres.app_sessions where id = '{live}'"), "1")

    def test_the_worker_is_running(self):
        self.assertEqual(as_operator("select count(*) from pg_stat_activity where backend_type = 'flowgres maintenance'"), "1")


if __name__ == "__main__":
    main()
