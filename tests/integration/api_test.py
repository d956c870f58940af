#!/usr/bin/env python3
"""The management API over real HTTP: every route's success path, authentication, each role's
permission failures, validation, the envelope, idempotency and pagination."""

import json
import time
import uuid

from harness import ApiTestCase, main, psql

WORKFLOW = {
    "nodes": [
        {"id": "start", "type": "start", "data": {"inputs": [{"key": "name", "type": "string"}]}},
        {"id": "out", "type": "output", "data": {}},
    ],
    "edges": [{"source": "start", "target": "out"}],
}


class EnvelopeAndRouting(ApiTestCase):
    def test_success_envelope_carries_ids_and_echoes_request_id(self):
        _, _, key = self.new_user()
        code, headers, document = self.call("GET", "/api/v1/workspaces", key=key, headers={"X-Request-Id": "my-req.1"})
        self.assertEqual(code, 200)
        self.assertEqual(set(document), {"code", "message", "data", "trace_id", "request_id"})
        self.assertEqual(document["request_id"], "my-req.1")
        self.assertEqual(headers["x-request-id"], "my-req.1")
        self.assertRegex(document["trace_id"], "^[0-9a-f]{32}$")

    def test_traceparent_is_continued(self):
        parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        code, headers, document = self.call("GET", "/health", headers={"traceparent": parent})
        self.assertEqual(document["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736")
        self.assertTrue(headers["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-"))
        self.assertNotIn("00f067aa0ba902b7", headers["traceparent"])

    def test_malformed_traceparent_and_request_id_are_replaced(self):
        code, headers, document = self.call("GET", "/health", headers={"traceparent": "00-zz-yy-01", "X-Request-Id": "a b<script>"})
        self.assertRegex(document["trace_id"], "^[0-9a-f]{32}$")
        self.assertTrue(document["request_id"].startswith("req_"))

    def test_unknown_route_is_404_and_wrong_method_405_with_allow(self):
        self.fails("GET", "/api/v1/nothing-here", 404, "NOT_FOUND", key=self.admin)
        code, headers, document = self.call("DELETE", "/api/v1/workspaces", key=self.admin)
        self.assertEqual(code, 405)
        self.assertEqual(document["error_code"], "METHOD_NOT_ALLOWED")
        self.assertEqual(sorted(headers["allow"].split(", ")), ["GET", "POST"])
        self.assertIn("x-request-id", headers)

    def test_error_envelope_fields(self):
        document = self.fails("GET", f"/api/v1/apps/{uuid.uuid4()}", 404, "APP_NOT_FOUND", key=self.admin)
        self.assertEqual(document["error_message"], document["message"])
        self.assertIn("trace_id", document)
        self.assertIn("request_id", document)


class Authentication(ApiTestCase):
    def test_missing_malformed_and_unknown_keys_are_401(self):
        self.fails("GET", "/api/v1/workspaces", 401, "UNAUTHENTICATED")
        self.fails("GET", "/api/v1/workspaces", 401, "UNAUTHENTICATED", headers={"Authorization": "Basic abc"})
        self.fails("GET", "/api/v1/workspaces", 401, "UNAUTHENTICATED", key="fgk_short")
        unknown = "fgk_" + "A" * 43
        document = self.fails("GET", "/api/v1/workspaces", 401, "UNAUTHENTICATED", key=unknown)
        self.assertEqual(document["data"]["details"]["reason"], "unknown_key")
        code, headers, _ = self.call("GET", "/api/v1/workspaces")
        self.assertIn("bearer", headers["www-authenticate"].lower())

    def test_key_is_stored_as_hash_and_preview_only(self):
        user, _, key = self.new_user()
        stored = psql(self.database, f"select key_hash || ' ' || key_preview from flowgres.api_keys where user_id = '{user['id']}'")
        self.assertNotIn(key, stored)
        import hashlib
        self.assertIn(hashlib.sha256(key.encode()).hexdigest(), stored)
        listed = self.ok("GET", "/api/v1/api-keys", key=key)
        self.assertNotIn(key, json.dumps(listed))
        self.assertNotIn("key_hash", listed["items"][0])

    def test_rotate_stops_the_old_key_and_returns_a_working_new_one(self):
        _, _, key = self.new_user()
        key_id = self.ok("GET", "/api/v1/api-keys", key=key)["items"][0]["id"]
        rotated = self.ok("POST", f"/api/v1/api-keys/{key_id}/rotate", key=key)
        self.assertNotEqual(rotated["key"], key)
        self.fails("GET", "/api/v1/workspaces", 401, "UNAUTHENTICATED", key=key)
        self.ok("GET", "/api/v1/workspaces", key=rotated["key"])
        self.assertIsNotNone(rotated["api_key"]["rotated_at"])

    def test_revoke_with_reason_stops_the_key(self):
        _, _, key = self.new_user()
        spare = self.ok("POST", "/api/v1/api-keys", {"name": "spare"}, key, status=201)
        revoked = self.ok("POST", f"/api/v1/api-keys/{spare['api_key']['id']}/revoke", {"reason": "leaked"}, key)
        self.assertEqual(revoked["revoked_reason"], "leaked")
        document = self.fails("GET", "/api/v1/workspaces", 401, "UNAUTHENTICATED", key=spare["key"])
        self.assertEqual(document["data"]["details"]["reason"], "revoked")
        self.fails("POST", f"/api/v1/api-keys/{spare['api_key']['id']}/revoke", 409, "STATE_CONFLICT", {}, key)
        self.ok("GET", "/api/v1/workspaces", key=key)

    def test_expired_key_is_401(self):
        user, _, key = self.new_user()
        short = self.ok("POST", "/api/v1/api-keys", {"name": "short", "expires_at": "2099-01-01T00:00:00Z"}, key, status=201)
        self.ok("GET", "/api/v1/workspaces", key=short["key"])
        psql(self.database, f"update flowgres.api_keys set expires_at = now() - interval '1 second' where id = '{short['api_key']['id']}'")
        document = self.fails("GET", "/api/v1/workspaces", 401, "UNAUTHENTICATED", key=short["key"])
        self.assertEqual(document["data"]["details"]["reason"], "expired")
        self.fails("POST", "/api/v1/api-keys", 422, "VALIDATION_FAILED", {"name": "past", "expires_at": "2001-01-01"}, key)

    def test_read_scope_cannot_write(self):
        _, _, key = self.new_user()
        reader = self.ok("POST", "/api/v1/api-keys", {"name": "reader", "scopes": ["read"]}, key, status=201)
        self.ok("GET", "/api/v1/workspaces", key=reader["key"])
        document = self.fails("POST", "/api/v1/workspaces", 403, "PERMISSION_DENIED", {"name": "Nope"}, reader["key"])
        self.assertEqual(document["data"]["details"]["required_scope"], "write")
        self.fails("POST", "/api/v1/api-keys", 422, "VALIDATION_FAILED", {"name": "x", "scopes": ["root"]}, key)

    def test_only_the_operator_creates_users_and_others_keys(self):
        user, _, key = self.new_user()
        self.fails("POST", "/api/v1/users", 403, "PERMISSION_DENIED", {"email": "x@example.com", "display_name": "X"}, key)
        other, _, _ = self.new_user()
        self.fails("POST", f"/api/v1/users/{other['id']}/api-keys", 403, "PERMISSION_DENIED", {"name": "steal"}, key)
        # Another user's key id looks absent, not forbidden.
        other_key = self.ok("GET", f"/api/v1/users/{other['id']}/api-keys", key=self.admin)["items"][0]["id"]
        self.fails("POST", f"/api/v1/api-keys/{other_key}/revoke", 404, "API_KEY_NOT_FOUND", {}, key)

    def test_disabled_user_key_stops_working(self):
        user, _, key = self.new_user()
        psql(self.database, f"update flowgres.users set status = 'disabled' where id = '{user['id']}'")
        self.fails("GET", "/api/v1/workspaces", 401, "UNAUTHENTICATED", key=key)


class ManagementRoutes(ApiTestCase):
    def test_full_walk_through_every_route(self):
        owner, personal, key = self.new_user("owner")
        self.assertEqual(self.ok("GET", f"/api/v1/users/{owner['id']}", key=key)["email"], owner["email"])

        ws = self.ok("POST", "/api/v1/workspaces", {"name": "Acme Team", "slug": "acme-team"}, key, status=201)
        self.assertEqual(ws["slug"], "acme-team")
        self.assertEqual(self.ok("GET", f"/api/v1/workspaces/{ws['id']}", key=key)["name"], "Acme Team")
        self.assertIn(ws["id"], [w["id"] for w in self.ok("GET", "/api/v1/workspaces", key=key)])
        updated = self.ok("PATCH", f"/api/v1/workspaces/{ws['id']}", {"name": "Acme"}, key)
        self.assertEqual(updated["name"], "Acme")

        # members: invite, accept, change role, list, remove
        member, _, member_key = self.new_user("member")
        self.ok("POST", f"/api/v1/workspaces/{ws['id']}/members", {"email": member["email"], "role": "member"}, key, status=201)
        self.ok("POST", f"/api/v1/workspaces/{ws['id']}/members/accept", key=member_key)
        self.ok("PATCH", f"/api/v1/workspaces/{ws['id']}/members/{member['id']}", {"role": "admin"}, key)
        members = self.ok("GET", f"/api/v1/workspaces/{ws['id']}/members", key=key)
        roles = {m["user_id"]: m["role"] for m in (members["items"] if isinstance(members, dict) else members)}
        self.assertEqual(roles[member["id"]], "admin")
        self.ok("DELETE", f"/api/v1/workspaces/{ws['id']}/members/{member['id']}", key=key)
        self.fails("GET", f"/api/v1/workspaces/{ws['id']}", 404, "WORKSPACE_NOT_FOUND", key=member_key)

        # apps and versions
        app = self.ok("POST", f"/api/v1/workspaces/{ws['id']}/apps", {"name": "Greeter"}, key, status=201)
        self.assertEqual(app["status"], "draft")
        self.assertEqual(self.ok("GET", f"/api/v1/apps/{app['id']}", key=key)["slug"], "greeter")
        self.assertEqual(self.ok("PATCH", f"/api/v1/apps/{app['id']}", {"description": "says hello"}, key)["description"], "says hello")
        v1 = self.ok("POST", f"/api/v1/apps/{app['id']}/versions", {"version": "1.0.0", "workflow": WORKFLOW}, key, status=201)
        v2 = self.ok("POST", f"/api/v1/apps/{app['id']}/versions",
                     {"version": "1.1.0", "workflow": WORKFLOW, "changelog": "second"}, key, status=201)
        versions = self.ok("GET", f"/api/v1/apps/{app['id']}/versions", key=key)
        listed = versions["items"] if isinstance(versions, dict) else versions
        self.assertEqual([v["version"] for v in listed][:2], ["1.1.0", "1.0.0"])
        self.assertEqual(self.ok("GET", f"/api/v1/versions/{v1['id']}", key=key)["version"], "1.0.0")
        diff = self.ok("GET", f"/api/v1/versions/{v1['id']}/diff/{v2['id']}", key=key)
        self.assertIsInstance(diff, dict)

        # lifecycle
        published = self.ok("POST", f"/api/v1/apps/{app['id']}/publish", {"version_id": v2["id"]}, key)
        self.assertEqual(published["status"], "published")
        rolled = self.ok("POST", f"/api/v1/apps/{app['id']}/rollback", {"version_id": v1["id"]}, key)
        self.assertEqual(rolled["current_version_id"], v1["id"])
        policy = self.ok("GET", f"/api/v1/apps/{app['id']}/access-policy", key=key)
        self.assertEqual(policy["access_mode"], "private")
        policy = self.ok("PATCH", f"/api/v1/apps/{app['id']}/access-policy", {"access_mode": "public_anonymous"}, key)
        self.assertEqual(policy["access_mode"], "public_anonymous")
        copy = self.ok("POST", f"/api/v1/apps/{app['id']}/duplicate", {"name": "Greeter copy"}, key, status=201)
        self.assertEqual(copy["status"], "draft")
        self.assertEqual(self.ok("POST", f"/api/v1/apps/{app['id']}/deprecate", key=key)["status"], "deprecated")
        self.assertEqual(self.ok("POST", f"/api/v1/apps/{app['id']}/archive", key=key)["status"], "archived")
        self.fails("POST", f"/api/v1/apps/{app['id']}/publish", 409, "STATE_CONFLICT", {}, key)

        # audit logs with filters
        logs = self.ok("GET", f"/api/v1/workspaces/{ws['id']}/audit-logs?action=app.publish", key=key)
        self.assertEqual([row["action"] for row in logs["items"]], ["app.publish"])
        everything = self.ok("GET", f"/api/v1/workspaces/{ws['id']}/audit-logs?target_type=app&target_id={app['id']}", key=key)
        self.assertGreaterEqual(everything["meta"]["total"], 5)
        by_actor = self.ok("GET", f"/api/v1/workspaces/{ws['id']}/audit-logs?actor_user_id={owner['id']}&page_size=2", key=key)
        self.assertEqual(len(by_actor["items"]), 2)
        future = self.ok("GET", f"/api/v1/workspaces/{ws['id']}/audit-logs?from=2999-01-01", key=key)
        self.assertEqual(future["items"], [])
        self.fails("GET", f"/api/v1/workspaces/{ws['id']}/audit-logs?from=yesterday", 422, "VALIDATION_FAILED", key=key)

        # delete and restore
        self.assertEqual(self.ok("DELETE", f"/api/v1/workspaces/{ws['id']}", key=key)["status"], "deleted")
        self.assertEqual(self.ok("POST", f"/api/v1/workspaces/{ws['id']}/restore", key=key)["status"], "active")

        codes = self.ok("GET", "/api/v1/error-codes", key=key)
        self.assertIn("IDEMPOTENCY_CONFLICT", [row["error_code"] for row in codes])

    def test_each_role_is_refused_what_it_may_not_do(self):
        _, _, owner_key = self.new_user("boss")
        ws = self.ok("POST", "/api/v1/workspaces", {"name": "Roles"}, owner_key, status=201)
        member, _, member_key = self.new_user("plain")
        admin, _, admin_key = self.new_user("deputy")
        outsider, _, outsider_key = self.new_user("outsider")
        for user, role, user_key in ((member, "member", member_key), (admin, "admin", admin_key)):
            self.ok("POST", f"/api/v1/workspaces/{ws['id']}/members", {"email": user["email"], "role": role}, owner_key, status=201)
            self.ok("POST", f"/api/v1/workspaces/{ws['id']}/members/accept", key=user_key)
        app = self.ok("POST", f"/api/v1/workspaces/{ws['id']}/apps", {"name": "Roles app"}, owner_key, status=201)
        # member: may not invite, publish or delete the workspace
        self.fails("POST", f"/api/v1/workspaces/{ws['id']}/members", 403, "PERMISSION_DENIED",
                   {"email": outsider["email"]}, member_key)
        self.fails("POST", f"/api/v1/apps/{app['id']}/publish", 403, "PERMISSION_DENIED", {}, member_key)
        self.fails("DELETE", f"/api/v1/workspaces/{ws['id']}", 403, "PERMISSION_DENIED", key=member_key)
        # admin: may not grant owner or delete the workspace
        self.fails("PATCH", f"/api/v1/workspaces/{ws['id']}/members/{member['id']}", 403, "PERMISSION_DENIED",
                   {"role": "owner"}, admin_key)
        self.fails("DELETE", f"/api/v1/workspaces/{ws['id']}", 403, "PERMISSION_DENIED", key=admin_key)
        # outsider: everything looks absent
        self.fails("GET", f"/api/v1/workspaces/{ws['id']}", 404, "WORKSPACE_NOT_FOUND", key=outsider_key)
        self.fails("GET", f"/api/v1/apps/{app['id']}", 404, "APP_NOT_FOUND", key=outsider_key)
        self.fails("GET", f"/api/v1/workspaces/{ws['id']}/audit-logs", 404, "WORKSPACE_NOT_FOUND", key=outsider_key)

    def test_pagination_filters_and_sort(self):
        _, _, key = self.new_user("pager")
        ws = self.ok("POST", "/api/v1/workspaces", {"name": "Pages"}, key, status=201)
        psql(self.database, f"update flowgres.workspaces set plan = 'pro' where id = '{ws['id']}'")
        for name in ["delta", "alpha", "echo", "bravo", "charlie"]:
            self.ok("POST", f"/api/v1/workspaces/{ws['id']}/apps", {"name": name}, key, status=201)
        page = self.ok("GET", f"/api/v1/workspaces/{ws['id']}/apps?sort_by=name&order=asc&page=2&page_size=2", key=key)
        self.assertEqual([a["name"] for a in page["items"]], ["charlie", "delta"])
        self.assertEqual(page["meta"]["total"], 5)
        self.assertEqual(page["meta"]["total_pages"], 3)
        last = self.ok("GET", f"/api/v1/workspaces/{ws['id']}/apps?sort_by=name&order=asc&page=3&page_size=2", key=key)
        self.assertEqual([a["name"] for a in last["items"]], ["echo"])
        found = self.ok("GET", f"/api/v1/workspaces/{ws['id']}/apps?q=rav", key=key)
        self.assertEqual([a["name"] for a in found["items"]], ["bravo"])
        self.fails("GET", f"/api/v1/workspaces/{ws['id']}/apps?page=0", 422, "VALIDATION_FAILED", key=key)
        self.fails("GET", f"/api/v1/workspaces/{ws['id']}/apps?page_size=x", 422, "VALIDATION_FAILED", key=key)
        self.fails("GET", f"/api/v1/workspaces/{ws['id']}/apps?sort_by=name;drop", 422, "VALIDATION_FAILED", key=key)
        self.fails("GET", f"/api/v1/workspaces/{ws['id']}/apps?colour=red", 422, "VALIDATION_FAILED", key=key)


class WorkflowValidation(ApiTestCase):
    def test_validate_endpoint_reports_without_saving(self):
        _, _, key = self.new_user()
        valid = self.ok("POST", "/api/v1/workflows/validate", {"workflow": WORKFLOW}, key)
        self.assertTrue(valid["valid"])
        self.assertEqual(valid["order"], ["start", "out"])
        self.assertEqual(valid["input_mapping"]["missing"], ["name"])
        broken = {"nodes": WORKFLOW["nodes"] + [{"id": "out", "type": "teleport"}], "edges": [{"source": "start", "target": "x"}]}
        verdict = self.ok("POST", "/api/v1/workflows/validate",
                          {"workflow": broken, "ui_schema": {"blocks": [{"type": "card", "props": {"script": "x"}}]}}, key)
        self.assertFalse(verdict["valid"])
        fields = {problem["field"] for problem in verdict["problems"]}
        self.assertIn("nodes[2].id", fields)
        self.assertIn("edges[0].target", fields)
        self.assertIn("ui_schema.blocks[0].props.script", fields)
        self.fails("POST", "/api/v1/workflows/validate", 422, "VALIDATION_FAILED", {"workflow": [1]}, key)
        self.fails("POST", "/api/v1/workflows/validate", 401, "UNAUTHENTICATED", {"workflow": WORKFLOW})

    def test_versions_with_invalid_workflows_are_refused_with_every_problem(self):
        _, workspace, key = self.new_user()
        app = self.ok("POST", f"/api/v1/workspaces/{workspace['id']}/apps", {"name": "Checked"}, key, status=201)
        cyclic = {"nodes": [{"id": "s", "type": "start"}, {"id": "a", "type": "delay", "config": {"duration_ms": 1}},
                            {"id": "b", "type": "delay", "config": {"duration_ms": 1}}, {"id": "o", "type": "output"}],
                  "edges": [{"source": "s", "target": "a"}, {"source": "a", "target": "b"}, {"source": "b", "target": "a"},
                            {"source": "b", "target": "o"}]}
        document = self.fails("POST", f"/api/v1/apps/{app['id']}/versions", 422, "VALIDATION_FAILED",
                              {"version": "1.0.0", "workflow": cyclic}, key)
        cycle_nodes = {problem.get("node_id") for problem in document["data"]["details"] if "cycle" in problem["message"]}
        self.assertEqual(cycle_nodes, {"a", "b", "o"})  # o is reached only through the cycle
        self.assertEqual(self.ok("GET", f"/api/v1/apps/{app['id']}/versions", key=key), [])


class BadInput(ApiTestCase):
    def test_validation_lists_every_problem_with_its_field(self):
        _, _, key = self.new_user()
        document = self.fails("POST", "/api/v1/workspaces", 422, "VALIDATION_FAILED", {"slug": 5, "colour": "red"}, key)
        fields = json.dumps(document["data"]["details"])
        for field in ("name", "slug", "colour"):
            self.assertIn(field, fields)

    def test_malformed_json_non_utf8_wrong_top_level_and_media_type(self):
        _, _, key = self.new_user()
        self.fails("POST", "/api/v1/workspaces", 400, "BAD_REQUEST", key=key, raw_body=b'{"name": ',
                   headers={"Content-Type": "application/json"})
        self.fails("POST", "/api/v1/workspaces", 400, "BAD_REQUEST", key=key, raw_body=b'{"name": "\xff\xfe"}',
                   headers={"Content-Type": "application/json"})
        self.fails("POST", "/api/v1/workspaces", 422, "VALIDATION_FAILED", ["name"], key)
        self.fails("POST", "/api/v1/workspaces", 415, "UNSUPPORTED_MEDIA_TYPE", key=key, raw_body=b"name=x",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.fails("POST", "/api/v1/workspaces", 400, "BAD_REQUEST", key=key,
                   raw_body=b'{"name": 123456789012345678901234567890}', headers={"Content-Type": "application/json"})
        self.fails("POST", "/api/v1/workspaces", 422, "VALIDATION_FAILED", {"name": 1e300}, key)

    def test_json_nested_past_the_parser_depth_is_refused(self):
        _, _, key = self.new_user()
        deep = b'{"workflow": ' + b"[" * 3000 + b"]" * 3000 + b"}"
        self.fails("POST", "/api/v1/workflows/validate", 400, "BAD_REQUEST", key=key, raw_body=deep,
                   headers={"Content-Type": "application/json"})
        code, _, _ = self.call("GET", "/health")
        self.assertEqual(code, 200)

    def test_path_tricks_are_not_found(self):
        _, _, key = self.new_user()
        for path in ("/api/v1/apps/..%2F..%2Fetc%2Fpasswd", "/api/v1/apps/1%20or%201=1", "/api/v1/workspaces/%00",
                     "/api/v1/versions/'%3Bdrop%20table%20x"):
            code, _, document = self.call("GET", path, key=key)
            self.assertEqual(code, 404, path)
            self.assertTrue(document["error_code"].endswith("NOT_FOUND"), document)
        self.fails("GET", "/api/v1/../../etc/passwd", 404, "NOT_FOUND", key=key)

    def test_injection_and_markup_are_refused_and_data_survives(self):
        _, ws, key = self.new_user()
        before = psql(self.database, "select count(*) from flowgres.workspaces")
        self.fails("POST", "/api/v1/workspaces", 422, "VALIDATION_FAILED", {"name": "x", "slug": "a'; drop table flowgres.apps; --"}, key)
        created = self.ok("POST", "/api/v1/workspaces", {"name": "<script>alert(1)</script>"}, key, status=201)
        self.assertEqual(created["name"], "<script>alert(1)</script>")  # stored as text, never interpreted
        self.assertEqual(int(psql(self.database, "select count(*) from flowgres.workspaces")), int(before) + 1)
        self.ok("GET", f"/api/v1/workspaces/{ws['id']}", key=key)

    def test_unknown_fields_are_refused(self):
        _, ws, key = self.new_user()
        document = self.fails("POST", f"/api/v1/workspaces/{ws['id']}/apps", 422, "VALIDATION_FAILED",
                              {"name": "ok", "nmae": "typo"}, key)
        self.assertIn("nmae", json.dumps(document["data"]["details"]))
        self.fails("PATCH", f"/api/v1/workspaces/{ws['id']}", 422, "VALIDATION_FAILED", {"colour": "red"}, key)
        self.fails("POST", f"/api/v1/workspaces/{ws['id']}/restore", 422, "VALIDATION_FAILED", {"force": True}, key)

    def test_oversized_body_is_413(self):
        _, _, key = self.new_user()
        # Refused on the declared length, before the body is read (the client may still be
        # sending it when the answer comes, so this speaks raw HTTP).
        head = (f"POST /api/v1/workspaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {1024 * 1024 + 1}\r\n\r\n").encode()
        answer = self.daemon.raw(head + b'{"name": "')
        self.assertIn(b"HTTP/1.1 413", answer)
        self.assertIn(b"PAYLOAD_TOO_LARGE", answer)
        self.ok("GET", "/api/v1/workspaces", key=key)


class Idempotency(ApiTestCase):
    def test_replay_returns_the_stored_response_once_created(self):
        _, _, key = self.new_user()
        headers = {"Idempotency-Key": "create-ws-1"}
        code1, h1, first = self.call("POST", "/api/v1/workspaces", {"name": "Once"}, key, headers=headers)
        code2, h2, second = self.call("POST", "/api/v1/workspaces", {"name": "Once"}, key, headers=headers)
        self.assertEqual((code1, code2), (201, 201))
        self.assertEqual(first["data"], second["data"])
        self.assertEqual(h2.get("idempotent-replayed"), "true")
        self.assertNotEqual(first["request_id"], second["request_id"])
        count = psql(self.database, "select count(*) from flowgres.workspaces where name = 'Once'")
        self.assertEqual(count, "1")

    def test_same_key_other_body_is_conflict(self):
        _, _, key = self.new_user()
        headers = {"Idempotency-Key": "create-ws-2"}
        self.ok("POST", "/api/v1/workspaces", {"name": "First"}, key, status=201, headers=headers)
        self.fails("POST", "/api/v1/workspaces", 409, "IDEMPOTENCY_CONFLICT", {"name": "Second"}, key, headers=headers)

    def test_in_flight_first_request_gives_in_progress(self):
        user, _, key = self.new_user()
        # The state a first request leaves while it runs: its claim, committed, not completed.
        import hashlib
        body = json.dumps({"name": "Busy"})
        request_hash = hashlib.sha256(f"POST /api/v1/workspaces\n\n{body}".encode()).hexdigest()
        psql(self.database, "insert into flowgres.idempotency_keys (actor_key, key, route, request_hash) "
                            f"values ('{user['id']}', 'busy-1', 'createWorkspace', '{request_hash}')")
        self.fails("POST", "/api/v1/workspaces", 409, "IDEMPOTENCY_IN_PROGRESS", {"name": "Busy"}, key,
                   headers={"Idempotency-Key": "busy-1"})

    def test_failed_call_releases_the_key_and_keys_are_per_user(self):
        _, _, key = self.new_user()
        headers = {"Idempotency-Key": "retry-me"}
        self.fails("POST", "/api/v1/workspaces", 422, "VALIDATION_FAILED", {"name": "Bad", "slug": "NO SPACES"}, key, headers=headers)
        self.ok("POST", "/api/v1/workspaces", {"name": "Good"}, key, status=201, headers=headers)
        _, _, other = self.new_user()
        self.ok("POST", "/api/v1/workspaces", {"name": "Good"}, other, status=201, headers=headers)

    def test_expired_keys_are_purged_and_reusable(self):
        user, _, key = self.new_user()
        headers = {"Idempotency-Key": "old-one"}
        self.ok("POST", "/api/v1/workspaces", {"name": "Old"}, key, status=201, headers=headers)
        psql(self.database, "update flowgres.idempotency_keys set expires_at = now() - interval '1 minute' where key = 'old-one'")
        self.assertEqual(psql(self.database, "select flowgres.idempotency_purge()"), "1")
        self.ok("POST", "/api/v1/workspaces", {"name": "Old"}, key, status=201, headers=headers)
        self.assertEqual(psql(self.database, "select count(*) from flowgres.workspaces where name = 'Old'"), "2")


class IdempotencyPurgeTimer(ApiTestCase):
    daemon_settings = {"idempotency_purge_interval_ms": 1000}

    def test_the_daemon_purges_expired_keys_by_itself(self):
        _, _, key = self.new_user()
        self.ok("POST", "/api/v1/workspaces", {"name": "Purged"}, key, status=201, headers={"Idempotency-Key": "purge-me"})
        self.ok("POST", "/api/v1/workspaces", {"name": "Kept"}, key, status=201, headers={"Idempotency-Key": "keep-me"})
        psql(self.database, "update flowgres.idempotency_keys set expires_at = now() - interval '1 second' where key = 'purge-me'")
        deadline = time.time() + 5
        while time.time() < deadline and psql(self.database, "select count(*) from flowgres.idempotency_keys where key = 'purge-me'") != "0":
            time.sleep(0.1)
        self.assertEqual(psql(self.database, "select count(*) from flowgres.idempotency_keys where key = 'purge-me'"), "0")
        self.assertEqual(psql(self.database, "select count(*) from flowgres.idempotency_keys where key = 'keep-me'"), "1")


class KeyUsage(ApiTestCase):
    daemon_settings = {"api_key_touch_interval_ms": 200}

    def test_last_used_at_is_written_in_batches(self):
        user, _, key = self.new_user()
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.api_keys where user_id = '{user['id']}' and last_used_at is not null"), "0")
        for _ in range(5):
            self.ok("GET", "/api/v1/workspaces", key=key)
        deadline = time.time() + 5
        while time.time() < deadline:
            if psql(self.database, f"select count(*) from flowgres.api_keys where user_id = '{user['id']}' and last_used_at is not null") == "1":
                return
            time.sleep(0.1)
        self.fail("last_used_at was never written")


if __name__ == "__main__":
    main()
