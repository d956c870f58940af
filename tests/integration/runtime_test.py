#!/usr/bin/env python3
"""The public runtime through the real daemon: entry, schema and execute of a published app;
the 121st request in a window refused with 429 and Retry-After; limits shared by two daemons;
private and public_auth apps with real HS256 JWTs; forwarding headers believed only from
trusted proxies; old slugs redirected; bad input refused with its code."""

import base64
import hashlib
import hmac
import http.client
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import ApiTestCase, Daemon, main, psql

SECRET = "runtime-test-secret-of-at-least-32-bytes"
GREETER = {"nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"name": "name", "required": True}]}},
                     {"id": "greet", "type": "transform", "config": {"template": {"greeting": "hello {{name}}"}}},
                     {"id": "out", "type": "output", "config": {"value": "{{greet.greeting}}"}}],
           "edges": [{"source": "start", "target": "greet"}, {"source": "greet", "target": "out"}]}
UI = {"schema_version": "1.0.0", "blocks": [{"type": "form", "children": [
    {"type": "input", "id": "name", "input_key": "name", "label": "Name", "validation": {"required": True, "max": 100}}]}]}


def jwt(claims, secret=SECRET):
    def encode(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    signing_input = encode(b'{"alg":"HS256","typ":"JWT"}') + "." + encode(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + encode(signature)


def claims(sub, workspace, **extra):
    return {"sub": sub, "iss": "https://id.test", "aud": "flowgres", "exp": int(time.time()) + 600,
            "workspace": workspace, **extra}


class RuntimeCase(ApiTestCase):
    """A daemon taking JWTs of the test issuer, a user, and published apps on demand."""

    daemon_settings = {"runtime_jwt_secret": SECRET, "runtime_jwt_issuer": "https://id.test",
                       "runtime_jwt_audience": "flowgres", "execution_heartbeat_interval_ms": 200}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        helper = cls()
        cls.owner, cls.workspace, cls.key = helper.new_user("runtime")
        cls.ws_slug = psql(cls.database, f"select slug from flowgres.workspaces where id = '{cls.workspace['id']}'")

    def published(self, slug, policy=None, workflow=GREETER, ui=UI, mode="public_anonymous"):
        psql(self.database, f"update flowgres.workspaces set plan = 'enterprise' where id = '{self.workspace['id']}'")
        return self.publish_in(self.workspace["id"], self.key, slug, policy, workflow, ui, mode)

    def publish_in(self, workspace_id, key, slug, policy=None, workflow=GREETER, ui=UI, mode="public_anonymous"):
        """An app `slug` made, versioned and published in a workspace, on whatever plan it has."""
        app = self.ok("POST", f"/api/v1/workspaces/{workspace_id}/apps", {"name": slug, "slug": slug}, key, status=201)
        version = self.ok("POST", f"/api/v1/apps/{app['id']}/versions",
                          {"version": "1.0.0", "workflow": workflow, "ui_schema": ui}, key, status=201)
        self.ok("POST", f"/api/v1/apps/{app['id']}/publish",
                {"version_id": version["id"], "access_policy": {"access_mode": mode, **(policy or {})}}, key)
        return app

    def visit(self, method, path, body=None, headers=None, daemon=None):
        return (daemon or self.daemon).request(method, path, body=body, headers=headers)


class Runtime(RuntimeCase):

    def test_entry_schema_and_execute(self):
        app = self.published("greeter")
        base = f"/runtime/{self.ws_slug}/greeter"
        code, headers, entry = self.visit("GET", base)
        self.assertEqual(code, 200, entry)
        self.assertEqual(entry["data"]["app"]["name"], "greeter")
        self.assertEqual(entry["data"]["app"]["access_mode"], "public_anonymous")
        session = headers["x-app-session-id"]
        self.assertEqual(entry["data"]["session"]["id"], session)
        self.assertEqual(headers["x-ratelimit-limit"], "120")
        self.assertEqual(headers["x-ratelimit-remaining"], "119")
        self.assertGreater(int(headers["x-ratelimit-reset"]), time.time())
        code, headers, schema = self.visit("GET", base + "/schema", headers={"X-App-Session-Id": session})
        self.assertEqual(code, 200, schema)
        self.assertEqual(headers["x-app-session-id"], session, "the session is kept")
        self.assertEqual(schema["data"]["input_mapping"]["mapped"], ["name"])
        self.assertEqual(schema["data"]["ui_schema"]["blocks"][0]["children"][0]["label"], "Name")
        code, _, run = self.visit("POST", base, {"inputs": {"name": "<img src=x onerror=alert(1)>"}},
                                  headers={"X-App-Session-Id": session})
        self.assertEqual(code, 200, run)
        self.assertEqual(run["data"]["status"], "completed")
        self.assertEqual(run["data"]["outputs"], {"out": "hello <img src=x onerror=alert(1)>"}, "text stays text")
        self.assertNotIn("node_logs", run["data"], "visitors never see node logs")
        stored = psql(self.database, f"select trigger || ' ' || session_id from flowgres.executions where id = '{run['data']['execution_id']}'")
        self.assertEqual(stored, f"runtime {session}")
        code, _, queued = self.visit("POST", base + "?async=true", {"inputs": {"name": "Bo"}})
        self.assertEqual(code, 202, queued)
        deadline = time.time() + 5
        while time.time() < deadline:
            status = psql(self.database, f"select status from flowgres.executions where id = '{queued['data']['execution_id']}'")
            if status == "completed":
                break
            time.sleep(0.05)
        self.assertEqual(status, "completed")
        events = psql(self.database, "select string_agg(distinct event_type, ',' order by event_type) from flowgres.runtime_events "
                                     f"where session_id = '{session}'")
        self.assertEqual(events, "runtime.entry,runtime.schema", "executes and their outcomes are counted, not a row each")
        # The counts become one summary row per app, kind and minute (the maintenance worker's
        # pass, here by hand).
        psql(self.database, "select flowgres.runtime_refusals_flush()")
        counted = psql(self.database, "select string_agg(event_type || '=' || total, ',' order by event_type) from "
                                      "(select event_type, sum((details ->> 'count')::int) total from flowgres.runtime_events "
                                      f"where app_id = '{app['id']}' and details ? 'summary' group by 1) c")
        self.assertEqual(counted, "runtime.execute=2,runtime.execute_succeeded=2")

    def test_an_execute_counts_only_when_its_admission_commits(self):
        app = self.published("counted")
        admission = json.dumps({"action": "execute", "workspace": self.ws_slug, "app": "counted", "ip": "203.0.113.9",
                                "inputs": {"name": "Di"}, "claimed_by": "test"}).replace("'", "''")
        psql(self.database, "select flowgres.runtime_refusals_flush()")  # earlier tests' counts out of the way
        psql(self.database, f"begin; select flowgres.runtime_admit('{admission}'); rollback;")
        psql(self.database, f"select flowgres.runtime_admit('{admission}')")
        psql(self.database, "select flowgres.runtime_refusals_flush()")
        counted = psql(self.database, "select coalesce(sum((details ->> 'count')::int), 0) from flowgres.runtime_events "
                                      f"where app_id = '{app['id']}' and event_type = 'runtime.execute'")
        self.assertEqual(counted, "1", "the rolled-back admission counted for nothing")

    def test_the_121st_request_in_a_window_is_refused(self):
        self.published("busy")
        path = f"/runtime/{self.ws_slug}/busy"
        if time.time() % 60 > 50:  # the window is aligned to the minute: start a fresh one
            time.sleep(61 - time.time() % 60)
        connection = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=10)
        statuses = []
        for _ in range(121):
            connection.request("GET", path)
            response = connection.getresponse()
            body = json.loads(response.read())
            statuses.append(response.status)
        self.assertEqual(statuses[:120], [200] * 120)
        self.assertEqual(statuses[120], 429)
        self.assertEqual(body["error_code"], "RATE_LIMITED")
        self.assertEqual(response.getheader("X-RateLimit-Remaining"), "0")
        self.assertTrue(1 <= int(response.getheader("Retry-After")) <= 60)
        self.assertEqual(body["data"]["details"]["dimension"], "per_ip")
        connection.close()
        limited = psql(self.database, "select count(*) from flowgres.runtime_events where event_type = 'runtime.rate_limited' "
                                      f"and app_id = (select id from flowgres.apps where slug = 'busy')")
        self.assertEqual(limited, "1")

    def test_two_daemons_share_the_limits(self):
        other = Daemon(self.database, admin_key=self.admin).start()
        try:
            self.published("shared", {"rate_limit": {"per_ip": {"max_requests": 10, "window_seconds": 3600}}})
            path = f"/runtime/{self.ws_slug}/shared"
            codes = [self.visit("GET", path, daemon=(self.daemon if i % 2 else other))[0] for i in range(11)]
            self.assertEqual(codes, [200] * 10 + [429])
        finally:
            other.stop()

    def test_private_and_public_auth_apps(self):
        app = self.published("members")
        self.ok("PATCH", f"/api/v1/apps/{app['id']}/access-policy", {"access_mode": "private"}, self.key)
        path = f"/runtime/{self.ws_slug}/members"
        code, headers, body = self.visit("GET", path)
        self.assertEqual((code, body["error_code"]), (401, "AUTH_REQUIRED"))
        code, _, body = self.visit("GET", path, headers={"Authorization": "Bearer " + jwt(claims("stranger", self.ws_slug))})
        self.assertEqual((code, body["error_code"]), (403, "ACCESS_DENIED"))
        code, _, body = self.visit("GET", path, headers={"Authorization": "Bearer " + jwt(claims(self.owner["id"], self.ws_slug))})
        self.assertEqual(code, 200, body)

        self.ok("PATCH", f"/api/v1/apps/{app['id']}/access-policy", {"access_mode": "public_auth"}, self.key)
        code, _, body = self.visit("GET", path)
        self.assertEqual((code, body["error_code"]), (401, "AUTH_REQUIRED"))
        for token in (jwt(claims("visitor", self.ws_slug), secret="forged"), jwt(claims("visitor", self.ws_slug, exp=int(time.time()) - 3600)),
                      jwt(claims("visitor", "another-workspace")), jwt({**claims("visitor", self.ws_slug), "workspace": None}),
                      jwt(claims("visitor", self.ws_slug, aud="someone-else")), "not.a.jwt"):
            code, _, body = self.visit("GET", path, headers={"Authorization": "Bearer " + token})
            self.assertEqual((code, body["error_code"]), (401, "AUTH_REQUIRED"), token)
        code, _, body = self.visit("GET", path, headers={"Authorization": "Bearer " + jwt(claims("visitor", self.ws_slug))})
        self.assertEqual(code, 200, body)
        self.assertEqual(body["data"]["session"]["type"], "auth")
        # The scheme is read as the management API reads it (one parser): any case, then the token.
        code, _, body = self.visit("GET", path, headers={"Authorization": "BEARER  " + jwt(claims("visitor", self.ws_slug))})
        self.assertEqual(code, 200, body)
        for header in ("Basic dmlzaXRvcjpwdw==", "Bearer", jwt(claims("visitor", self.ws_slug))):
            code, _, body = self.visit("GET", path, headers={"Authorization": header})
            self.assertEqual((code, body["error_code"]), (401, "AUTH_REQUIRED"), header)

    def test_data_classification_decides_who_may_run(self):
        app = self.published("classified")
        path = f"/runtime/{self.ws_slug}/classified"
        people = {}
        for role in ("admin", "member"):
            user, _, key = self.new_user(f"classified-{role}")
            self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/members", {"email": user["email"], "role": role},
                    self.key, status=201)
            self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/members/accept", {}, key)
            people[role] = user["id"]
        people["owner"] = self.owner["id"]
        people["outsider"] = self.new_user("classified-outsider")[0]["id"]
        allowed = {"public": {"owner", "admin", "member", "outsider"}, "internal": {"owner", "admin", "member"},
                   "confidential": {"owner", "admin"}, "restricted": {"owner"}}
        for classification, who in allowed.items():
            self.ok("PATCH", f"/api/v1/apps/{app['id']}/access-policy",
                    {"access_mode": "public_auth", "data_classification": classification}, self.key)
            for person, user_id in people.items():
                code, _, body = self.visit("POST", path, {"inputs": {"name": "Ada"}},
                                           headers={"Authorization": "Bearer " + jwt(claims(user_id, self.ws_slug))})
                if person in who:
                    self.assertEqual(code, 200, f"{classification}, {person}: {body}")
                else:
                    self.assertEqual((code, body["error_code"]), (403, "ACCESS_DENIED"), f"{classification}, {person}")
                    self.assertEqual(body["data"]["details"]["data_classification"], classification)
            if classification != "public":
                code, _, body = self.visit("POST", path, {"inputs": {"name": "Ada"}})
                self.assertEqual((code, body["error_code"]), (401, "AUTH_REQUIRED"), classification)

    def test_weak_jwt_settings_stop_start_up(self):
        import subprocess
        from harness import DAEMON
        for changed, named in (({"runtime_jwt_secret": "too-short"}, "runtime_jwt_secret"),
                               ({"runtime_jwt_audience": ""}, "runtime_jwt_audience")):
            settings = {**self.daemon.settings, **changed}
            result = subprocess.run([DAEMON] + [f"--{key}={value}" for key, value in settings.items()],
                                    capture_output=True, text=True, timeout=10)
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertIn(named, result.stderr)

    def test_forwarding_headers_only_from_trusted_proxies(self):
        self.published("guarded", {"blocked_ips": ["198.51.100.9"]})
        path = f"/runtime/{self.ws_slug}/guarded"
        spoof = {"X-Forwarded-For": "198.51.100.9", "Forwarded": "for=198.51.100.9"}
        self.assertEqual(self.visit("GET", path, headers=spoof)[0], 200, "an untrusted peer's headers are ignored")
        behind_proxy = Daemon(self.database, admin_key=self.admin, trusted_proxies="127.0.0.1/32").start()
        try:
            code, _, body = self.visit("GET", path, headers={"X-Forwarded-For": "198.51.100.9"}, daemon=behind_proxy)
            self.assertEqual((code, body["error_code"]), (403, "IP_BLOCKED"))
            code, _, body = self.visit("GET", path, headers={"X-Forwarded-For": "198.51.100.9, 127.0.0.1"}, daemon=behind_proxy)
            self.assertEqual(code, 403, "trusted hops are skipped from the right")
            code, _, _ = self.visit("GET", path, headers={"X-Forwarded-For": "198.51.100.9, 203.0.113.1"}, daemon=behind_proxy)
            self.assertEqual(code, 200, "what the client wrote left of the proxy's entry is not believed")
        finally:
            behind_proxy.stop()

    def test_block_and_gray_lists_match_ranges_and_every_forwarding_line(self):
        self.published("ranged", {"blocked_ips": ["198.51.100.0/24", "2001:db8:bad::/48"], "gray_ips": ["203.0.113.0/24"],
                                  "gray_policy": {"max_requests": 2, "window_seconds": 3600}})
        path = f"/runtime/{self.ws_slug}/ranged"
        behind_proxy = Daemon(self.database, admin_key=self.admin, trusted_proxies="127.0.0.1/32").start()
        try:
            def status(client):
                return self.visit("GET", path, headers={"X-Forwarded-For": client}, daemon=behind_proxy)[0]
            for blocked in ("198.51.100.77", "198.51.100.0", "2001:db8:bad::5", "::ffff:198.51.100.3"):
                self.assertEqual(status(blocked), 403, blocked)
            for allowed in ("198.51.101.1", "2001:db8:bae::1"):
                self.assertEqual(status(allowed), 200, allowed)
            self.assertEqual([status("203.0.113.50") for _ in range(3)], [200, 200, 429], "a gray range gets the gray policy")
            self.published("by-prefix", {"rate_limit": {"per_ip": {"max_requests": 3, "window_seconds": 3600}}})
            prefixed = f"/runtime/{self.ws_slug}/by-prefix"
            codes = [self.visit("GET", prefixed, headers={"X-Forwarded-For": f"2001:db8:77:1::{i}"}, daemon=behind_proxy)[0]
                     for i in range(1, 5)]
            self.assertEqual(codes, [200, 200, 200, 429], "an IPv6 client is counted by its /64")
            self.assertEqual(self.visit("GET", prefixed, headers={"X-Forwarded-For": "2001:db8:77:2::1"},
                                        daemon=behind_proxy)[0], 200, "another /64 is another client")
            # A proxy that adds its own line after the client's: the client's spoofed line is not the answer.
            for header in ("X-Forwarded-For: 203.0.113.99\r\nX-Forwarded-For: 198.51.100.9",
                           "Forwarded: for=203.0.113.98\r\nForwarded: for=198.51.100.9"):
                answer = behind_proxy.raw(f"GET {path} HTTP/1.1\r\nHost: t\r\n{header}\r\nConnection: close\r\n\r\n".encode())
                self.assertIn(b"HTTP/1.1 403", answer.split(b"\r\n")[0], header)
                self.assertIn(b"IP_BLOCKED", answer)
        finally:
            behind_proxy.stop()

    def test_old_slugs_redirect_and_bad_input(self):
        app = self.published("renamed")
        self.ok("PATCH", f"/api/v1/apps/{app['id']}", {"slug": "new-name"}, self.key)
        code, headers, _ = self.visit("GET", f"/runtime/{self.ws_slug}/renamed/schema?x=1")
        self.assertEqual(code, 301)
        self.assertEqual(headers["location"], f"/runtime/{self.ws_slug}/new-name/schema?x=1")
        base = f"/runtime/{self.ws_slug}/new-name"
        code, _, body = self.visit("POST", base, {"inputs": {}})
        self.assertEqual((code, body["error_code"]), (422, "VALIDATION_FAILED"))
        self.assertEqual(body["data"]["details"]["problems"][0]["field"], "inputs.name")
        code, _, body = self.visit("POST", base, {"inputs": "Robert'); drop table flowgres.apps;--"})
        self.assertEqual((code, body["error_code"]), (422, "VALIDATION_FAILED"))
        code, _, body = self.daemon.request("POST", base, raw_body=b"{not json", headers={"Content-Type": "application/json"})
        self.assertEqual(code, 400)
        for path in ("/runtime/", "/runtime/../etc/passwd", "/runtime/UPPER/x", "/runtime/a/b/c/d", "/runtime/%3Cscript%3E"):
            code, _, body = self.visit("GET", path)
            self.assertIn(code, (404,), path)
        code, headers, _ = self.visit("DELETE", base)
        self.assertEqual(code, 405)
        self.assertEqual(headers["allow"], "GET, HEAD, POST, OPTIONS")
        code, headers, body = self.visit("POST", base + "/schema", {"inputs": {}})
        self.assertEqual((code, body["error_code"], headers["allow"]), (405, "METHOD_NOT_ALLOWED", "GET, HEAD, OPTIONS"))
        code, headers, _ = self.visit("OPTIONS", base + "/executions/00000000-0000-4000-8000-000000000000/events")
        self.assertEqual((code, headers["allow"]), (204, "GET, HEAD, OPTIONS"))
        self.assertEqual(self.visit("GET", base + "/schema/")[0], 200, "a trailing slash names the same address")
        code, _, body = self.visit("GET", base + "/executions/not-a-run")
        self.assertEqual((code, body["error_code"]), (404, "EXECUTION_NOT_FOUND"))
        code, _, body = self.visit("GET", f"/runtime/{self.ws_slug}/no-such-app")
        self.assertEqual((code, body["error_code"]), (404, "RUNTIME_APP_NOT_FOUND"))
        self.assertEqual(psql(self.database, "select count(*) > 0 from flowgres.apps"), "t")
        self.assertEqual(self.visit("GET", "/health")[0], 200)


