#!/usr/bin/env python3
"""Every limit under concurrency: N sessions at once against the plan's app and member limits,
the last owner, a user's API keys, a pool server's database slots, and the request quota and
spend limit at the runtime. Where a row lock serialises the check, another session holds that
lock first, so every contender has taken its statement snapshot before it waits: a check that
counts from that snapshot lets all of them through, which is the race these tests pin."""

import json
import re
import subprocess
import threading
import time

from concurrent.futures import ThreadPoolExecutor

from harness import PG_PORT, SOCKET_DIR, Daemon, main, psql
from runtime_test import RuntimeCase


def error_code(stderr):
    found = re.search(r'"error_code"\s*:\s*"([A-Z_]+)"', stderr)
    return found.group(1) if found else stderr.strip()[-200:]


def session(database, actor, statement):
    """A psql session acting for `actor` (a user id, or '' for the operator)."""
    return subprocess.Popen(
        ["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", database, "-AtX", "-v", "ON_ERROR_STOP=1",
         "-c", f"select set_config('flowgres.actor', '{actor}', false)", "-c", statement],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def at_once(database, calls, hold=None, hold_seconds=1.0):
    """Runs each (actor, statement) in its own session, all at once; returns 'ok' or the error
    code of each. `hold`: a statement taking the lock that serialises the check, kept by another
    session while the contenders start."""
    holder = None
    if hold:
        holder = subprocess.Popen(
            ["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", database, "-X", "-c",
             f"begin; {hold}; select pg_sleep({hold_seconds}); commit;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
    processes = [session(database, actor, statement) for actor, statement in calls]
    results = []
    for process in processes:
        _, stderr = process.communicate(timeout=60)
        results.append("ok" if process.returncode == 0 else error_code(stderr))
    if holder:
        holder.wait(timeout=60)
    return results


class Limits(RuntimeCase):

    def sql(self, statement):
        return psql(self.database, statement)

    def user(self, email):
        return self.sql(f"select set_config('flowgres.actor', '', false); "
                        f"select flowgres.user_create('{email}', 'Limit Test') -> 'user' ->> 'id'").splitlines()[-1]

    def home(self, user_id):
        return self.sql(f"select id from flowgres.workspaces where owner_user_id = '{user_id}' order by created_at limit 1")

    def test_eight_app_creations_at_once_stop_at_the_free_plans_three(self):
        owner = self.user("apps-race@example.com")
        ws = self.home(owner)
        self.assertEqual(self.sql(f"select plan from flowgres.workspaces where id = '{ws}'"), "free")
        results = at_once(self.database, [(owner, f"select flowgres.app_create('{ws}', 'App {i}')") for i in range(8)],
                          hold=f"select 1 from flowgres.workspaces where id = '{ws}' for update")
        self.assertEqual(sorted(results), ["APP_QUOTA_EXCEEDED"] * 5 + ["ok"] * 3, results)
        self.assertEqual(self.sql(f"select count(*) from flowgres.apps where workspace_id = '{ws}'"), "3")

    def test_eight_invitations_at_once_stop_at_the_member_limit(self):
        owner = self.user("members-race@example.com")
        ws = self.home(owner)
        guests = [f"guest{i}-race@example.com" for i in range(8)]
        for email in guests:
            self.user(email)
        results = at_once(self.database, [(owner, f"select flowgres.member_invite('{ws}', '{email}')") for email in guests],
                          hold=f"select 1 from flowgres.workspaces where id = '{ws}' for update")
        self.assertEqual(sorted(results), ["MEMBER_QUOTA_EXCEEDED"] * 4 + ["ok"] * 4, results)
        self.assertEqual(self.sql(f"select count(*) from flowgres.workspace_members where workspace_id = '{ws}'"), "5")

    def test_two_owners_leaving_at_once_leave_one_owner(self):
        first = self.user("owner-a-race@example.com")
        second = self.user("owner-b-race@example.com")
        ws = self.home(first)
        self.sql(f"select set_config('flowgres.actor', '{first}', false); "
                 f"select flowgres.member_invite('{ws}', 'owner-b-race@example.com', 'owner')")
        self.sql(f"select set_config('flowgres.actor', '{second}', false); select flowgres.member_accept('{ws}')")
        for statement in ("member_remove('{ws}', '{me}')", "member_update_role('{ws}', '{me}', 'member')"):
            results = at_once(self.database,
                              [(me, "select flowgres." + statement.format(ws=ws, me=me)) for me in (first, second)],
                              hold=f"select 1 from flowgres.workspaces where id = '{ws}' for update")
            self.assertEqual(sorted(results), ["LAST_OWNER", "ok"], results)
            owners = self.sql(f"""select count(*) from flowgres.workspace_members m join flowgres.workspace_roles r
                                  on r.id = m.role_id where m.workspace_id = '{ws}' and r.name = 'owner'
                                  and m.status = 'active'""")
            self.assertEqual(owners, "1")
            # Put the one who left back as an owner for the second round.
            remaining = self.sql(f"""select m.user_id from flowgres.workspace_members m join flowgres.workspace_roles r
                                     on r.id = m.role_id where m.workspace_id = '{ws}' and r.name = 'owner'""")
            other = second if remaining == first else first
            email = "owner-b-race@example.com" if other == second else "owner-a-race@example.com"
            if self.sql(f"select count(*) from flowgres.workspace_members where workspace_id = '{ws}' and user_id = '{other}'") == "0":
                self.sql(f"select set_config('flowgres.actor', '{remaining}', false); "
                         f"select flowgres.member_invite('{ws}', '{email}', 'owner')")
                self.sql(f"select set_config('flowgres.actor', '{other}', false); select flowgres.member_accept('{ws}')")

    def test_ten_key_creations_at_once_stop_at_fifty_active_keys(self):
        holder = self.user("keys-race@example.com")
        self.sql(f"select set_config('flowgres.actor', '{holder}', false); "
                 "select count(flowgres.api_key_create('key ' || i)) from generate_series(1, 45) i")
        results = at_once(self.database, [(holder, f"select flowgres.api_key_create('late {i}')") for i in range(10)],
                          hold=f"select 1 from flowgres.users where id = '{holder}' for update")
        self.assertEqual(results.count("ok"), 5, results)
        self.assertEqual(self.sql(f"select count(*) from flowgres.api_keys where user_id = '{holder}' and revoked_at is null"), "50")

    def test_six_placements_at_once_fill_a_server_of_two(self):
        self.sql("select set_config('flowgres.actor', '', false); update flowgres.database_servers set status = 'draining'; "
                 "select flowgres.database_server_add('slots', '127.0.0.9', 6009, 'host=/tmp port=6009 user=postgres', 2)")
        workspaces = [self.home(self.user(f"placed{i}-race@example.com")) for i in range(6)]
        results = at_once(self.database, [("", f"select flowgres.workspace_database_claim('{ws}', 'provision', 'p{i}')")
                                          for i, ws in enumerate(workspaces)],
                          hold="select pg_advisory_xact_lock(hashtext('flowgres.database_placement'))")
        self.assertEqual(sorted(results), ["NO_DATABASE_SERVER"] * 4 + ["ok"] * 2, results)
        self.assertEqual(self.sql("select count(*) from flowgres.workspace_databases d join flowgres.database_servers s "
                                  "on s.id = d.server_id where s.name = 'slots'"), "2")

    def test_trial_runs_are_metered_and_capped_at_once(self):
        _, workspace, key = self.new_user("trial-race")
        ws = workspace["id"]
        from runtime_test import GREETER
        app = self.ok("POST", f"/api/v1/workspaces/{ws}/apps", {"name": "Trial", "slug": "trial"}, key, status=201)
        self.ok("POST", f"/api/v1/apps/{app['id']}/versions", {"version": "1.0.0", "workflow": GREETER}, key, status=201)
        owner = self.sql(f"select owner_user_id from flowgres.workspaces where id = '{ws}'")
        # Queued runs nobody claims (no daemon on this database takes them while the lock holds):
        # 20 at once against the cap of 16 pending or running per workspace.
        results = at_once(self.database, [(owner, f"select flowgres.execution_create('{app['id']}', '{{\"name\": \"a\"}}', "
                                                  f"null, 'api', false)") for _ in range(20)],
                          hold=f"select 1 from flowgres.workspaces where id = '{ws}' for update")
        self.assertEqual(sorted(results), ["QUOTA_EXCEEDED"] * 4 + ["ok"] * 16, results)
        self.assertEqual(self.sql(f"select count(*) from flowgres.usage_events where workspace_id = '{ws}' "
                                  "and dimension = 'requests'"), "16", "each run is billed as a request")
        self.sql(f"update flowgres.executions set status = 'cancelled', finished_at = now() where workspace_id = '{ws}'")
        # The month's request quota applies to them as to the runtime.
        self.ok("PUT", f"/api/v1/workspaces/{ws}/quotas/requests", {"quota": 17}, self.admin)
        self.ok("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": {"name": "Ada"}}, key)
        code, _, body = self.call("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": {"name": "Ada"}}, key)
        self.assertEqual((code, body["error_code"]), (429, "QUOTA_EXCEEDED"), body)
        self.assertEqual(body["data"]["details"]["exceeded"], "requests")

    def fire(self, path, count):
        """`count` POSTs to the runtime at once, each on its own connection; their statuses."""
        statuses = [None] * count
        start = threading.Barrier(count)

        def one(index):
            start.wait()
            statuses[index] = self.visit("POST", path, {"inputs": {"name": "Ada"}})[0]
        threads = [threading.Thread(target=one, args=(index,)) for index in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        return statuses

    def test_sixteen_runs_at_once_stop_at_a_request_quota_of_five(self):
        self.published("quota-race")
        ws = self.workspace["id"]
        self.ok("PUT", f"/api/v1/workspaces/{ws}/quotas/requests", {"quota": 5}, self.admin)
        try:
            statuses = self.fire(f"/runtime/{self.ws_slug}/quota-race", 16)
            self.assertEqual(sorted(statuses), [200] * 5 + [429] * 11, statuses)
            self.assertEqual(self.sql(f"select count(*) from flowgres.executions where workspace_id = '{ws}' "
                                      "and trigger = 'runtime'"), "5")
        finally:
            self.ok("DELETE", f"/api/v1/workspaces/{ws}/quotas/requests", key=self.admin)

    def test_two_daemons_under_load_admit_exactly_a_quota_of_500(self):
        # 800 visitors at once, 64 at a time on each of two daemons sharing the database: the
        # quota's running total is one for the server, so exactly 500 pass, whichever daemon.
        _, workspace, key = self.new_user("quota-500")
        ws = workspace["id"]
        slug = self.sql(f"select slug from flowgres.workspaces where id = '{ws}'")
        self.sql(f"update flowgres.workspaces set plan = 'enterprise' where id = '{ws}'")
        from runtime_test import GREETER, UI
        app = self.ok("POST", f"/api/v1/workspaces/{ws}/apps", {"name": "Five hundred", "slug": "five-hundred"}, key,
                      status=201)
        version = self.ok("POST", f"/api/v1/apps/{app['id']}/versions",
                          {"version": "1.0.0", "workflow": GREETER, "ui_schema": UI}, key, status=201)
        self.ok("POST", f"/api/v1/apps/{app['id']}/publish", {"version_id": version["id"], "access_policy": {
            "access_mode": "public_anonymous", "rate_limit": {"per_ip": {"max_requests": 100000, "window_seconds": 60}}}},
                key)
        self.ok("PUT", f"/api/v1/workspaces/{ws}/quotas/requests", {"quota": 500}, self.admin)
        other = Daemon(self.database, **self.daemon_settings).start()
        try:
            def visit(index):
                daemon = (self.daemon, other)[index % 2]
                code, _, body = self.visit("POST", f"/runtime/{slug}/five-hundred", {"inputs": {"name": f"v{index}"}},
                                           daemon=daemon)
                return code, body.get("error_code") if code != 200 else body["data"]["status"]
            with ThreadPoolExecutor(max_workers=128) as pool:
                answers = list(pool.map(visit, range(800)))
        finally:
            other.stop()
        counted = {answer: answers.count(answer) for answer in set(answers)}
        self.assertEqual(counted, {(200, "completed"): 500, (429, "QUOTA_EXCEEDED"): 300}, counted)
        self.assertEqual(self.sql(f"select count(*) from flowgres.executions where workspace_id = '{ws}'"), "500")
        self.assertEqual(self.sql(f"select sum(quantity) from flowgres.usage_events where workspace_id = '{ws}' "
                                  "and dimension = 'requests'"), "500", "each billed once")

    def test_sixteen_runs_at_once_stop_at_the_spend_limit(self):
        _, workspace, key = self.new_user("spend-race")
        ws = workspace["id"]
        slug = self.sql(f"select slug from flowgres.workspaces where id = '{ws}'")
        self.sql("insert into flowgres.billing_plans (code, name, price_per_1k_requests_micros) "
                 "values ('race_metered', 'Metered', 2500000) on conflict do nothing")
        self.sql(f"update flowgres.workspaces set plan = 'race_metered' where id = '{ws}'")
        self.publish_in(ws, key, "spender")
        # 0.25 cents a request against 1 cent: four runs, however many arrive at once.
        self.ok("PATCH", f"/api/v1/workspaces/{ws}/budget", {"spend_limit_cents": 1, "spend_limit_enabled": True}, key)
        statuses = self.fire(f"/runtime/{slug}/spender", 16)
        self.assertEqual(sorted(statuses), [200] * 4 + [429] * 12, statuses)
        spent = self.ok("GET", f"/api/v1/workspaces/{ws}/budget", key=key)["spend_micros"]
        self.assertEqual(spent, 10000)


if __name__ == "__main__":
    main()
