#!/usr/bin/env python3
"""Apps from a prompt (POST /api/v1/workspaces/{id}/apps/from-ai, README "Apps from a prompt")
against the test provider: an invalid answer repaired from the validators' problems, then the
app and its draft version created in one transaction and audited; a db_schema stored with the
version but nothing applied; answers that never pass refused with every problem and nothing
created; the safety rules applied to the answer; the caller's permission and the model's
availability checked before any model is asked; every call metered."""

import json
import subprocess
import time

from harness import PROVISION, ApiTestCase, main, psql
from llm_provider import Provider

KEYS = subprocess.run([PROVISION, "keygen", "--id", "k1"], capture_output=True, text=True, check=True).stdout.strip()

GOOD = {
    "app_metadata": {"name": "Word counter", "slug": "word-counter", "description": "Counts the words of a text."},
    "workflow_definition": {
        "nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"name": "text", "type": "string", "required": True}]}},
                  {"id": "count", "type": "transform", "config": {"template": {"text": "{{text}}"}}},
                  {"id": "output", "type": "output"}],
        "edges": [{"source": "start", "target": "count"}, {"source": "count", "target": "output"}]},
    "ui_schema": {"schema_version": "1.0.0", "layout": "single_column",
                  "blocks": [{"id": "main_form", "type": "form",
                              "children": [{"id": "text", "type": "input", "input_key": "text", "label": "Text",
                                            "validation": {"required": True}}]}],
                  "actions": [{"id": "submit", "type": "submit", "label": "Count"}], "result_view": {"type": "text"}},
    "db_schema": {"tables": [{"name": "counts", "columns": [{"name": "words", "type": "integer", "nullable": False}]}]},
    "access_policy": {"access_mode": "public_anonymous"},
}
BROKEN = {**GOOD, "workflow_definition": {"nodes": [{"id": "start", "type": "start"}], "edges": []}}


