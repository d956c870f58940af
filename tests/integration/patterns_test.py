#!/usr/bin/env python3
"""Hostile regular expressions and huge values at every place a pattern runs: a UI field's
validation.pattern checked by runtime admission inside a PostgreSQL backend, and a condition
step's `matches` on the daemon's loop with the pattern taken from visitor data. Each answer
is an ordinary one, quickly, and the cluster's log shows no backend ended by a signal."""

import glob
import os
import time

from harness import SOCKET_DIR, psql, main
from runtime_test import RuntimeCase

EXPONENTIAL = ["^(a+)+$", "^(a|a)*$", "^(a|aa)+$", "(x+x+)+y", "^([a-z]+)*[0-9]$"]

MATCHER = {"nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"name": "text"}, {"name": "pattern"}]}},
                     {"id": "check", "type": "condition",
                      "config": {"left": "{{text}}", "operator": "matches", "right": "{{pattern}}"}},
                     {"id": "yes", "type": "transform", "config": {"template": {"matched": True}}},
                     {"id": "no", "type": "transform", "config": {"template": {"matched": False}}},
                     {"id": "o1", "type": "output"}, {"id": "o2", "type": "output"}],
           "edges": [{"source": "start", "target": "check"},
                     {"source": "check", "sourceHandle": "true", "target": "yes"},
                     {"source": "check", "sourceHandle": "false", "target": "no"},
                     {"source": "yes", "target": "o1"}, {"source": "no", "target": "o2"}]}


def ui_with_pattern(pattern):
    return {"schema_version": "1.0.0", "blocks": [{"type": "form", "children": [
        {"type": "input", "id": "name", "input_key": "name", "validation": {"pattern": pattern}}]}]}


def problem_fields(body):
    """The fields a VALIDATION_FAILED names: version checks list problems, admission nests them."""
    details = body["data"]["details"]
    return [problem.get("field") for problem in (details["problems"] if isinstance(details, dict) else details)]


def cluster_log():
    return "".join(open(path, errors="replace").read() for path in glob.glob(os.path.join(os.path.dirname(SOCKET_DIR), "log", "*")))


class Patterns(RuntimeCase):
    daemon_settings = {**RuntimeCase.daemon_settings, "max_body_bytes": 4 * 1024 * 1024}

    def setUp(self):
        self.postmaster_started = psql(self.database, "select pg_postmaster_start_time()")
        self.log_before = len(cluster_log())

    def tearDown(self):
        self.assertEqual(psql(self.database, "select pg_postmaster_start_time()"), self.postmaster_started,
                         "the cluster restarted: a backend died")
        log = cluster_log()[self.log_before:]
        self.assertNotIn("terminated by signal", log)

    def run_public(self, slug, inputs):
        started = time.time()
        code, _, body = self.visit("POST", f"/runtime/{self.ws_slug}/{slug}", {"inputs": inputs})
        return code, body, time.time() - started

    def test_huge_values_against_a_ui_pattern_answer_normally(self):
        self.published("lowercase", ui=ui_with_pattern("^[a-z]+$"))
        for size in (50_000, 1_000_000):
            code, body, _ = self.run_public("lowercase", {"name": "a" * size})
            self.assertEqual(code, 200, f"{size} characters: {body}")
            self.assertEqual(body["data"]["status"], "completed")
            code, body, _ = self.run_public("lowercase", {"name": "a" * size + "!"})
            self.assertEqual(code, 422, f"{size} characters and a !: {body}")
            self.assertEqual(body["error_code"], "VALIDATION_FAILED")
            self.assertEqual(problem_fields(body), ["inputs.name"])

    def test_exponential_ui_patterns_answer_in_linear_time(self):
        for index, pattern in enumerate(EXPONENTIAL):
            slug = f"exponential-{index}"
            self.published(slug, ui=ui_with_pattern(pattern))
            code, body, elapsed = self.run_public(slug, {"name": "a" * 100_000 + "!"})
            self.assertIn(code, (200, 422), f"{pattern}: {body}")
            self.assertLess(elapsed, 5, f"{pattern} took {elapsed:.1f} s")

    def test_patterns_re2_refuses_are_refused_at_version_creation(self):
        app = self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/apps", {"name": "refused", "slug": "refused"},
                      self.key, status=201)
        for pattern in ["(a)\\1", "(?=a)b", "(?<!a)b", "[", "a" * 501]:
            code, _, body = self.call("POST", f"/api/v1/apps/{app['id']}/versions",
                                      {"version": "1.0.0", "workflow": {
                                          "nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"name": "name"}]}},
                                                    {"id": "out", "type": "output", "config": {"value": "{{name}}"}}],
                                          "edges": [{"source": "start", "target": "out"}]},
                                       "ui_schema": ui_with_pattern(pattern)}, self.key)
            self.assertEqual(code, 422, f"{pattern[:20]}: {body}")
            self.assertEqual(body["error_code"], "VALIDATION_FAILED")
            self.assertIn("ui_schema.blocks[0].children[0].validation.pattern", problem_fields(body))
            code, _, body = self.call("POST", f"/api/v1/apps/{app['id']}/versions",
                                      {"version": "1.0.0", "workflow": {**MATCHER, "nodes": [
                                          node if node["id"] != "check" else
                                          {**node, "config": {**node["config"], "right": pattern}} for node in MATCHER["nodes"]]}},
                                      self.key)
            self.assertEqual(code, 422, f"condition {pattern[:20]}: {body}")
            self.assertIn("workflow.nodes[1].config.right", problem_fields(body), body)

    def test_visitor_patterns_in_a_condition_step(self):
        self.published("matcher", workflow=MATCHER, ui={})
        code, body, _ = self.run_public("matcher", {"text": "hello", "pattern": "^h.*o$"})
        self.assertEqual((code, body["data"]["outputs"]), (200, {"o1": {"matched": True}}), body)
        for pattern in EXPONENTIAL:
            code, body, elapsed = self.run_public("matcher", {"text": "a" * 200_000 + "!", "pattern": pattern})
            self.assertEqual(code, 200, body)
            self.assertEqual(body["data"]["outputs"], {"o2": {"matched": False}}, pattern)
            self.assertLess(elapsed, 5, f"{pattern} took {elapsed:.1f} s")
        code, body, _ = self.run_public("matcher", {"text": "a" * 1_100_000, "pattern": "a"})
        self.assertEqual(body["data"]["status"], "failed", "a subject over 1 MiB is refused, not matched")
        self.assertIn("at most 1048576 bytes", body["data"]["error"]["message"])
        for pattern in ["(a)\\1", "(?=a)", "x" * 600]:
            code, body, _ = self.run_public("matcher", {"text": "aa", "pattern": pattern})
            self.assertEqual(body["data"]["status"], "failed", body)
            self.assertEqual(body["data"]["error"]["error_code"], "NODE_FAILED")
        self.assertEqual(self.daemon.request("GET", "/health")[0], 200)


if __name__ == "__main__":
    main()