class RuntimeInOpenApi(RuntimeCase):
    """The public runtime's routes come from the same route table as the management API's, so
    /openapi.json describes them (and tools that read it, such as the hostile-input checker,
    reach them): no key required, no Idempotency-Key, the visitor's headers."""

    def test_the_runtime_routes_are_described(self):
        _, _, spec = self.call("GET", "/openapi.json")
        runtime = {(path, method): op for path, item in spec["paths"].items() for method, op in item.items()
                   if path.startswith("/runtime")}
        self.assertEqual({key for key in runtime if key[1] == "post"},
                         {("/runtime/{workspace}", "post"), ("/runtime/{workspace}/{app}", "post")})
        for path in ("/runtime/{workspace}/{app}/schema", "/runtime/{workspace}/{app}/embed",
                     "/runtime/{workspace}/{app}/executions/{execution_id}",
                     "/runtime/{workspace}/{app}/executions/{execution_id}/events", "/runtime/{workspace}/schema"):
            self.assertIn((path, "get"), runtime)
        execute = runtime[("/runtime/{workspace}/{app}", "post")]
        self.assertEqual(execute["operationId"], "executeRuntimeApp")
        self.assertIn({}, execute["security"], "a visitor needs no key")
        names = {parameter["name"] for parameter in execute["parameters"]}
        self.assertEqual(names, {"workspace", "app", "async", "X-App-Session-Id", "X-App-Captcha-Token"})
        body = execute["requestBody"]["content"]["application/json"]["schema"]
        self.assertEqual(set(body["properties"]), {"inputs", "captcha_token"})
        self.assertIn("429", execute["responses"])
        self.assertIn("QUOTA_EXCEEDED", execute["responses"]["429"]["description"])
        events = runtime[("/runtime/{workspace}/{app}/executions/{execution_id}/events", "get")]
        self.assertIn("text/event-stream", events["responses"]["200"]["content"])
        # What the table describes is what answers: the documented execute runs an app.
        self.published("described")
        code, _, run = self.visit("POST", f"/runtime/{self.ws_slug}/described", {"inputs": {"name": "Ada"}})
        self.assertEqual((code, run["data"]["status"]), (200, "completed"))