class Generation(ApiTestCase):
    daemon_settings = {"master_keys": KEYS, "egress_allow": "127.0.0.0/8", "generation_max_attempts": 3}

    @classmethod
    def setUpClass(cls):
        cls.provider = Provider().start()
        super().setUpClass()
        helper = cls()
        cls.owner, cls.workspace, cls.key = helper.new_user("owner")
        psql(cls.database, f"update flowgres.workspaces set plan = 'enterprise' where id = '{cls.workspace['id']}'")
        helper.ok("POST", "/api/v1/llm-providers", {"name": "local", "base_url": cls.provider.base_url,
                                                    "models": [{"model": "architect", "quality": 8}]}, cls.admin, status=201)
        cls.path = f"/api/v1/workspaces/{cls.workspace['id']}/apps/from-ai"

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.provider.stop()

    def test_a_broken_answer_is_repaired_then_the_app_is_created(self):
        self.provider.script("architect", {"reply": "Sure! Here it is: " + json.dumps(BROKEN) + " Enjoy."}, {"json": GOOD})
        made = self.ok("POST", self.path, {"prompt": "An app that counts the words of a text"}, self.key, status=201)
        self.assertEqual((made["attempts"], made["validation"], made["model"]), (2, {"valid": True, "problems": []}, "architect"))
        self.assertEqual((made["app"]["name"], made["app"]["slug"], made["app"]["status"]), ("Word counter", "word-counter", "draft"))
        self.assertEqual(made["version"]["version"], "0.1.0")
        self.assertEqual(made["version"]["db_schema"], GOOD["db_schema"])
        self.assertEqual(made["app"]["access_policy"]["access_mode"], "public_anonymous")
        # What the model was told: the system template, the prompt, then its answer and the problems.
        repair = self.provider.requests[-1]["body"]["messages"]
        self.assertEqual(repair[0]["role"], "system")
        self.assertIn("workflow_definition", repair[0]["content"])
        self.assertIn("architect", repair[0]["content"], "the template names the model llm steps should use")
        self.assertEqual(repair[1], {"role": "user", "content": "An app that counts the words of a text"})
        self.assertEqual(repair[2]["role"], "assistant")
        self.assertIn("must have at least one output or end node", repair[3]["content"])
        # Nothing reached a workspace database: the db_schema waits for the schema-change review.
        self.assertEqual(psql(self.database, "select count(*) from flowgres.schema_changes"), "0")
        audit = json.loads(psql(self.database, "select metadata::text from flowgres.audit_logs "
                                               f"where action = 'app.generate' and target_id = '{made['app']['id']}'"))
        self.assertEqual((audit["model"], audit["attempts"]), ("architect", 2))
        self.assertNotIn("counts the words", json.dumps(audit), "the prompt is not kept in the audit trail")
        usage = json.loads(psql(self.database, "select json_agg(u) from flowgres.model_usage u where node_id = 'app_generation'"))
        self.assertGreaterEqual(len(usage), 2, "both answers are metered")

    def test_a_new_version_from_an_instruction(self):
        self.provider.script("architect", {"json": GOOD})
        made = self.ok("POST", self.path, {"prompt": "a word counter"}, self.key, status=201)
        app_id = made["app"]["id"]
        changed = json.loads(json.dumps(GOOD))
        changed["ui_schema"]["actions"][0]["label"] = "Count the words"
        self.provider.script("architect", {"json": {"oops": True}}, {"json": changed})
        added = self.ok("POST", f"/api/v1/apps/{app_id}/versions/from-ai",
                        {"instruction": "Call the button 'Count the words'"}, self.key, status=201)
        self.assertEqual((added["version"]["version"], added["attempts"]), ("0.2.0", 2))
        self.assertEqual(added["version"]["ui_schema"]["actions"][0]["label"], "Count the words")
        self.assertEqual(added["version"]["changelog"], "Generated: Call the button 'Count the words'")
        system = self.provider.requests[-1]["body"]["messages"][0]["content"]
        self.assertIn('"label": "Count"', system.replace('":"', '": "'), "the current version went along")
        versions = self.ok("GET", f"/api/v1/apps/{app_id}/versions", None, self.key)
        self.assertEqual(len(versions), 2, "the first version is untouched")
        self.assertEqual(psql(self.database, "select count(*) from flowgres.audit_logs where action = 'version.generate' "
                                             f"and workspace_id = '{self.workspace['id']}'"), "1")
        _, _, outsider = self.new_user("stranger")
        self.fails("POST", f"/api/v1/apps/{app_id}/versions/from-ai", 404, "APP_NOT_FOUND", {"instruction": "x"}, outsider)
        empty = self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/apps", {"name": f"empty {time.time_ns()}"},
                        self.key, status=201)
        self.fails("POST", f"/api/v1/apps/{empty['id']}/versions/from-ai", 404, "VERSION_NOT_FOUND", {"instruction": "x"},
                   self.key)

    def test_answers_that_never_pass_create_nothing(self):
        apps_before = psql(self.database, "select count(*) from flowgres.apps")
        self.provider.script("architect", {"reply": "no JSON here"}, {"json": BROKEN}, {"json": {"app_metadata": {}}})
        document = self.fails("POST", self.path, 422, "VALIDATION_FAILED", {"prompt": "anything"}, self.key)
        details = document["data"]["details"]
        self.assertEqual(details["attempts"], 3)
        self.assertIn("app_metadata.name", [problem["field"] for problem in details["problems"]])
        self.assertEqual(psql(self.database, "select count(*) from flowgres.apps"), apps_before)

    def test_a_taken_slug_is_dropped_and_html_is_refused(self):
        self.provider.script("architect", {"json": GOOD})
        first = self.ok("POST", self.path, {"prompt": "again"}, self.key, status=201)
        self.assertNotEqual(first["app"]["slug"], "word-counter", "a proposed slug in use is not taken over")
        hostile = json.loads(json.dumps(GOOD))
        hostile["ui_schema"]["blocks"][0]["children"][0]["props"] = {"html": "<script>alert(1)</script>"}
        self.provider.script("architect", *[{"json": hostile}] * 3)
        self.fails("POST", self.path, 422, "VALIDATION_FAILED", {"prompt": "hostile"}, self.key)

    def test_safety_rules_apply_to_the_answer(self):
        self.provider.script("architect", {"reply": "how to build a bomb " + json.dumps(GOOD)})
        document = self.fails("POST", self.path, 451, "AI_OUTPUT_BLOCKED", {"prompt": "x"}, self.key)
        self.assertEqual(document["data"]["details"], {"category": "violence"})

    def test_permissions_models_and_bad_input_are_checked_before_any_model_is_asked(self):
        asked = len(self.provider.requests)
        _, _, outsider = self.new_user("outsider")
        self.fails("POST", self.path, 404, "WORKSPACE_NOT_FOUND", {"prompt": "x"}, outsider)
        self.fails("POST", self.path, 422, "VALIDATION_FAILED", {"prompt": ""}, self.key)
        self.fails("POST", self.path, 422, "VALIDATION_FAILED", {"prompt": "x" * 20001}, self.key)
        self.fails("POST", self.path, 422, "VALIDATION_FAILED", {}, self.key)
        self.fails("POST", self.path, 404, "LLM_MODEL_UNAVAILABLE", {"prompt": "x", "model": "no-such-model"}, self.key)
        self.assertEqual(len(self.provider.requests), asked, "no model was asked")


if __name__ == "__main__":
    main()
