#!/usr/bin/env python3
"""Workspace secrets end to end (README "Secrets"): the routes and who may use them, the value
sealed with real AES-256-GCM bound to its workspace and name, http steps that send secrets in
headers and query to a real upstream on loopback, rotation applying to the next run without a
new version, revoked, expired and missing secrets failing the step with their own codes,
versions refused when a secret sits outside a credential field, the per-workspace cap under
parallel requests, and the plain values found nowhere: not in any table (a pg_dump of the whole
database), not in the daemon's log, not in answers or event streams."""

import json
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import PG_PORT, PROVISION, SOCKET_DIR, ApiTestCase, Daemon, main, open_sealed, psql

KEYS = subprocess.run([PROVISION, "keygen", "--id", "k1"], capture_output=True, text=True, check=True).stdout.strip()
TOKEN = "sk-live-0123456789abcdefTOKEN"
ROTATED = "sk-live-rotated-9876543210ROT"
QUERY_KEY = "qk-5f1e2d3c4b5a69788796a5b4"
SEEN = []  # (path, authorization) of every request the upstream received


def rows_containing(database, text):
    """Rows of every table of schema flowgres (partitions and the extension's own tables
    included: pg_dump skips those) whose text form contains `text`."""
    tables = psql(database, "select c.oid::regclass from pg_class c where c.relnamespace = 'flowgres'::regnamespace "
                            "and c.relkind = 'r'").split("\n")
    literal = "'%" + text.replace("'", "''").replace("%", "\\%").replace("_", "\\_") + "%'"
    union = " union all ".join(f"select count(*) from {table} t where t::text like {literal}" for table in tables)
    return int(psql(database, f"select sum(n) from ({union}) counts(n)"))