SITEVERIFY = {"calls": []}


class RuntimeWrites(RuntimeCase):
    """What an anonymous visitor can make the database write: nothing before the rate limits,
    a bounded number of refusal events, and sessions that are purged once expired."""

    def test_refused_requests_write_no_session_and_few_events(self):
        app = self.published("flooded", {"rate_limit": {"per_ip": {"max_requests": 5, "window_seconds": 3600}}})
        path = f"/runtime/{self.ws_slug}/flooded"
        connection = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=10)
        statuses = []
        for _ in range(60):
            connection.request("GET", path)  # no session id: each would have been a new session
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
        connection.close()
        self.assertEqual(statuses, [200] * 5 + [429] * 55)
        count = lambda sql: int(psql(self.database, sql))
        self.assertEqual(count(f"select count(*) from flowgres.app_sessions where app_id = '{app['id']}'"), 5,
                         "only admitted requests leave a session behind")
        rows = lambda: count(f"select count(*) from flowgres.runtime_events where app_id = '{app['id']}' "
                             "and event_type = 'runtime.rate_limited'")
        self.assertLessEqual(rows(), 20, "refusals are counted, not written one row each")
        self.assertGreaterEqual(rows(), 1)
        # The maintenance worker flushes the counts of its database each pass; this test's
        # database has no worker, so the test flushes as the worker would.
        flushed = json.loads(psql(self.database, "select flowgres.runtime_refusals_flush()"))
        self.assertEqual(flushed["lost"], 0)
        self.assertLessEqual(rows(), 22, "the rest became a summary row or two (one per minute)")
        stats = self.ok("GET", f"/api/v1/apps/{app['id']}/access-stats", key=self.key)
        self.assertEqual(stats["refused"], 55, "yet every refusal is counted")
        self.assertEqual(psql(self.database, "select flowgres.runtime_refusals_flush() ->> 'rows'"), "0", "flushed once")

    def test_a_blocked_session_writes_a_bounded_number_of_events(self):
        app = self.published("blocked-session")
        path = f"/runtime/{self.ws_slug}/blocked-session"
        _, headers, _ = self.visit("GET", path)
        session = headers["x-app-session-id"]
        psql(self.database, f"update flowgres.app_sessions set blocked_at = now(), blocked_reason = 'test' where id = '{session}'")
        for _ in range(40):
            code, _, body = self.visit("GET", path, headers={"X-App-Session-Id": session})
            self.assertEqual((code, body["error_code"]), (403, "SESSION_BLOCKED"))
        rows = int(psql(self.database, f"select count(*) from flowgres.runtime_events where app_id = '{app['id']}' "
                                       "and event_type = 'runtime.access_blocked'"))
        self.assertLessEqual(rows, 20)

    def test_an_idempotency_key_is_refused_not_ignored(self):
        self.published("keyed")
        code, _, body = self.visit("POST", f"/runtime/{self.ws_slug}/keyed", {"inputs": {"name": "Ada"}},
                                   headers={"Idempotency-Key": "k1"})
        self.assertEqual((code, body["error_code"]), (422, "VALIDATION_FAILED"))
        self.assertEqual(body["data"]["details"]["problems"][0]["field"], "Idempotency-Key")

    def test_addresses_are_stored_as_an_hmac_under_the_installations_key(self):
        self.published("hashed")
        session = self.visit("GET", f"/runtime/{self.ws_slug}/hashed")[1]["x-app-session-id"]
        stored = psql(self.database, f"select ip_hash from flowgres.app_sessions where id = '{session}'")
        key = bytes.fromhex(psql(self.database, "select encode(value, 'hex') from flowgres.installation_secrets "
                                                "where name = 'ip_hash_key'"))
        self.assertEqual(stored, hmac.new(key, b"127.0.0.1", hashlib.sha256).hexdigest())
        self.assertNotEqual(stored, hashlib.sha256(b"127.0.0.1").hexdigest())

    def test_expired_sessions_are_purged(self):
        app = self.published("purged")
        path = f"/runtime/{self.ws_slug}/purged"
        sessions = [self.visit("GET", path)[1]["x-app-session-id"] for _ in range(3)]
        psql(self.database, f"update flowgres.app_sessions set expires_at = now() - interval '2 hours' "
                            f"where id in ('{sessions[0]}', '{sessions[1]}')")
        self.assertEqual(psql(self.database, "select flowgres.app_sessions_purge(1)"), "1", "in batches")
        self.assertEqual(psql(self.database, "select flowgres.app_sessions_purge()"), "1")
        left = psql(self.database, f"select string_agg(id::text, ',') from flowgres.app_sessions where app_id = '{app['id']}'")
        self.assertEqual(left, sessions[2])
        code, headers, _ = self.visit("GET", path, headers={"X-App-Session-Id": sessions[0]})
        self.assertEqual(code, 200)
        self.assertNotEqual(headers["x-app-session-id"], sessions[0], "a purged session is replaced by a new one")


