#!/usr/bin/env python3
"""Runtime admission reads workspaces, apps with their policies, versions, plan limits and
visitors' sessions from per-backend caches (README "Performance"). Every change to them must
still count from the very next request, at every daemon and on every pooled connection: a
policy change, a rename, a quota, a suspension by hand in SQL, an archive, a session blocked,
unblocked, moved, shortened or deleted. The management API's key authentication and role
checks are cached the same way: a key revoked or expiring, a user disabled, a member removed
or a role's permissions changed count from the next request too, and so does a new version of an
app that has none published (its runs run the latest). Two daemons share the
database; each is warmed up before every change so that its connections hold the old rows."""

import datetime
import json
import time
from concurrent.futures import ThreadPoolExecutor

from harness import Daemon, main, psql
from runtime_test import GREETER, RuntimeCase


class TwoDaemonsCase(RuntimeCase):
    """RuntimeCase with a second daemon (self.other) on the same database."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other = Daemon(cls.database, **cls.daemon_settings).start()

    @classmethod
    def tearDownClass(cls):
        cls.other.stop()
        super().tearDownClass()


class CachedAdmission(TwoDaemonsCase):

    def execute(self, daemon, path, headers=None):
        code, _, body = self.visit("POST", path, {"inputs": {"name": "Ada"}}, headers=headers, daemon=daemon)
        return code, (body.get("error_code") if code != 200 else body["data"]["status"])

    def everywhere(self, path, expected, headers=None, warm=False):
        """Every daemon answers `expected` (status, error code or run status), several times, so
        that more than one pooled connection of each is asked."""
        for daemon in (self.daemon, self.other):
            for _ in range(6 if warm else 3):
                self.assertEqual(self.execute(daemon, path, headers), expected, f"daemon on port {daemon.port}")

    def test_each_change_counts_from_the_next_request_at_every_daemon(self):
        app = self.published("cached", policy={"rate_limit": {"per_ip": {"max_requests": 100000, "window_seconds": 60}}})
        base = f"/runtime/{self.ws_slug}/cached"
        self.everywhere(base, (200, "completed"), warm=True)

        # The access policy.
        self.ok("PATCH", f"/api/v1/apps/{app['id']}/access-policy", {"access_mode": "public_auth"}, self.key)
        self.everywhere(base, (401, "AUTH_REQUIRED"))
        self.ok("PATCH", f"/api/v1/apps/{app['id']}/access-policy", {"access_mode": "public_anonymous"}, self.key)
        self.everywhere(base, (200, "completed"), warm=True)

        # A new slug: the old one redirects, the new one serves.
        self.ok("PATCH", f"/api/v1/apps/{app['id']}", {"slug": "cached-renamed"}, self.key)
        self.everywhere(base, (301, "NOT_FOUND"))
        renamed = f"/runtime/{self.ws_slug}/cached-renamed"
        self.everywhere(renamed, (200, "completed"), warm=True)

        # The plan's quota, overridden for the workspace: used up from the next request.
        used = int(psql(self.database, "select coalesce(sum(quantity), 0) from flowgres.usage_events "
                                       f"where workspace_id = '{self.workspace['id']}' and dimension = 'requests' "
                                       "and created_at >= date_trunc('month', now())"))
        self.ok("PUT", f"/api/v1/workspaces/{self.workspace['id']}/quotas/requests", {"quota": used}, self.admin)
        self.everywhere(renamed, (429, "QUOTA_EXCEEDED"))
        self.ok("DELETE", f"/api/v1/workspaces/{self.workspace['id']}/quotas/requests", key=self.admin)
        self.everywhere(renamed, (200, "completed"), warm=True)

        # A suspension written by hand in SQL (no API involved) counts as well.
        psql(self.database, f"update flowgres.workspaces set status = 'suspended' where id = '{self.workspace['id']}'")
        try:
            self.everywhere(renamed, (403, "WORKSPACE_SUSPENDED"))
        finally:
            psql(self.database, f"update flowgres.workspaces set status = 'active' where id = '{self.workspace['id']}'")
        self.everywhere(renamed, (200, "completed"), warm=True)

        # A new published version runs from the next request.
        greeting = {"nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"name": "name"}]}},
                              {"id": "out", "type": "output", "config": {"value": "bye {{name}}"}}],
                    "edges": [{"source": "start", "target": "out"}]}
        version = self.ok("POST", f"/api/v1/apps/{app['id']}/versions", {"version": "2.0.0", "workflow": greeting}, self.key,
                          status=201)
        self.ok("POST", f"/api/v1/apps/{app['id']}/publish", {"version_id": version["id"]}, self.key)
        for daemon in (self.daemon, self.other):
            for _ in range(3):
                _, _, run = self.visit("POST", renamed, {"inputs": {"name": "Ada"}}, daemon=daemon)
                self.assertEqual(run["data"]["outputs"], {"out": "bye Ada"})

        # Archived (deprecated first): gone from the next request. A deprecated app serves its
        # existing sessions only: the clients that used it today (their derived session) but no
        # new one.
        self.ok("POST", f"/api/v1/apps/{app['id']}/deprecate", {}, self.key)
        self.everywhere(renamed, (410, "APP_DEPRECATED"), headers={"User-Agent": "a-new-client/1.0"})
        self.everywhere(renamed, (200, "completed"))
        self.ok("POST", f"/api/v1/apps/{app['id']}/archive", {}, self.key)
        self.everywhere(renamed, (410, "APP_ARCHIVED"))

    def test_each_change_to_a_session_counts_from_the_next_request_at_every_daemon(self):
        self.published("sessions", policy={"rate_limit": {"per_ip": {"max_requests": 100000, "window_seconds": 60}}})
        other = self.published("elsewhere")
        base = f"/runtime/{self.ws_slug}/sessions"
        # A client that sends no session has the one derived for it; a page starts its own.
        _, headers, _ = self.visit("POST", base, {"inputs": {"name": "Ada"}})
        derived = headers["x-app-session-id"]
        _, headers, _ = self.visit("GET", base)
        page = headers["x-app-session-id"]
        with_page = {"X-App-Session-Id": page}
        self.everywhere(base, (200, "completed"), warm=True)
        self.everywhere(base, (200, "completed"), headers=with_page, warm=True)

        def sessions(sql):
            psql(self.database, f"update flowgres.app_sessions set {sql} where id in ('{derived}', '{page}')")

        sessions("blocked_at = now(), blocked_reason = 'by hand'")
        self.everywhere(base, (403, "SESSION_BLOCKED"))
        self.everywhere(base, (403, "SESSION_BLOCKED"), headers=with_page)
        code, _, body = self.visit("POST", base, {"inputs": {"name": "Ada"}}, daemon=self.other)
        self.assertEqual(body["data"]["details"], {"reason": "by hand"})
        sessions("blocked_reason = 'another reason'")
        code, _, body = self.visit("POST", base, {"inputs": {"name": "Ada"}}, daemon=self.other)
        self.assertEqual((code, body["data"]["details"]), (403, {"reason": "another reason"}), "a new reason shows at once")
        sessions("blocked_at = null, blocked_reason = null")
        self.everywhere(base, (200, "completed"), warm=True)
        self.everywhere(base, (200, "completed"), headers=with_page, warm=True)

        # Moved to another app (by hand: nothing does it otherwise): not this app's any more.
        psql(self.database, f"update flowgres.app_sessions set app_id = '{other['id']}' where id = '{page}'")
        self.everywhere(base, (403, "SESSION_INVALID"), headers=with_page)
        psql(self.database, f"update flowgres.app_sessions set app_id = (select id from flowgres.apps where slug = 'sessions' "
                            f"and workspace_id = '{self.workspace['id']}') where id = '{page}'")
        self.everywhere(base, (200, "completed"), headers=with_page, warm=True)

        # Ended early: the page's session is over, and the next request starts another one.
        psql(self.database, f"update flowgres.app_sessions set expires_at = now() - interval '1 second' where id = '{page}'")
        for daemon in (self.daemon, self.other):
            code, headers, _ = self.visit("POST", base, {"inputs": {"name": "Ada"}}, headers=with_page, daemon=daemon)
            self.assertEqual(code, 200)
            self.assertNotEqual(headers["x-app-session-id"], page, f"daemon on port {daemon.port}")

        # Deleted (as the hourly purge does): made again, unblocked, for the same client.
        sessions("blocked_at = now(), blocked_reason = 'by hand'")
        self.everywhere(base, (403, "SESSION_BLOCKED"))
        psql(self.database, f"delete from flowgres.app_sessions where id = '{derived}'")
        self.everywhere(base, (200, "completed"))
        self.assertEqual(psql(self.database, f"select blocked_at is null from flowgres.app_sessions where id = '{derived}'"), "t")

        # A block made in replica mode counts too; one rolled back changes nothing.
        psql(self.database, "begin; update flowgres.app_sessions set blocked_at = now() "
                            f"where id = '{derived}'; rollback;")
        self.everywhere(base, (200, "completed"), warm=True)
        psql(self.database, "set session_replication_role = replica; "
                            f"update flowgres.app_sessions set blocked_at = now() where id = '{derived}'")
        self.everywhere(base, (403, "SESSION_BLOCKED"))

    def test_a_block_made_while_sixty_four_requests_run_holds_for_every_request_after_it(self):
        self.published("hammered", policy={"rate_limit": {"per_ip": {"max_requests": 100000, "window_seconds": 60}}})
        base = f"/runtime/{self.ws_slug}/hammered"
        _, headers, _ = self.visit("POST", base, {"inputs": {"name": "Ada"}})
        session = headers["x-app-session-id"]
        self.everywhere(base, (200, "completed"), warm=True)

        def hammer(index):
            return self.execute(self.daemon if index % 2 else self.other, base)
        with ThreadPoolExecutor(max_workers=64) as pool:
            during = [pool.submit(hammer, index) for index in range(128)]
            psql(self.database, f"update flowgres.app_sessions set blocked_at = now(), blocked_reason = 'mid-flight' "
                                f"where id = '{session}'")
            after = list(pool.map(hammer, range(64)))
            during = [future.result() for future in during]
        self.assertTrue(set(during) <= {(200, "completed"), (403, "SESSION_BLOCKED")}, set(during))
        self.assertEqual(set(after), {(403, "SESSION_BLOCKED")}, "every request after the block commits is refused")

    def test_a_change_rolled_back_changes_nothing(self):
        self.published("kept")
        base = f"/runtime/{self.ws_slug}/kept"
        self.everywhere(base, (200, "completed"), warm=True)
        psql(self.database, "begin; update flowgres.app_access_policies set access_mode = 'private' where app_id = "
                            f"(select id from flowgres.apps where slug = 'kept' and workspace_id = '{self.workspace['id']}'); "
                            "rollback;")
        self.everywhere(base, (200, "completed"))

    def test_a_change_made_in_replica_mode_counts_too(self):
        # Bulk loads and logical-replication applies run with session_replication_role =
        # replica, where ordinary triggers stay silent: the caches' triggers fire anyway.
        app = self.published("replicated")
        base = f"/runtime/{self.ws_slug}/replicated"
        self.everywhere(base, (200, "completed"), warm=True)
        psql(self.database, "set session_replication_role = replica; "
                            "update flowgres.app_access_policies set access_mode = 'public_auth' "
                            f"where app_id = '{app['id']}'")
        self.everywhere(base, (401, "AUTH_REQUIRED"))


class CachedKeysAndRoles(TwoDaemonsCase):
    """A member's trial runs (key authentication, then app_edit on the app's workspace) and a
    read of the workspace (membership), at two daemons."""

    def join(self, user, key, role="member"):
        self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/members", {"email": user["email"], "role": role},
                self.key, status=201)
        self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/members/accept", key=key)

    def answers(self, daemon, app, key):
        """(status, the run's status or the error code) of a trial run, and (status, "OK" or the
        error code) of a read of the workspace."""
        code, _, run = daemon.request("POST", f"/api/v1/apps/{app['id']}/runs", body={"inputs": {"name": "Ada"}}, key=key)
        read, _, workspace = daemon.request("GET", f"/api/v1/workspaces/{self.workspace['id']}", key=key)
        return ((code, run["data"]["status"] if code == 200 else run["error_code"]),
                (read, workspace["error_code"] if read != 200 else "OK"))

    def everywhere(self, app, key, expected, warm=False):
        for daemon in (self.daemon, self.other):
            for _ in range(6 if warm else 3):
                self.assertEqual(self.answers(daemon, app, key), expected, f"daemon on port {daemon.port}")

    def test_each_change_to_a_key_a_user_or_a_role_counts_from_the_next_request_at_every_daemon(self):
        app = self.app_with(self.key, self.workspace, GREETER)
        user, _, key = self.new_user("member")
        self.join(user, key)
        allowed = ((200, "completed"), (200, "OK"))
        self.everywhere(app, key, allowed, warm=True)

        # The member role loses app_edit, by hand in SQL: runs are refused, reading is not.
        role = f"workspace_id = '{self.workspace['id']}' and name = 'member'"
        psql(self.database, f"update flowgres.workspace_roles set permissions = permissions - 'app_edit' where {role}")
        self.everywhere(app, key, ((403, "PERMISSION_DENIED"), (200, "OK")))
        psql(self.database, f"update flowgres.workspace_roles set permissions = permissions || '[\"app_edit\"]' "
                            f"where {role}")
        self.everywhere(app, key, allowed, warm=True)

        # Removed from the workspace: its app and members are out of sight; back once invited.
        self.ok("DELETE", f"/api/v1/workspaces/{self.workspace['id']}/members/{user['id']}", key=self.key)
        self.everywhere(app, key, ((404, "APP_NOT_FOUND"), (404, "WORKSPACE_NOT_FOUND")))
        self.join(user, key)
        self.everywhere(app, key, allowed, warm=True)

        # The user disabled by hand: every key of theirs stops.
        psql(self.database, f"update flowgres.users set status = 'disabled' where id = '{user['id']}'")
        self.everywhere(app, key, ((401, "UNAUTHENTICATED"), (401, "UNAUTHENTICATED")))
        psql(self.database, f"update flowgres.users set status = 'active' where id = '{user['id']}'")
        self.everywhere(app, key, allowed, warm=True)

        # The key revoked through the other daemon.
        key_id = self.ok("GET", "/api/v1/api-keys", key=key)["items"][0]["id"]
        code, _, _ = self.other.request("POST", f"/api/v1/api-keys/{key_id}/revoke", body={"reason": "leaked"}, key=key)
        self.assertEqual(code, 200)
        self.everywhere(app, key, ((401, "UNAUTHENTICATED"), (401, "UNAUTHENTICATED")))

    def test_a_new_version_of_an_unpublished_app_runs_from_the_next_trial_run_at_every_daemon(self):
        # With no version published, a run without a version named runs the latest one made.
        app = self.app_with(self.key, self.workspace, GREETER)

        def outputs(daemon):
            code, _, run = daemon.request("POST", f"/api/v1/apps/{app['id']}/runs", body={"inputs": {"name": "Ada"}},
                                          key=self.key)
            self.assertEqual(code, 200, run)
            return run["data"]["outputs"]

        for daemon in (self.daemon, self.other):
            for _ in range(6):
                self.assertEqual(outputs(daemon), {"out": "hello Ada"})
        farewell = {"nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"name": "name"}]}},
                              {"id": "out", "type": "output", "config": {"value": "bye {{name}}"}}],
                    "edges": [{"source": "start", "target": "out"}]}
        # Made by hand in SQL, which touches nothing else (the API also updates the app).
        psql(self.database, "insert into flowgres.app_versions (app_id, workspace_id, version, workflow) "
                            f"values ('{app['id']}', '{self.workspace['id']}', '2.0.0', '{json.dumps(farewell)}')")
        for daemon in (self.daemon, self.other):
            for _ in range(3):
                self.assertEqual(outputs(daemon), {"out": "bye Ada"}, f"daemon on port {daemon.port}")

    def test_a_key_that_expires_with_nothing_written_stops_at_its_expiry(self):
        app = self.app_with(self.key, self.workspace, GREETER)
        user, _, key = self.new_user("expiring")
        self.join(user, key)
        expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=3)
        short = self.ok("POST", "/api/v1/api-keys", {"name": "short", "expires_at": expiry.isoformat()}, key, status=201)
        self.everywhere(app, short["key"], ((200, "completed"), (200, "OK")), warm=True)
        time.sleep(max(0.0, (expiry - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) + 0.2)
        self.everywhere(app, short["key"], ((401, "UNAUTHENTICATED"), (401, "UNAUTHENTICATED")))
        code, _, document = self.other.request("GET", "/api/v1/workspaces", key=short["key"])
        self.assertEqual((code, document["data"]["details"]["reason"]), (401, "expired"))


if __name__ == "__main__":
    main()