class Upstream(BaseHTTPRequestHandler):
    """Answers with what it was sent, as many real APIs' error pages do: masking must hold."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        SEEN.append((self.path, self.headers.get("Authorization")))
        body = json.dumps({"path": self.path, "authorization": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Secrets(ApiTestCase):
    daemon_settings = {"master_keys": KEYS, "egress_allow": "127.0.0.0/8"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
        cls.base = f"http://127.0.0.1:{cls.upstream.server_address[1]}"
        threading.Thread(target=cls.upstream.serve_forever, daemon=True).start()
        helper = cls()
        cls.owner, cls.workspace, cls.key = helper.new_user("owner")
        psql(cls.database, f"update flowgres.workspaces set plan = 'enterprise' where id = '{cls.workspace['id']}'")
        cls.secrets = f"/api/v1/workspaces/{cls.workspace['id']}/secrets"

    @classmethod
    def tearDownClass(cls):
        cls.upstream.shutdown()
        super().tearDownClass()

    def member(self, role="member"):
        user, _, key = self.new_user(role)
        self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/members", {"email": user["email"], "role": role},
                self.key, status=201)
        self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/members/accept", None, key)
        return key

    def create(self, name, value, **extra):
        return self.ok("POST", self.secrets, {"name": name, "value": value, **extra}, self.key, status=201)

    def calling_app(self, headers=None, query=None, url_suffix="/echo"):
        config = {"url": self.base + url_suffix}
        if headers:
            config["headers"] = headers
        if query:
            config["query"] = query
        workflow = {"nodes": [{"id": "s", "type": "start"}, {"id": "h", "type": "http", "config": config},
                              {"id": "o", "type": "output"}],
                    "edges": [{"source": "s", "target": "h"}, {"source": "h", "target": "o"}]}
        return self.app_with(self.key, self.workspace, workflow)

    def run_app(self, app):
        return self.ok("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": {}}, self.key)

    def node_error(self, execution):
        failed = [log for log in execution["node_logs"] if log["status"] == "failed"]
        return failed[0]["error"]["error_code"] if failed else None

    # ---- routes ----

    def test_create_answers_no_value_and_seals_it_bound_to_workspace_and_name(self):
        created = self.create("SEALED_ONE", "value-of-sealed-one-123456", description="for the test")
        self.assertEqual(created["preview"], "…3456")
        self.assertEqual(created["version"], 1)
        self.assertEqual(created["updated_by"], self.owner["id"])
        self.assertNotIn("value", created)
        self.assertNotIn("value-of-sealed-one", json.dumps(created))
        sealed = psql(self.database, "select sealed_value from flowgres.workspace_secrets where name = 'SEALED_ONE'")
        self.assertTrue(sealed.startswith("enc:v1:k1:"), sealed)
        context = f"workspace_secret:{self.workspace['id']}:SEALED_ONE"
        self.assertEqual(open_sealed(KEYS, sealed, context), "value-of-sealed-one-123456")
        with self.assertRaises(Exception):  # bound to its name: under another it does not open
            open_sealed(KEYS, sealed, f"workspace_secret:{self.workspace['id']}:OTHER")
        listed = self.ok("GET", self.secrets, None, self.key)["items"]
        self.assertIn("SEALED_ONE", [item["name"] for item in listed])
        self.assertEqual(self.ok("GET", self.secrets + "/SEALED_ONE", None, self.key)["description"], "for the test")

    def test_members_list_but_only_owners_and_admins_manage(self):
        self.create("TEAM_KEY", "team-key-value-abcdefgh")
        member = self.member("member")
        names = [item["name"] for item in self.ok("GET", self.secrets, None, member)["items"]]
        self.assertIn("TEAM_KEY", names)
        self.fails("POST", self.secrets, 403, "PERMISSION_DENIED", {"name": "MINE", "value": "x" * 20}, member)
        self.fails("POST", self.secrets + "/TEAM_KEY/rotate", 403, "PERMISSION_DENIED", {"value": "y" * 20}, member)
        self.fails("POST", self.secrets + "/TEAM_KEY/revoke", 403, "PERMISSION_DENIED", {}, member)
        self.fails("DELETE", self.secrets + "/TEAM_KEY", 403, "PERMISSION_DENIED", None, member)
        admin = self.member("admin")
        self.ok("POST", self.secrets, {"name": "ADMIN_MADE", "value": "admin-made-value-1"}, admin, status=201)
        _, _, outsider = self.new_user("outsider")
        self.fails("GET", self.secrets, 404, "WORKSPACE_NOT_FOUND", None, outsider)

    def test_bad_input_is_refused_and_nothing_changes(self):
        before = psql(self.database, "select count(*) from flowgres.workspace_secrets")
        for body in ({"name": "OK_NAME"}, {"name": "OK_NAME", "value": ""}, {"name": "OK_NAME", "value": 42},
                     {"name": "OK_NAME", "value": {"a": 1}}, {"name": "OK_NAME", "value": "x" * 16385},
                     {"name": "1starts_with_digit", "value": "v" * 20}, {"name": "has-dash", "value": "v" * 20},
                     {"name": "X'; drop table flowgres.apps; --", "value": "v" * 20},
                     {"name": "<script>alert(1)</script>", "value": "v" * 20},
                     {"name": "OK_NAME", "value": "v" * 20, "extra": 1},
                     {"name": "OK_NAME", "value": "v" * 20, "expires_at": "2001-01-01T00:00:00Z"},
                     {"name": "A" * 65, "value": "v" * 20}):
            self.fails("POST", self.secrets, 422, "VALIDATION_FAILED", body, self.key)
        self.fails("POST", self.secrets, 400, "BAD_REQUEST", {"name": "OK_NAME", "value": "nul\u0000inside"}, self.key)
        self.assertEqual(psql(self.database, "select count(*) from flowgres.workspace_secrets"), before)
        self.fails("GET", self.secrets + "/NO_SUCH", 404, "SECRET_NOT_FOUND", None, self.key)
        self.fails("GET", self.secrets + "/..%2F..%2Fetc", 422, "VALIDATION_FAILED", None, self.key)
        self.create("TWICE", "twice-value-123456789")
        self.fails("POST", self.secrets, 409, "SECRET_EXISTS", {"name": "TWICE", "value": "other"}, self.key)
        self.assertEqual(psql(self.database, "select count(*) from flowgres.apps") != "", True)

    def test_without_master_keys_secrets_cannot_be_set(self):
        keyless = Daemon(self.database).start()
        try:
            status, _, document = keyless.request("POST", self.secrets, {"name": "NO_KEYS", "value": "v" * 20}, self.key)
            self.assertEqual((status, document["error_code"]), (503, "SECRETS_NOT_CONFIGURED"))
        finally:
            keyless.stop()

    def test_rekey_reseals_secrets_under_a_new_first_key(self):
        self.create("REKEYED", TOKEN)
        new_key = subprocess.run([PROVISION, "keygen", "--id", "k2"], capture_output=True, text=True,
                                 check=True).stdout.strip()

        def rekey(keys):
            control = f"host={SOCKET_DIR} port={PG_PORT} user=postgres dbname={self.database}"
            return subprocess.run([PROVISION, "--control", control, "rekey"], capture_output=True, text=True,
                                  check=True, env=dict(os.environ, FLOWGRES_MASTER_KEYS=keys)).stdout
        self.assertGreaterEqual(json.loads(rekey(new_key + "," + KEYS))["resealed"], 1)
        sealed = psql(self.database, "select sealed_value from flowgres.workspace_secrets where name = 'REKEYED'")
        self.assertTrue(sealed.startswith("enc:v1:k2:"), sealed)
        self.assertEqual(open_sealed(new_key, sealed, f"workspace_secret:{self.workspace['id']}:REKEYED"), TOKEN)
        self.assertIn("secret.reseal", psql(self.database, "select string_agg(action, ',') from flowgres.audit_logs "
                                                           f"where workspace_id = '{self.workspace['id']}'"))
        rekey(KEYS + "," + new_key)  # back to k1, which the daemon of the other tests holds
        self.assertEqual(psql(self.database, "select count(*) from flowgres.workspace_secrets "
                                             "where sealed_value like 'enc:v1:k2:%'"), "0")

    # ---- runs ----

    def test_headers_and_query_carry_secrets_and_nothing_stores_them(self):
        self.create("API_TOKEN", TOKEN)
        self.create("QUERY_KEY", QUERY_KEY)
        app = self.calling_app(headers={"Authorization": "Bearer {{secrets.API_TOKEN}}"},
                               query={"key": "{{secrets.QUERY_KEY}}", "page": 2})
        SEEN.clear()
        execution = self.run_app(app)
        self.assertEqual(execution["status"], "completed", execution)
        self.assertEqual(SEEN[-1], (f"/echo?key={QUERY_KEY}&page=2", f"Bearer {TOKEN}"), "the upstream got them")
        echoed = execution["outputs"]["o"]["body"]
        self.assertEqual(echoed["authorization"], "Bearer [secret:API_TOKEN]", "what the upstream echoes is masked")
        self.assertEqual(echoed["path"], "/echo?key=[secret:QUERY_KEY]&page=2")
        # The event stream, the execution, every stored row, the daemon's log: no plain value.
        stream = self.call("GET", f"/api/v1/executions/{execution['id']}/events", None, self.key, timeout=10)
        self.assertNotIn(TOKEN, json.dumps(stream[2]) if not isinstance(stream[2], str) else stream[2])
        self.assertNotIn(TOKEN, json.dumps(execution))
        self.assertGreater(rows_containing(self.database, "[secret:API_TOKEN]"), 0, "the search does find the run")
        for value in (TOKEN, QUERY_KEY):
            self.assertEqual(rows_containing(self.database, value), 0)
            self.assertNotIn(value, self.daemon.log_text())

    def test_a_rotation_applies_to_the_next_run_without_a_new_version(self):
        self.create("ROTATING", TOKEN)
        app = self.calling_app(headers={"Authorization": "{{secrets.ROTATING}}"})
        SEEN.clear()
        self.assertEqual(self.run_app(app)["status"], "completed")
        rotated = self.ok("POST", self.secrets + "/ROTATING/rotate", {"value": ROTATED}, self.key)
        self.assertEqual(rotated["version"], 2)
        self.assertEqual(rotated["preview"], "…0ROT")
        self.assertEqual(self.run_app(app)["status"], "completed")
        self.assertEqual([seen[1] for seen in SEEN], [TOKEN, ROTATED])
        self.assertEqual(len(self.ok("GET", f"/api/v1/apps/{app['id']}/versions", None, self.key)), 1)

    def test_revoked_expired_and_missing_secrets_fail_the_step_with_their_codes(self):
        self.create("WILL_REVOKE", TOKEN)
        self.create("WILL_EXPIRE", TOKEN, expires_at="2999-01-01T00:00:00Z")
        revoked_app = self.calling_app(headers={"X-Key": "{{secrets.WILL_REVOKE}}"})
        expired_app = self.calling_app(headers={"X-Key": "{{secrets.WILL_EXPIRE}}"})
        missing_app = self.calling_app(query={"k": "{{secrets.NEVER_MADE}}"})
        self.assertEqual(self.run_app(revoked_app)["status"], "completed")
        revoked = self.ok("POST", self.secrets + "/WILL_REVOKE/revoke", {"reason": "leaked"}, self.key)
        self.assertEqual(revoked["status"], "revoked")
        psql(self.database, "update flowgres.workspace_secrets set expires_at = now() - interval '1 second' "
                            "where name = 'WILL_EXPIRE'")
        self.assertEqual(self.ok("GET", self.secrets + "/WILL_EXPIRE", None, self.key)["status"], "expired")
        SEEN.clear()
        for app, code in ((revoked_app, "SECRET_REVOKED"), (expired_app, "SECRET_EXPIRED"),
                          (missing_app, "SECRET_NOT_FOUND")):
            execution = self.run_app(app)
            self.assertEqual(execution["status"], "failed", execution)
            self.assertEqual(execution["error"]["error_code"], code)
            self.assertEqual(self.node_error(execution), code)
        self.assertEqual(SEEN, [], "no request left without its credential")
        self.fails("POST", self.secrets + "/WILL_REVOKE/rotate", 409, "STATE_CONFLICT", {"value": "v" * 20}, self.key)
        self.ok("DELETE", self.secrets + "/WILL_REVOKE", None, self.key)
        self.fails("GET", self.secrets + "/WILL_REVOKE", 404, "SECRET_NOT_FOUND", None, self.key)

    def test_a_secret_outside_a_credential_field_refuses_the_version(self):
        app = self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/apps", {"name": f"leaky {time.time_ns()}"},
                      self.key, status=201)
        workflow = {"nodes": [{"id": "s", "type": "start"},
                              {"id": "h", "type": "http", "config": {"url": self.base + "/{{secrets.API_TOKEN}}"}},
                              {"id": "t", "type": "transform", "config": {"template": {"k": "{{secrets.API_TOKEN}}"}}},
                              {"id": "o", "type": "output"}],
                    "edges": [{"source": "s", "target": "h"}, {"source": "h", "target": "t"}, {"source": "t", "target": "o"}]}
        document = self.fails("POST", f"/api/v1/apps/{app['id']}/versions", 422, "VALIDATION_FAILED",
                              {"version": "1.0.0", "workflow": workflow}, self.key)
        fields = {problem["field"] for problem in document["data"]["details"]}
        self.assertIn("workflow.nodes[1].config.url", fields)
        self.assertIn("workflow.nodes[2].config.template.k", fields)

    # ---- limits under concurrency ----

    def test_the_cap_holds_under_parallel_creates(self):
        _, workspace, key = self.new_user("capped")
        psql(self.database, f"""insert into flowgres.workspace_secrets (workspace_id, name, sealed_value, value_preview)
                                select '{workspace['id']}', 'PRE_' || i, 'enc:v1:k1:a:b', '…'
                                from generate_series(1, 95) i""")
        # Those rows hold no real ciphertext: gone after the test, so a rekey never meets them.
        self.addCleanup(psql, self.database, f"delete from flowgres.workspace_secrets where workspace_id = '{workspace['id']}'")
        path = f"/api/v1/workspaces/{workspace['id']}/secrets"

        def attempt(i):
            return self.call("POST", path, {"name": f"PAR_{i}", "value": f"parallel-value-{i:04d}"}, key)[0]
        with ThreadPoolExecutor(max_workers=20) as pool:
            codes = list(pool.map(attempt, range(20)))
        self.assertEqual(codes.count(201), 5, codes)
        self.assertEqual(codes.count(422), 15, codes)
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.workspace_secrets "
                                             f"where workspace_id = '{workspace['id']}'"), "100")


if __name__ == "__main__":
    main()