class RuntimeVisitors(RuntimeCase):
    """A visitor's own runs and their progress stream, and CORS from the app's origin list."""

    def test_a_client_that_sends_no_session_keeps_one_session(self):
        app = self.published("scripted", policy={"rate_limit": {
            "per_ip": {"max_requests": 100000, "window_seconds": 60},
            "per_session": {"max_requests": 100000, "window_seconds": 60}}})
        base = f"/runtime/{self.ws_slug}/scripted"
        agent = {"User-Agent": "nightly-script/1.0"}
        answers = []

        def execute():
            answers.append(self.visit("POST", base, {"inputs": {"name": "Ada"}}, headers=agent))
        # Its first requests of the day race to make the session: all are admitted, one row.
        # (The row has two unique keys; a race once ended in a duplicate key on the one the
        # insert did not name: a few rounds of 64 at once made it show.)
        for round in range(3):
            agent = {"User-Agent": f"nightly-script/1.{round}"}
            answers.clear()
            threads = [threading.Thread(target=execute) for _ in range(64)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            self.assertEqual(sorted(code for code, _, _ in answers), [200] * 64, [a for a in answers if a[0] != 200][:2])
            sessions = {headers["x-app-session-id"] for _, headers, _ in answers}
            self.assertEqual(len(sessions), 1, sessions)
        session = sessions.pop()
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.app_sessions where app_id = '{app['id']}'"),
                         "3", "one session row per client for 64 requests each")
        self.assertEqual(psql(self.database, "select count(*) from flowgres.executions "
                                             f"where app_id = '{app['id']}' and session_id = '{session}'"), "64")
        # Another program on the same address is another client; a page load starts its own.
        _, other, _ = self.visit("POST", base, {"inputs": {"name": "Ada"}}, headers={"User-Agent": "other/2"})
        self.assertNotEqual(other["x-app-session-id"], session)
        _, entry, _ = self.visit("GET", base, headers=agent)
        self.assertNotEqual(entry["x-app-session-id"], session)
        # Its runs are read with the session it was given, not by address alone.
        run = answers[0][2]["data"]["execution_id"]
        code, _, _ = self.visit("GET", f"{base}/executions/{run}", headers=agent)
        self.assertEqual(code, 404)
        code, _, view = self.visit("GET", f"{base}/executions/{run}", headers={**agent, "X-App-Session-Id": session})
        self.assertEqual((code, view["data"]["status"]), (200, "completed"), view)
        # Blocking the session blocks the client even though it never sends it.
        psql(self.database, f"update flowgres.app_sessions set blocked_at = now(), blocked_reason = 'abuse' where id = '{session}'")
        code, _, refused = self.visit("POST", base, {"inputs": {"name": "Ada"}}, headers=agent)
        self.assertEqual((code, refused["error_code"]), (403, "SESSION_BLOCKED"), refused)

    def test_a_visitor_sees_only_their_own_runs(self):
        self.published("tracked")
        base = f"/runtime/{self.ws_slug}/tracked"
        code, headers, accepted = self.visit("POST", base + "?async=true", {"inputs": {"name": "Ada"}})
        self.assertEqual(code, 202, accepted)
        session = headers["x-app-session-id"]
        run = accepted["data"]["execution_id"]
        deadline = time.time() + 10
        while time.time() < deadline:
            code, _, view = self.visit("GET", f"{base}/executions/{run}", headers={"X-App-Session-Id": session})
            if code == 200 and view["data"]["status"] == "completed":
                break
            time.sleep(0.05)
        self.assertEqual(code, 200, view)
        self.assertEqual(view["data"], {"execution_id": run, "status": "completed", "outputs": {"out": "hello Ada"}, "error": None})

        _, other_headers, _ = self.visit("GET", base)  # someone else's session
        for headers in ({}, {"X-App-Session-Id": other_headers["x-app-session-id"]}):
            code, _, refused = self.visit("GET", f"{base}/executions/{run}", headers=headers)
            self.assertEqual((code, refused["error_code"]), (404, "EXECUTION_NOT_FOUND"))
        code, _, refused = self.visit("GET", f"{base}/executions/not-a-uuid", headers={"X-App-Session-Id": session})
        self.assertEqual((code, refused["error_code"]), (404, "EXECUTION_NOT_FOUND"))
        code, _, refused = self.visit("GET", f"{base}/executions/{run}/events/more", headers={"X-App-Session-Id": session})
        self.assertEqual(code, 404)

        # The progress stream: node events without their data, then the outcome.
        connection = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=10)
        connection.request("GET", f"{base}/executions/{run}/events", headers={"X-App-Session-Id": session})
        response = connection.getresponse()
        self.assertEqual(response.status, 200)
        self.assertTrue(response.getheader("Content-Type").startswith("text/event-stream"))
        stream = response.read().decode()
        connection.close()
        events = [block for block in stream.split("\n\n") if block.startswith("id: ")]
        names = [block.split("\n")[1][len("event: "):] for block in events]
        self.assertEqual(names[-1], "execution_finished")
        self.assertIn("node_finished", names)
        for block in events[:-1]:
            data = json.loads(block.split("\n")[2][len("data: "):])
            self.assertNotIn("output", data)
            self.assertLessEqual(set(data), {"node_id", "node_type", "status", "duration_ms"})
        self.assertEqual(json.loads(events[-1].split("\n")[2][len("data: "):])["outputs"], {"out": "hello Ada"})
        code, _, refused = self.visit("GET", f"{base}/executions/{run}/events",
                                      headers={"X-App-Session-Id": other_headers["x-app-session-id"]})
        self.assertEqual((code, refused["error_code"]), (404, "EXECUTION_NOT_FOUND"))

    def test_the_schema_of_a_public_app_is_cacheable_on_request(self):
        app = self.published("cached")
        base = f"/runtime/{self.ws_slug}/cached/schema"
        code, headers, schema = self.visit("GET", base + "?cache=1")
        self.assertEqual(code, 200, schema)
        version = schema["data"]["version_id"]
        self.assertEqual(headers["etag"], f'"{version}"')
        self.assertIn("stale-while-revalidate", headers["cache-control"])
        self.assertTrue(headers["cache-control"].startswith("public"))
        self.assertNotIn("x-app-session-id", headers, "a shared answer carries nobody's session")
        self.assertNotIn("session", schema["data"])
        self.assertEqual(schema["data"]["ui_schema"]["blocks"][0]["type"], "form")
        code, headers, body = self.visit("GET", base + "?cache=1", headers={"If-None-Match": f'"{version}"'})
        self.assertEqual((code, body), (304, None))
        self.assertEqual(headers["etag"], f'"{version}"')
        self.assertNotIn("content-length", headers)
        code, _, _ = self.visit("GET", base + "?cache=1", headers={"If-None-Match": '"another-version"'})
        self.assertEqual(code, 200)
        code, headers, schema = self.visit("GET", base)  # without ?cache: per visitor, as before
        self.assertEqual(code, 200)
        self.assertNotIn("etag", headers)
        self.assertIn("x-app-session-id", headers)
        # A members-only app is never cacheable.
        self.ok("PATCH", f"/api/v1/apps/{app['id']}/access-policy", {"access_mode": "private"}, self.key)
        token = jwt(claims(self.owner["id"], self.ws_slug))
        code, headers, _ = self.visit("GET", base + "?cache=1", headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(code, 200)
        self.assertNotIn("etag", headers)

    def test_cors_preflight_and_answers_follow_the_origin_list(self):
        self.published("shop", {"allowed_origins": ["https://shop.example"]})
        base = f"/runtime/{self.ws_slug}/shop"
        preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type, x-app-session-id"}
        code, headers, _ = self.visit("OPTIONS", base, headers=preflight)
        self.assertEqual(code, 204)
        self.assertEqual(headers["access-control-allow-origin"], "https://shop.example")
        self.assertIn("POST", headers["access-control-allow-methods"])
        self.assertIn("X-App-Session-Id", headers["access-control-allow-headers"])
        self.assertEqual(headers["vary"], "Origin")
        code, headers, refused = self.visit("OPTIONS", base, headers={**preflight, "Origin": "https://evil.example"})
        self.assertEqual((code, refused["error_code"]), (403, "ORIGIN_NOT_ALLOWED"))
        self.assertNotIn("access-control-allow-origin", headers)
        code, headers, _ = self.visit("OPTIONS", base)
        self.assertEqual(code, 204)
        self.assertIn("OPTIONS", headers["allow"])

        code, headers, _ = self.visit("POST", base, {"inputs": {"name": "Cy"}}, headers={"Origin": "https://shop.example"})
        self.assertEqual(code, 200)
        self.assertEqual(headers["access-control-allow-origin"], "https://shop.example")
        self.assertIn("X-App-Session-Id", headers["access-control-expose-headers"])
        code, headers, _ = self.visit("POST", base, {"inputs": {"name": "Cy"}}, headers={"Origin": "https://evil.example"})
        self.assertEqual(code, 403)
        self.assertNotIn("access-control-allow-origin", headers)

    def test_wildcard_origins_mean_what_they_say_in_calls_and_preflights(self):
        self.published("wild", {"allowed_origins": ["https://*.shop.example"]})
        base = f"/runtime/{self.ws_slug}/wild"
        for origin, allowed in (("https://eu.shop.example", True), ("https://a.b.shop.example", True),
                                ("https://shop.example", False), ("https://evilshop.example", False),
                                ("http://eu.shop.example", False)):
            code, headers, _ = self.visit("OPTIONS", base, headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
            self.assertEqual(code, 204 if allowed else 403, origin)
            code, headers, _ = self.visit("POST", base, {"inputs": {"name": "Cy"}}, headers={"Origin": origin})
            self.assertEqual(code, 200 if allowed else 403, origin)
            self.assertEqual(headers.get("access-control-allow-origin"), origin if allowed else None, origin)
        self.published("anyone", {"allowed_origins": ["*"]})
        code, headers, _ = self.visit("POST", f"/runtime/{self.ws_slug}/anyone", {"inputs": {"name": "Cy"}},
                                      headers={"Origin": "https://whoever.test"})
        self.assertEqual((code, headers.get("access-control-allow-origin")), (200, "https://whoever.test"), "* is any origin")
        _, headers, _ = self.visit("GET", f"/runtime/{self.ws_slug}/anyone/embed")
        self.assertIn("frame-ancestors 'self' *;", headers["content-security-policy"], "and any site may frame it")


class SlowUpstream(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        time.sleep(1.0)
        body = b'{"slow": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class RuntimeLoadShedding(RuntimeCase):
    """One worker with one run in flight at most: the next execute is shed with 503 before the
    database is asked (max_in_flight counts per worker)."""

    daemon_settings = {**RuntimeCase.daemon_settings, "max_in_flight": 1, "workers": 1, "egress_allow": "127.0.0.0/8"}

    def test_past_max_in_flight_requests_are_shed(self):
        upstream = ThreadingHTTPServer(("127.0.0.1", 0), SlowUpstream)
        threading.Thread(target=upstream.serve_forever, daemon=True).start()
        try:
            self.published("busy")
            app = psql(self.database, f"select id from flowgres.apps where slug = 'busy' and workspace_id = '{self.workspace['id']}'")
            slow = {"nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"name": "name"}]}},
                              {"id": "wait", "type": "http", "config": {"url": f"http://127.0.0.1:{upstream.server_address[1]}/"}},
                              {"id": "out", "type": "output"}],
                    "edges": [{"source": "start", "target": "wait"}, {"source": "wait", "target": "out"}]}
            version = self.ok("POST", f"/api/v1/apps/{app}/versions", {"version": "2.0.0", "workflow": slow, "ui_schema": UI},
                              self.key, status=201)
            self.ok("POST", f"/api/v1/apps/{app}/publish", {"version_id": version["id"]}, self.key)
            base = f"/runtime/{self.ws_slug}/busy"
            code, _, body = self.visit("POST", base + "?async=true", {"inputs": {"name": "Ann"}})
            self.assertEqual(code, 202, body)
            code, headers, refused = self.visit("POST", base, {"inputs": {"name": "Ben"}})
            self.assertEqual((code, refused.get("error_code")), (503, "OVERLOADED"), refused)
            self.assertEqual(headers["retry-after"], "1")
            code, _, _ = self.visit("GET", base)
            self.assertEqual(code, 200, "reads are not shed")
            deadline = time.time() + 10
            while time.time() < deadline:
                code, _, body = self.visit("POST", base, {"inputs": {"name": "Cy"}})
                if code != 503:
                    break
                time.sleep(0.1)
            self.assertEqual(code, 200, body)
            deadline = time.time() + 5
            shed = ""
            while time.time() < deadline and not shed:
                shed = psql(self.database, "select sum((details ->> 'count')::int) from flowgres.runtime_events "
                                           f"where app_id = '{app}' and event_type = 'runtime.load_shed'")
                time.sleep(0.1)
            self.assertGreaterEqual(int(shed or 0), 1, "shed requests are recorded, a row per app and second")
            # At a custom domain too: the run in flight holds the worker's one place.
            events = f"select count(*) from flowgres.runtime_events where app_id = '{app}' and event_type = 'runtime.load_shed'"
            time.sleep(1.2)  # the slug's shed request is flushed (once a second) before the count is taken
            before = int(psql(self.database, events))
            domain = self.ok("POST", f"/api/v1/apps/{app}/domains", {"domain": "busy.shop.test"}, self.key, status=201)
            psql(self.database, f"update flowgres.app_domains set status = 'active' where id = '{domain['id']}'")
            code, _, body = self.visit("POST", base + "?async=true", {"inputs": {"name": "Dee"}})
            self.assertEqual(code, 202, body)
            code, _, refused = self.visit("POST", "/", {"inputs": {"name": "Eve"}}, headers={"Host": "busy.shop.test"})
            self.assertEqual((code, refused.get("error_code")), (503, "OVERLOADED"), refused)
            deadline = time.time() + 5
            while time.time() < deadline and int(psql(self.database, events)) == before:
                time.sleep(0.1)
            self.assertEqual(int(psql(self.database, events)), before + 1, "a request shed at the app's domain is the app's event")
            billed = psql(self.database, f"select count(*) from flowgres.usage_events where app_id = '{app}'"
                                         " and dimension = 'requests'")
            executed = psql(self.database, f"select count(*) from flowgres.executions where app_id = '{app}'")
            self.assertEqual(billed, executed, "shed requests are not billed")
        finally:
            upstream.shutdown()


class Siteverify(BaseHTTPRequestHandler):
    """Cloudflare Turnstile's siteverify, as its wire protocol goes: a form in, JSON out."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        SITEVERIFY["calls"].append(form)
        if form.get("response") == ["slow-token"]:
            time.sleep(3)  # the daemon has given up and closed by now: nobody reads the answer
            return
        ok = form.get("secret") == ["turnstile-secret"] and form.get("response") == ["good-token"]
        body = json.dumps({"success": ok, "error-codes": [] if ok else ["invalid-input-response"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class RuntimeCaptcha(RuntimeCase):
    """Apps that ask for a CAPTCHA, verified against a local siteverify server."""

    @classmethod
    def setUpClass(cls):
        cls.siteverify = ThreadingHTTPServer(("127.0.0.1", 0), Siteverify)
        threading.Thread(target=cls.siteverify.serve_forever, daemon=True).start()
        cls.daemon_settings = {**RuntimeCase.daemon_settings, "captcha_secret": "turnstile-secret", "egress_allow": "127.0.0.0/8",
                               "captcha_timeout_ms": 500,
                               "captcha_verify_url": f"http://127.0.0.1:{cls.siteverify.server_address[1]}/siteverify"}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        cls.siteverify.shutdown()
        super().tearDownClass()

    def test_captcha_required_invalid_and_passed(self):
        self.published("guarded-form", {"require_captcha": True})
        base = f"/runtime/{self.ws_slug}/guarded-form"
        self.assertEqual(self.visit("GET", base)[0], 200, "reading the entry needs no CAPTCHA")
        code, _, body = self.visit("POST", base, {"inputs": {"name": "Ada"}})
        self.assertEqual((code, body["error_code"]), (403, "CAPTCHA_REQUIRED"))
        code, _, body = self.visit("POST", base, {"inputs": {"name": "Ada"}}, headers={"X-App-Captcha-Token": "bad-token"})
        self.assertEqual((code, body["error_code"]), (403, "CAPTCHA_INVALID"))
        code, _, body = self.visit("POST", base, {"inputs": {"name": "Ada"}}, headers={"X-App-Captcha-Token": "good-token"})
        self.assertEqual(code, 200, body)
        self.assertEqual(body["data"]["outputs"], {"out": "hello Ada"})
        code, _, body = self.visit("POST", base, {"inputs": {"name": "Bo"}, "captcha_token": "good-token"})
        self.assertEqual(code, 200, body)
        self.assertEqual(SITEVERIFY["calls"][-1]["remoteip"], ["127.0.0.1"])
        required = psql(self.database, "select count(*) from flowgres.runtime_events where event_type = 'runtime.captcha_required' "
                                       "and app_id = (select id from flowgres.apps where slug = 'guarded-form')")
        self.assertEqual(required, "2")

    def test_the_provider_is_asked_only_after_the_limits_and_only_when_needed(self):
        self.published("no-captcha")
        calls = len(SITEVERIFY["calls"])
        code, _, body = self.visit("POST", f"/runtime/{self.ws_slug}/no-captcha", {"inputs": {"name": "Ada"}},
                                   headers={"X-App-Captcha-Token": "good-token"})
        self.assertEqual(code, 200, body)
        self.assertEqual(len(SITEVERIFY["calls"]), calls, "an app without a CAPTCHA sends no token to the provider")
        self.published("limited-captcha", {"require_captcha": True,
                                           "rate_limit": {"per_ip": {"max_requests": 2, "window_seconds": 3600}}})
        path = f"/runtime/{self.ws_slug}/limited-captcha"
        codes = [self.visit("POST", path, {"inputs": {"name": "Ada"}}, headers={"X-App-Captcha-Token": "good-token"})[0]
                 for _ in range(4)]
        self.assertEqual(codes, [200, 200, 429, 429], "a request counts once, CAPTCHA round or not")
        self.assertEqual(len(SITEVERIFY["calls"]), calls + 2, "refused by the rate limit: the provider is not asked")

    def test_a_captcha_round_counts_a_request_once_for_anomaly_signals_too(self):
        self.published("risky", {"rate_limit": {"anomaly": {"high_freq": {"max_requests": 1, "window_seconds": 3600}}}})
        path = f"/runtime/{self.ws_slug}/risky"
        good = {"X-App-Captcha-Token": "good-token"}
        self.assertEqual(self.visit("POST", path, {"inputs": {"name": "Ada"}}, headers=good)[0], 200)
        self.assertEqual(self.visit("POST", path, {"inputs": {"name": "Ada"}}, headers=good)[0], 200, "the signal asked, the token passed")
        code, _, body = self.visit("POST", path, {"inputs": {"name": "Ada"}})
        self.assertEqual((code, body["error_code"]), (403, "CAPTCHA_REQUIRED"))
        self.assertEqual(body["data"]["details"]["measured"]["requests"], 3, "three requests, each counted once")

    def test_a_slow_provider_fails_closed_in_time_and_counts_as_in_flight(self):
        self.published("slow-captcha", {"require_captcha": True})
        path = f"/runtime/{self.ws_slug}/slow-captcha"
        started = time.time()
        code, _, body = self.visit("POST", path, {"inputs": {"name": "Ada"}}, headers={"X-App-Captcha-Token": "slow-token"})
        self.assertEqual((code, body["error_code"]), (403, "CAPTCHA_INVALID"))
        self.assertLess(time.time() - started, 2.5, "captcha_timeout_ms bounds the wait")
        shedding = Daemon(self.database, admin_key=self.admin, **{**self.daemon_settings, "max_in_flight": 1,
                                                                  "captcha_timeout_ms": 2000, "workers": 1}).start()
        try:
            slow = threading.Thread(target=self.visit, args=("POST", path, {"inputs": {"name": "Ada"}}),
                                    kwargs={"headers": {"X-App-Captcha-Token": "slow-token"}, "daemon": shedding})
            slow.start()
            time.sleep(0.6)  # the first is now with the provider
            code, _, body = self.visit("POST", path, {"inputs": {"name": "Ada"}}, daemon=shedding)
            self.assertEqual((code, body["error_code"]), (503, "OVERLOADED"), "a verification in progress is in flight")
            slow.join(timeout=10)
        finally:
            shedding.stop()

    def test_an_unreachable_provider_fails_closed(self):
        self.published("closed-form", {"require_captcha": True})
        other = Daemon(self.database, admin_key=self.admin, captcha_secret="turnstile-secret", egress_allow="127.0.0.0/8",
                       captcha_verify_url="http://127.0.0.1:1/siteverify").start()
        try:
            code, _, body = self.visit("POST", f"/runtime/{self.ws_slug}/closed-form", {"inputs": {"name": "Ada"}},
                                       headers={"X-App-Captcha-Token": "good-token"}, daemon=other)
            self.assertEqual((code, body["error_code"]), (403, "CAPTCHA_INVALID"))
        finally:
            other.stop()


if __name__ == "__main__":
    main()
