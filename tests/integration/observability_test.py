#!/usr/bin/env python3
"""What operators read: /health, /ready, /metrics (checked by promtool), /openapi.json
(checked by a real OpenAPI validator and against the router), and the JSON log lines with
PII masked."""

import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

from harness import ROOT, ApiTestCase, main

NPM_PREFIX = os.path.join(ROOT, "build", "npm")


def ensure_validator():
    module = os.path.join(NPM_PREFIX, "node_modules", "@apidevtools", "swagger-parser")
    if not os.path.isdir(module):
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NPM_PREFIX, "@apidevtools/swagger-parser@10"],
                       check=True, capture_output=True, timeout=300)


class Observability(ApiTestCase):
    def test_health_and_ready(self):
        self.assertEqual(self.ok("GET", "/health")["status"], "ok")
        self.assertEqual(self.ok("GET", "/ready")["database"], "ok")
        code, headers, _ = self.call("POST", "/health")
        self.assertEqual(code, 405)
        self.assertIn("GET", headers["allow"])

    def test_metrics_pass_promtool_and_count_requests(self):
        _, _, key = self.new_user()
        for _ in range(3):
            self.ok("GET", "/api/v1/workspaces", key=key)
        self.fails("GET", "/api/v1/workspaces", 401, "UNAUTHENTICATED")
        code, headers, text = self.call("GET", "/metrics")
        self.assertEqual(code, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))
        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        ok_count = re.search(r'flowgres_http_requests_total\{route="listWorkspaces",method="GET",status="200"\} (\d+)', text)
        self.assertIsNotNone(ok_count, text[:2000])
        self.assertGreaterEqual(int(ok_count.group(1)), 3)
        self.assertRegex(text, r'flowgres_http_requests_total\{route="listWorkspaces",method="GET",status="401"\} [1-9]')
        self.assertRegex(text, r'flowgres_http_request_duration_seconds_bucket\{route="listWorkspaces",method="GET",status="200",le="\+Inf"\} [3-9]')
        for gauge in ("flowgres_db_pool_size", "flowgres_db_pool_in_use", "flowgres_db_pool_waiting",
                      "flowgres_http_connections_open"):
            self.assertRegex(text, rf"\n{gauge} \d+")
        self.assertRegex(text, r"\nflowgres_db_pool_size [1-9]")

    def test_openapi_is_valid_and_describes_every_route(self):
        ensure_validator()
        code, _, document = self.call("GET", "/openapi.json")
        self.assertEqual(code, 200)
        self.assertEqual(document["openapi"], "3.1.0")
        path = f"/tmp/flowgres-openapi-{os.getpid()}.json"
        with open(path, "w") as handle:
            json.dump(document, handle)
        env = dict(os.environ, NPM_PREFIX=NPM_PREFIX)
        result = subprocess.run(["node", os.path.join(ROOT, "tests", "integration", "validate_openapi.cjs"), path],
                                capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        # The validator must be able to fail: a broken copy is refused.
        document["paths"]["/api/v1/workspaces"]["get"]["responses"]["200"]["description"] = 7
        with open(path, "w") as handle:
            json.dump(document, handle)
        broken = subprocess.run(["node", os.path.join(ROOT, "tests", "integration", "validate_openapi.cjs"), path],
                                capture_output=True, text=True, env=env, timeout=60)
        self.assertNotEqual(broken.returncode, 0)
        os.unlink(path)
        operations = {op["operationId"] for item in document["paths"].values() for op in item.values()}
        for expected in ("createUser", "createWorkspace", "listApps", "createVersion", "diffVersions", "publishApp",
                         "rollbackApp", "updateAccessPolicy", "listAuditLogs", "rotateApiKey", "revokeApiKey"):
            self.assertIn(expected, operations)
        create = document["paths"]["/api/v1/workspaces"]["post"]
        self.assertIn("409", create["responses"])
        self.assertIn("WORKSPACE_SLUG_TAKEN", create["responses"]["409"]["description"])
        self.assertFalse(create["requestBody"]["content"]["application/json"]["schema"]["additionalProperties"])

    def test_log_lines_are_json_with_request_fields_and_no_pii(self):
        user, workspace, key = self.new_user("Grace")
        self.ok("GET", f"/api/v1/workspaces/{workspace['id']}", key=key, headers={"X-Request-Id": "log-check-1"})
        self.fails("POST", "/api/v1/users", 409, "USER_EMAIL_TAKEN", {"email": user["email"], "display_name": "again"}, self.admin)
        text = self.daemon.log_text(having="log-check-1")
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        self.assertTrue(lines)
        mine = [line for line in lines if line.get("request_id") == "log-check-1"]
        self.assertEqual(len(mine), 1)
        for field in ("ts", "level", "msg", "trace_id", "route", "status", "duration_ms", "workspace_id"):
            self.assertIn(field, mine[0])
        self.assertEqual(mine[0]["workspace_id"], workspace["id"])
        self.assertEqual(mine[0]["status"], 200)
        self.assertNotIn(user["email"], text)
        self.assertNotIn(key, text)
        self.assertNotIn(self.admin, text)
        self.assertNotIn("127.0.0.1\"", text.replace('"address":"127.0.0.1', ""))
        self.assertTrue(mine[0]["client"].startswith("ip:"))

    def test_log_lines_stay_whole_json_and_masked_under_hostile_parallel_requests(self):
        # Request lines are built in place in each worker's buffer (log.hpp LogLine): under many
        # requests at once, with hostile values wherever a request can reach a line, every line
        # must still be one JSON object, each request's once, and nothing in clear.
        user, workspace, key = self.new_user("Hostile")
        email = "ada.lovelace@example.com"
        forged_key = "fgk_" + "A" * 43
        hostile_ids = ['x"y', email, forged_key, "Bearer abc.def", "eyJa.eyJb.sig", "a" * 300, "back\\slash"]
        hostile_paths = [f"/api/v1/workspaces/{email}", f"/api/v1/{forged_key}", '/api/v1/"quoted"\\x',
                         "/api/v1/workspaces/%00%22%5C", "/runtime/" + "z" * 2000 + "/app"]

        def visit(i):
            kind = i % 4
            if kind == 0:  # a valid request id, to count lines by
                return self.daemon.request("GET", f"/api/v1/workspaces/{workspace['id']}", key=key,
                                           headers={"X-Request-Id": f"hostile-log-{i}"})[0]
            if kind == 1:
                return self.daemon.request("GET", "/health", headers={
                    "X-Request-Id": hostile_ids[i % len(hostile_ids)],
                    "traceparent": f"00-{email}-{forged_key}-01"})[0]
            if kind == 2:
                return self.daemon.request("GET", hostile_paths[i % len(hostile_paths)],
                                           key=forged_key if i % 8 == 2 else key)[0]
            return self.daemon.request("POST", "/api/v1/users", key=self.admin,
                                       body={"email": email + '"<script>', "display_name": forged_key})[0]

        with ThreadPoolExecutor(max_workers=32) as pool:
            codes = list(pool.map(visit, range(200)))
        self.assertTrue(all(code < 500 for code in codes), codes)
        text = self.daemon.log_text(having="hostile-log-196")
        lines = text.splitlines()
        parsed = [json.loads(line) for line in lines if line.startswith("{")]
        self.assertEqual(len(parsed), len([line for line in lines if line.strip()]), "every line is one JSON object")
        counted = [line.get("request_id") for line in parsed if str(line.get("request_id", "")).startswith("hostile-log-")]
        self.assertEqual(sorted(counted), sorted(f"hostile-log-{i}" for i in range(0, 200, 4)),
                         "each request's line once, none torn or lost")
        for secret in (email, forged_key, key, self.admin, "abc.def", "eyJb"):
            self.assertNotIn(secret, text)


if __name__ == "__main__":
    main()
