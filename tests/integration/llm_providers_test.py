#!/usr/bin/env python3
"""Model providers and the model catalogue over HTTP (README "Model providers"): the operator's
platform providers with keys sealed by the daemon (real AES-256-GCM, bound to the provider's
name), key rotation, a workspace's own providers keyed by its secrets, the platform-wide model
switch, what a workspace may use, refusals for bad input, and the per-scope cap under parallel
requests."""

import subprocess
from concurrent.futures import ThreadPoolExecutor

from harness import PROVISION, ApiTestCase, main, open_sealed, psql

KEYS = subprocess.run([PROVISION, "keygen", "--id", "k1"], capture_output=True, text=True, check=True).stdout.strip()
PROVIDER_KEY = "sk-provider-0123456789abcdefKEY1"


def model(name, quality=5, input_price=100000, output_price=400000):
    return {"model": name, "quality": quality, "input_micros_per_1m": input_price,
            "output_micros_per_1m": output_price, "context_tokens": 32000}


class LlmProviders(ApiTestCase):
    daemon_settings = {"master_keys": KEYS}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        helper = cls()
        cls.owner, cls.workspace, cls.key = helper.new_user("owner")
        cls.own = f"/api/v1/workspaces/{cls.workspace['id']}/llm-providers"

    def test_a_platform_provider_keeps_its_key_sealed_to_its_name(self):
        created = self.ok("POST", "/api/v1/llm-providers",
                          {"name": "sealed-one", "base_url": "https://api.example.com/v1", "api_key": PROVIDER_KEY,
                           "models": [model("m-small"), model("m-large", quality=9)]}, self.admin, status=201)
        self.assertTrue(created["has_api_key"])
        self.assertEqual(created["api_key_preview"], "…KEY1")
        self.assertNotIn(PROVIDER_KEY, str(created))
        sealed = psql(self.database, "select sealed_api_key from flowgres.llm_providers where name = 'sealed-one'")
        self.assertEqual(open_sealed(KEYS, sealed, "platform_llm_provider:sealed-one"), PROVIDER_KEY)
        rotated = self.ok("POST", "/api/v1/llm-providers/sealed-one/rotate-key", {"api_key": "sk-rotated-key-value-999"},
                          self.admin)
        self.assertEqual(rotated["api_key_preview"], "…-999")
        sealed = psql(self.database, "select sealed_api_key from flowgres.llm_providers where name = 'sealed-one'")
        self.assertEqual(open_sealed(KEYS, sealed, "platform_llm_provider:sealed-one"), "sk-rotated-key-value-999")
        self.assertEqual(psql(self.database, "select count(*) from flowgres.audit_logs where metadata::text like '%sk-%'"), "0")
        self.assertNotIn(PROVIDER_KEY, self.daemon.log_text())
        # Members neither make nor see platform providers.
        self.fails("POST", "/api/v1/llm-providers", 403, "PERMISSION_DENIED",
                   {"name": "nope", "base_url": "https://x.example/v1"}, self.key)
        self.fails("GET", "/api/v1/llm-providers", 403, "PERMISSION_DENIED", None, self.key)
        self.fails("GET", "/api/v1/llm-providers/no-such", 404, "LLM_PROVIDER_NOT_FOUND", None, self.admin)

    def test_a_workspace_provider_and_the_models_a_workspace_may_use(self):
        self.ok("POST", "/api/v1/llm-providers", {"name": "platform-a", "base_url": "https://a.example/v1",
                                                  "models": [model("shared-model"), model("retired-model")]},
                self.admin, status=201)
        own = self.ok("POST", self.own, {"name": "team", "base_url": "http://127.0.0.1:9/v1", "api_key_secret": "TEAM_KEY",
                                         "models": [model("team-model", quality=8)]}, self.key, status=201)
        self.assertEqual((own["scope"], own["api_key_secret"]), ("workspace", "TEAM_KEY"))
        models = [item["model"] for item in self.ok("GET", f"/api/v1/workspaces/{self.workspace['id']}/models", None,
                                                     self.key)["items"]]
        self.assertEqual(models[0], "team-model", "the workspace's own come first")
        self.assertIn("shared-model", models)
        self.ok("POST", "/api/v1/llm-models/retired-model/disable", {"reason": "end of life"}, self.admin)
        models = [item["model"] for item in self.ok("GET", f"/api/v1/workspaces/{self.workspace['id']}/models", None,
                                                     self.key)["items"]]
        self.assertNotIn("retired-model", models)
        self.fails("POST", "/api/v1/llm-models/shared-model/disable", 403, "PERMISSION_DENIED", {}, self.key)
        updated = self.ok("PATCH", self.own + "/team", {"timeout_ms": 5000, "models": [model("team-model-2")]}, self.key)
        self.assertEqual([entry["model"] for entry in updated["models"]], ["team-model-2"])
        self.ok("DELETE", self.own + "/team", None, self.key)
        self.fails("GET", self.own + "/team", 404, "LLM_PROVIDER_NOT_FOUND", None, self.key)

    def test_bad_input_is_refused(self):
        before = psql(self.database, "select count(*) from flowgres.llm_providers")
        for body in ({"name": "x"}, {"base_url": "https://x.example/v1"},
                     {"name": "Bad Name", "base_url": "https://x.example/v1"},
                     {"name": "x", "base_url": "javascript:alert(1)"},
                     {"name": "x", "base_url": "https://x.example/v1?key=secret"},
                     {"name": "x", "base_url": "https://x.example/v1", "protocol": "grpc"},
                     {"name": "x", "base_url": "https://x.example/v1", "timeout_ms": 10},
                     {"name": "x", "base_url": "https://x.example/v1", "models": [{"model": "<script>"}, {"model": ""}]},
                     {"name": "x", "base_url": "https://x.example/v1", "models": [{"model": "m", "quality": 11}]},
                     {"name": "x", "base_url": "https://x.example/v1", "api_key": "not for workspaces"},
                     {"name": "x'; drop table flowgres.apps; --", "base_url": "https://x.example/v1"}):
            self.fails("POST", self.own, 422, "VALIDATION_FAILED", body, self.key)
        self.assertEqual(psql(self.database, "select count(*) from flowgres.llm_providers"), before)

    def test_safety_rules_by_scope(self):
        rules = f"/api/v1/workspaces/{self.workspace['id']}/safety-rules"
        added = self.ok("POST", rules, {"category": "hate", "text": "(?i)hateful slogan \\d+", "kind": "pattern"}, self.key,
                        status=201)
        self.assertEqual(added["scope"], "workspace")
        listed = self.ok("GET", rules, None, self.key)["items"]
        self.assertIn("workspace", {item["scope"] for item in listed})
        self.assertIn("platform", {item["scope"] for item in listed})
        for body in ({"category": "spam", "text": "x"}, {"category": "hate", "text": ""},
                     {"category": "hate", "text": "(a)\\1", "kind": "pattern"}, {"category": "hate", "text": "x", "kind": "glob"}):
            self.fails("POST", rules, 422, "VALIDATION_FAILED", body, self.key)
        _, _, outsider = self.new_user("outsider")
        self.fails("DELETE", f"/api/v1/safety-rules/{added['id']}", 404, "SAFETY_RULE_NOT_FOUND", None, outsider)
        self.fails("POST", "/api/v1/safety-rules", 403, "PERMISSION_DENIED", {"category": "hate", "text": "x"}, self.key)
        self.ok("POST", "/api/v1/safety-rules", {"category": "hate", "text": "platform phrase"}, self.admin, status=201)
        self.ok("DELETE", f"/api/v1/safety-rules/{added['id']}", None, self.key)
        self.fails("DELETE", f"/api/v1/safety-rules/{added['id']}", 404, "SAFETY_RULE_NOT_FOUND", None, self.key)

    def test_the_safety_rule_cap_holds_under_parallel_adds(self):
        _, workspace, key = self.new_user("rules-capped")
        psql(self.database, f"""insert into flowgres.safety_rules (workspace_id, category, kind, text)
                                select '{workspace['id']}', 'hate', 'phrase', 'pre ' || i from generate_series(1, 495) i""")
        path = f"/api/v1/workspaces/{workspace['id']}/safety-rules"

        def attempt(i):
            return self.call("POST", path, {"category": "violence", "text": f"parallel phrase {i}"}, key)[0]
        with ThreadPoolExecutor(max_workers=16) as pool:
            codes = list(pool.map(attempt, range(16)))
        self.assertEqual(codes.count(201), 5, codes)
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.safety_rules "
                                             f"where workspace_id = '{workspace['id']}'"), "500")

    def test_the_cap_holds_under_parallel_creates(self):
        _, workspace, key = self.new_user("capped")
        psql(self.database, f"""insert into flowgres.llm_providers (workspace_id, name, base_url)
                                select '{workspace['id']}', 'pre-' || i, 'https://x.example/v1'
                                from generate_series(1, 45) i""")
        path = f"/api/v1/workspaces/{workspace['id']}/llm-providers"

        def attempt(i):
            return self.call("POST", path, {"name": f"par-{i}", "base_url": "https://x.example/v1"}, key)[0]
        with ThreadPoolExecutor(max_workers=16) as pool:
            codes = list(pool.map(attempt, range(16)))
        self.assertEqual(codes.count(201), 5, codes)
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.llm_providers "
                                             f"where workspace_id = '{workspace['id']}'"), "50")


if __name__ == "__main__":
    main()
