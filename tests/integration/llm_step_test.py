#!/usr/bin/env python3
"""The llm step end to end (README "The llm step"), against the test provider speaking
OpenAI's wire protocol on loopback: the seed §52 example as written, streamed tokens as
node_delta events, retries on 429 and 5xx, a fallback chain, fallbackText, routing by budget
and quality, an output schema repaired once or failing with LLM_OUTPUT_INVALID, a provider
dying mid-stream (failed with its code, billed once as far as it went), a switched-off model,
a revoked key secret, timeouts, the egress policy, and the provider's key found in no table and
no log line. Every call's tokens and cost land in model_usage and the execution's token counts."""

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from harness import PROVISION, ApiTestCase, Caller, Daemon, main, psql
from llm_provider import Provider
from secrets_test import rows_containing

KEYS = subprocess.run([PROVISION, "keygen", "--id", "k1"], capture_output=True, text=True, check=True).stdout.strip()
PLATFORM_KEY = "sk-platform-0123456789abcdefPLAT"
TEAM_KEY = "sk-team-9876543210fedcbaTEAM"

SEED_EXAMPLE = {
    "version": "1.0.0",
    "nodes": [
        {"id": "start", "type": "start", "label": "开始", "position": {"x": 0, "y": 0},
         "data": {"label": "开始",
                  "inputs": [{"id": "prompt", "name": "prompt", "label": "提示词", "type": "string", "required": True}],
                  "config": {"form_id": "main_form", "submit_action": {"id": "submit", "type": "submit", "label": "运行"}}},
         "outputs": [{"id": "prompt", "name": "prompt", "type": "string"}]},
        {"id": "llm", "type": "llm", "label": "LLM", "position": {"x": 240, "y": 0},
         "config": {"model": "gpt-4", "systemPrompt": "你是一个总结助手",
                    "userPrompt": "请返回 JSON：{\"summary\":\"...\"}。原文：{{prompt}}", "temperature": 0.7,
                    "max_tokens": 512,
                    "output_schema": {"type": "object", "properties": {"summary": {"type": "string"}},
                                      "required": ["summary"]}},
         "inputs": [{"id": "prompt", "name": "prompt", "type": "string"}],
         "outputs": [{"id": "parsed", "name": "parsed", "type": "object"}]},
        {"id": "output", "type": "output", "label": "输出", "position": {"x": 480, "y": 0},
         "config": {"outputType": "json", "title": "结果"},
         "inputs": [{"id": "input", "name": "input", "type": "object"}], "outputs": []}],
    "edges": [{"id": "e1", "source": "start", "sourceHandle": "prompt", "target": "llm", "targetHandle": "prompt"},
              {"id": "e2", "source": "llm", "sourceHandle": "parsed", "target": "output", "targetHandle": "input"}],
}


# How many of an execution's stored events match `condition` (on event and data), as readers
# get them (execution_events: rows, or its trail).
def stored_events_sql(execution_id, condition):
    return f"""(select count(*) from jsonb_to_recordset(flowgres.execution_events('{execution_id}', 0, 500) -> 'events')
                    as entry(id integer, event text, data jsonb)
                where {condition})"""


def llm_app(config):
    return {"nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"name": "q", "type": "string"}]}},
                      {"id": "ask", "type": "llm", "config": {"userPrompt": "{{q}}", **config}},
                      {"id": "out", "type": "output"}],
            "edges": [{"source": "start", "target": "ask"}, {"source": "ask", "target": "out"}]}


def model(name, quality=5, input_price=1000000, output_price=2000000):
    return {"model": name, "quality": quality, "input_micros_per_1m": input_price, "output_micros_per_1m": output_price}


class LlmStep(ApiTestCase):
    daemon_settings = {"master_keys": KEYS, "egress_allow": "127.0.0.0/8", "llm_max_backoff_ms": 3000,
                       "llm_first_token_timeout_ms": 1500, "execution_heartbeat_interval_ms": 200}

    @classmethod
    def setUpClass(cls):
        cls.provider = Provider(api_key=PLATFORM_KEY).start()
        cls.team_provider = Provider(api_key=TEAM_KEY).start()
        super().setUpClass()
        helper = cls()
        cls.owner, cls.workspace, cls.key = helper.new_user("owner")
        psql(cls.database, f"update flowgres.workspaces set plan = 'enterprise' where id = '{cls.workspace['id']}'")
        helper.ok("POST", "/api/v1/llm-providers", {
            "name": "local", "base_url": cls.provider.base_url, "api_key": PLATFORM_KEY,
            "models": [model("gpt-4", 9), model("m-main", 6), model("m-backup", 4), model("m-cheap", 3, 100, 200),
                       model("m-best", 10, 5000000, 9000000), model("m-flaky"), model("m-schema"), model("m-cut"),
                       model("m-slow"), model("m-off"), model("m-hold")]}, cls.admin, status=201)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.provider.stop()
        cls.team_provider.stop()

    def run_app(self, workflow, inputs=None):
        app = self.app_with(self.key, self.workspace, workflow)
        return self.ok("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": inputs or {"q": "hello"}}, self.key)

    def step_output(self, execution):
        [log] = [log for log in execution["node_logs"] if log["node_id"] in ("ask", "llm")]
        return log

    def usage_rows(self, execution):
        rows = psql(self.database, "select coalesce(json_agg(u order by id), '[]') from flowgres.model_usage u "
                                   f"where execution_id = '{execution['id']}'")
        return json.loads(rows)

    def test_the_seed_example_validates_and_runs_as_written(self):
        self.ok("POST", "/api/v1/workflows/validate", {"workflow": SEED_EXAMPLE}, self.key)
        execution = self.run_app(SEED_EXAMPLE, {"prompt": "flowgres hosts AI workflow apps"})
        self.assertEqual(execution["status"], "completed", execution)
        output = execution["outputs"]["output"]
        self.assertEqual(output["parsed"]["summary"], "请返回 JSON：{\"summary\":\"...\"}。原文：flowgres hosts AI workflow apps")
        self.assertEqual((output["model"], output["provider"], output["fallback_used"]), ("gpt-4", "local", False))
        sent = self.provider.requests[-1]
        self.assertEqual(sent["headers"]["authorization"], f"Bearer {PLATFORM_KEY}")
        self.assertEqual(sent["body"]["messages"][0], {"role": "system", "content": "你是一个总结助手"})
        self.assertEqual(sent["body"]["max_tokens"], 512)
        self.assertEqual(sent["body"]["response_format"]["type"], "json_schema")
        self.assertTrue(sent["body"]["stream_options"]["include_usage"])
        # Metered once: the run's tokens are the provider's reported usage, and one usage row.
        [row] = self.usage_rows(execution)
        self.assertEqual((row["provider"], row["model"], row["ok"], row["usage_reported"]), ("local", "gpt-4", True, True))
        self.assertEqual(row["prompt_tokens"], output["usage"]["prompt_tokens"])
        self.assertEqual((execution["prompt_tokens"], execution["completion_tokens"]),
                         (row["prompt_tokens"], row["completion_tokens"]))
        self.assertEqual(row["cost_micros"], -(-(row["prompt_tokens"] * 1000000 + row["completion_tokens"] * 2000000) // 1000000))
        usage = self.ok("GET", f"/api/v1/workspaces/{self.workspace['id']}/model-usage", None, self.key)
        self.assertIn(("local", "gpt-4"), [(item["provider"], item["model"]) for item in usage["items"]])

    def test_tokens_stream_as_node_delta_events(self):
        self.provider.script("m-main", {"reply": "one two three four five six", "token_delay_ms": 80})
        execution = self.run_app(llm_app({"model": "m-main"}))
        self.assertEqual(execution["outputs"]["out"]["text"], "one two three four five six")
        status, _, body = self.call("GET", f"/api/v1/executions/{execution['id']}/events", None, self.key, timeout=10)
        text = body if isinstance(body, str) else json.dumps(body)
        deltas = [json.loads(line[6:])["delta"] for line in text.splitlines()
                  if line.startswith("data: ") and '"delta"' in line]
        self.assertGreater(len(deltas), 1, "streamed in more than one piece")
        self.assertEqual("".join(deltas), "one two three four five six")

    def test_a_step_that_does_not_stream_sends_no_deltas(self):
        self.provider.script("m-main", {"reply": "an intermediate verdict", "token_delay_ms": 30})
        execution = self.run_app(llm_app({"model": "m-main", "stream": False}))
        self.assertEqual(execution["outputs"]["out"]["text"], "an intermediate verdict")
        deltas = stored_events_sql(execution["id"], "event = 'node_delta'")
        self.assertEqual(psql(self.database, f"select {deltas}"), "0")

    def test_retries_then_a_fallback_chain_then_fallback_text(self):
        self.provider.script("m-flaky", {"status": 429, "retry_after": 1}, {"reply": "after a retry"})
        execution = self.run_app(llm_app({"model": "m-flaky"}))
        output = execution["outputs"]["out"]
        self.assertEqual((output["text"], output["fallback_used"]), ("after a retry", False))
        self.assertEqual(output["attempts"][0]["attempts"], 2, "the client retried after Retry-After")

        self.provider.script("m-main", {"status": 500}, {"status": 500}, {"status": 500})
        self.provider.script("m-backup", {"reply": "from the backup"})
        execution = self.run_app(llm_app({"model": "m-main", "fallbackModels": ["m-backup"]}))
        output = execution["outputs"]["out"]
        self.assertEqual((output["text"], output["model"], output["fallback_used"]), ("from the backup", "m-backup", True))
        self.assertEqual([(a["model"], a["ok"]) for a in output["attempts"]], [("m-main", False), ("m-backup", True)])
        self.assertEqual(output["attempts"][0]["error_code"], "LLM_REQUEST_FAILED")

        self.provider.script("m-main", {"status": 429, "retry_after": 60})  # longer than llm_max_backoff_ms
        self.provider.script("m-backup", {"status": 400, "message": "bad request"})
        execution = self.run_app(llm_app({"model": "m-main", "fallbackModels": ["m-backup", "no-such-model"],
                                          "fallbackText": "The assistant is busy; try again soon."}))
        output = execution["outputs"]["out"]
        self.assertEqual(execution["status"], "completed")
        self.assertEqual((output["text"], output["fallback_used"]), ("The assistant is busy; try again soon.", True))
        self.assertEqual([a["error_code"] for a in output["attempts"]],
                         ["LLM_RATE_LIMITED", "LLM_REQUEST_FAILED", "LLM_MODEL_UNAVAILABLE"])

        execution = self.run_app(llm_app({"model": "no-such-model"}))
        self.assertEqual((execution["status"], execution["error"]["error_code"]), ("failed", "LLM_MODEL_UNAVAILABLE"))

    def test_routing_by_budget_and_quality(self):
        candidates = ["m-main", "m-cheap", "m-best"]
        for strategy, first in (("budget", "m-cheap"), ("quality", "m-best")):
            execution = self.run_app(llm_app({"modelCandidates": candidates, "routingStrategy": strategy}))
            self.assertEqual(execution["outputs"]["out"]["model"], first, strategy)

    def test_an_output_schema_is_repaired_once_then_refused(self):
        schema = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}
        self.provider.script("m-schema", {"reply": "not json at all"}, {"json": {"score": 7}})
        execution = self.run_app(llm_app({"model": "m-schema", "outputSchema": schema}))
        output = execution["outputs"]["out"]
        self.assertEqual(output["parsed"], {"score": 7})
        repair = self.provider.requests[-1]["body"]["messages"]
        self.assertEqual(repair[-2], {"role": "assistant", "content": "not json at all"})
        self.assertIn("$: is not JSON", repair[-1]["content"])
        self.assertEqual(len(self.usage_rows(execution)), 2, "the repair is a call of its own, metered")

        self.provider.script("m-schema", {"json": {"score": "high"}}, {"json": {"nope": 1}})
        execution = self.run_app(llm_app({"model": "m-schema", "outputSchema": schema}))
        self.assertEqual((execution["status"], execution["error"]["error_code"]), ("failed", "LLM_OUTPUT_INVALID"))
        self.assertIn("$.score: is required", execution["error"]["message"])

    def test_a_provider_dying_mid_stream_fails_the_run_and_bills_once(self):
        self.provider.script("m-cut", {"reply": "a b c d e f g h", "cut_after_tokens": 3})
        execution = self.run_app(llm_app({"model": "m-cut"}))
        self.assertEqual((execution["status"], execution["error"]["error_code"]), ("failed", "LLM_REQUEST_FAILED"))
        [row] = self.usage_rows(execution)
        self.assertEqual((row["ok"], row["usage_reported"], row["completion_tokens"]), (False, False, 3),
                         "what streamed is billed, estimated and marked so")
        self.assertEqual(execution["completion_tokens"], 3)
        cut_requests = [r for r in self.provider.requests if (r["body"] or {}).get("model") == "m-cut"]
        self.assertEqual(len(cut_requests), 1, "no retry once tokens went out")

    def test_an_answer_breaking_a_safety_rule_is_withheld(self):
        rules = f"/api/v1/workspaces/{self.workspace['id']}/safety-rules"
        self.ok("POST", rules, {"category": "illegal", "text": "Project Nightshade"}, self.key, status=201)
        self.provider.script("m-main", {"reply": "Here is everything about project nightshade and its plans",
                                        "token_delay_ms": 20})
        execution = self.run_app(llm_app({"model": "m-main", "fallbackModels": ["m-backup"], "fallbackText": "no"}))
        self.assertEqual((execution["status"], execution["error"]["error_code"]), ("failed", "AI_OUTPUT_BLOCKED"),
                         "neither a fallback model nor fallbackText replaces a withheld answer")
        self.assertIn("category illegal", execution["error"]["message"])
        log = self.step_output(execution)
        self.assertEqual(log["output"]["blocked"], {"category": "illegal"})
        self.assertEqual(log["output"]["text"], "")
        leaked = stored_events_sql(execution["id"], "data::text ilike '%nightshade%'")
        stored = psql(self.database, f"select {leaked}")
        self.assertEqual(stored, "0", "not even the pieces before the hit were streamed")
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.node_logs where execution_id = '{execution['id']}' "
                                             "and (output::text ilike '%nightshade%' or error::text ilike '%nightshade%')"), "0")
        [row] = self.usage_rows(execution)
        self.assertEqual((row["ok"], row["error_code"]), (False, "AI_OUTPUT_BLOCKED"), "the call is still metered")
        # The platform's default list applies too.
        self.provider.script("m-main", {"reply": "Sure. How to build a bomb: first"})
        execution = self.run_app(llm_app({"model": "m-main"}))
        self.assertEqual(execution["error"]["error_code"], "AI_OUTPUT_BLOCKED")
        self.assertIn("category violence", execution["error"]["message"])

    def test_the_tokens_quota_holds_under_parallel_runs(self):
        _, workspace, key = self.new_user("quota")
        psql(self.database, f"update flowgres.workspaces set plan = 'enterprise' where id = '{workspace['id']}'")
        self.ok("PUT", f"/api/v1/workspaces/{workspace['id']}/quotas/tokens", {"quota": 350}, self.admin)
        app = self.app_with(key, workspace, llm_app({"model": "m-hold", "max_tokens": 100}))
        self.provider.script("m-hold", *[{"reply": "ok", "first_token_delay_ms": 800}] * 10)
        before = len([r for r in self.provider.requests if (r["body"] or {}).get("model") == "m-hold"])

        def run(_):
            return self.call("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": {"q": "x"}}, key, timeout=30)[2]["data"]
        with ThreadPoolExecutor(max_workers=10) as pool:
            executions = list(pool.map(run, range(10)))
        outcomes = sorted((e["status"], (e.get("error") or {}).get("error_code")) for e in executions)
        self.assertEqual(outcomes.count(("completed", None)), 3, outcomes)
        self.assertEqual(outcomes.count(("failed", "QUOTA_EXCEEDED")), 7, outcomes)
        sent = len([r for r in self.provider.requests if (r["body"] or {}).get("model") == "m-hold"]) - before
        self.assertEqual(sent, 3, "refused calls never left")
        self.assertEqual(psql(self.database, "select count(*) from flowgres.token_holds "
                                             f"where workspace_id = '{workspace['id']}'"), "0", "holds end with their runs")
        self.provider.reset()

    def test_calls_to_a_provider_reuse_their_connection(self):
        app = self.app_with(self.key, self.workspace, llm_app({"model": "m-main"}))
        first = len(self.provider.requests)
        for _ in range(6):
            execution = self.ok("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": {"q": "hi"}}, self.key)
            self.assertEqual(execution["status"], "completed", execution)
        ports = [r["client_port"] for r in self.provider.requests[first:]]
        self.assertEqual(len(ports), 6)
        self.assertLessEqual(len(set(ports)), 2, f"at most one connection per daemon worker: {ports}")
        # A kept connection the provider dropped is replaced without the run noticing.
        self.provider.script("m-main", {"reply": "then gone", "drop_after": True}, {"reply": "still fine"})
        outputs = [self.ok("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": {"q": "hi"}}, self.key)["outputs"]["out"]["text"]
                   for _ in range(2)]
        self.assertEqual(outputs, ["then gone", "still fine"])

    def test_a_step_stopped_mid_answer_is_still_metered(self):
        self.provider.script("m-slow", {"reply": "a b c d e f g h i j", "token_delay_ms": 150})
        execution = self.run_app(llm_app({"model": "m-slow", "timeout": 700}))
        self.assertEqual((execution["status"], execution["error"]["error_code"]), ("failed", "NODE_TIMEOUT"))
        [row] = self.usage_rows(execution)
        self.assertEqual((row["ok"], row["error_code"], row["usage_reported"]), (False, "NODE_TIMEOUT", False))
        self.assertGreaterEqual(row["completion_tokens"], 2, "the pieces that arrived are billed")
        self.assertLess(row["completion_tokens"], 10)
        self.assertEqual((execution["prompt_tokens"], execution["completion_tokens"]),
                         (row["prompt_tokens"], row["completion_tokens"]), "counted once, in the run too")

    def test_a_hostile_provider_cannot_flood_the_daemon(self):
        # One streamed event of 1.5 MB (a single "word"): past the 1 MiB an event may hold.
        self.provider.script("m-main", {"reply": "x" * 1500000})
        execution = self.run_app(llm_app({"model": "m-main"}))
        self.assertEqual((execution["status"], execution["error"]["error_code"]), ("failed", "LLM_REQUEST_FAILED"))
        self.assertIn("larger than 1 MiB", execution["error"]["message"])
        self.assertEqual(self.call("GET", "/health")[0], 200, "the daemon keeps serving")
        self.assertEqual(self.run_app(llm_app({"model": "m-main"}))["status"], "completed")

    def test_a_slow_first_token_times_out(self):
        self.provider.script("m-slow", {"reply": "late", "first_token_delay_ms": 3000})
        execution = self.run_app(llm_app({"model": "m-slow"}))
        self.assertEqual((execution["status"], execution["error"]["error_code"]), ("failed", "LLM_TIMEOUT"))

    def test_a_model_switched_off_platform_wide(self):
        self.ok("POST", "/api/v1/llm-models/m-off/disable", {"reason": "test"}, self.admin)
        try:
            execution = self.run_app(llm_app({"model": "m-off"}))
            self.assertEqual(execution["error"]["error_code"], "LLM_MODEL_UNAVAILABLE")
        finally:
            self.ok("POST", "/api/v1/llm-models/m-off/enable", {}, self.admin)
        self.assertEqual(self.run_app(llm_app({"model": "m-off"}))["status"], "completed")

    def test_a_workspace_provider_keyed_by_a_secret(self):
        secrets = f"/api/v1/workspaces/{self.workspace['id']}/secrets"
        self.ok("POST", secrets, {"name": "TEAM_KEY", "value": TEAM_KEY}, self.key, status=201)
        self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/llm-providers",
                {"name": "team", "base_url": self.team_provider.base_url, "api_key_secret": "TEAM_KEY",
                 "models": [model("team-model")]}, self.key, status=201)
        self.team_provider.script("team-model", {"reply": f"I was told {TEAM_KEY}"})
        execution = self.run_app(llm_app({"model": "team-model"}))
        output = execution["outputs"]["out"]
        self.assertEqual(output["provider"], "team")
        self.assertEqual(output["text"], "I was told [secret:TEAM_KEY]", "a key the model repeats is masked")
        self.assertEqual(self.team_provider.requests[-1]["headers"]["authorization"], f"Bearer {TEAM_KEY}")
        self.ok("POST", secrets + "/TEAM_KEY/revoke", {}, self.key)
        execution = self.run_app(llm_app({"model": "team-model"}))
        self.assertEqual(execution["error"]["error_code"], "SECRET_REVOKED")
        for value in (TEAM_KEY, PLATFORM_KEY):
            self.assertEqual(rows_containing(self.database, value), 0)
            self.assertNotIn(value, self.daemon.log_text())

    def published(self, key, workspace, workflow):
        """A public app of `workflow`; its runtime address."""
        app = self.app_with(key, workspace, workflow)
        [version] = self.ok("GET", f"/api/v1/apps/{app['id']}/versions", None, key)
        self.ok("POST", f"/api/v1/apps/{app['id']}/publish",
                {"version_id": version["id"], "access_policy": {
                    "access_mode": "public_anonymous",
                    "rate_limit": {"per_ip": {"max_requests": 100000, "window_seconds": 60}}}}, key)
        slug = psql(self.database, f"select slug from flowgres.workspaces where id = '{workspace['id']}'")
        return f"/runtime/{slug}/{app['slug']}"

    def test_a_visitors_run_gets_keys_and_routes_with_its_admission(self):
        # Admission hands the run its secrets, routes and rules: a rotation or a revocation
        # still applies from the very next visitor.
        secrets = f"/api/v1/workspaces/{self.workspace['id']}/secrets"
        self.ok("POST", secrets, {"name": "VISITOR_KEY", "value": TEAM_KEY}, self.key, status=201)
        self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/llm-providers",
                {"name": "visitors", "base_url": self.team_provider.base_url, "api_key_secret": "VISITOR_KEY",
                 "models": [model("visitor-model")]}, self.key, status=201)
        path = self.published(self.key, self.workspace, llm_app({"model": "visitor-model"}))
        self.team_provider.script("visitor-model", {"reply": "first"}, {"reply": "second"})
        code, _, first = self.daemon.request("POST", path, {"inputs": {"q": "hi"}})
        self.assertEqual((code, first["data"]["status"]), (200, "completed"), first)
        self.assertEqual(first["data"]["outputs"]["out"]["text"], "first")
        self.assertEqual(self.team_provider.requests[-1]["headers"]["authorization"], f"Bearer {TEAM_KEY}")
        rotated = TEAM_KEY + "-rotated"
        self.ok("POST", secrets + "/VISITOR_KEY/rotate", {"value": rotated}, self.key)
        self.team_provider.api_key = rotated  # the provider takes only the new key now
        try:
            _, _, second = self.daemon.request("POST", path, {"inputs": {"q": "hi"}})
        finally:
            self.team_provider.api_key = TEAM_KEY
        self.assertEqual(second["data"]["status"], "completed", second)
        self.assertEqual(second["data"]["outputs"]["out"]["text"], "second")
        self.assertEqual(self.team_provider.requests[-1]["headers"]["authorization"], f"Bearer {rotated}")
        self.ok("POST", secrets + "/VISITOR_KEY/revoke", {}, self.key)
        _, _, third = self.daemon.request("POST", path, {"inputs": {"q": "hi"}})
        self.assertEqual((third["data"]["status"], third["data"]["error"]["error_code"]), ("failed", "SECRET_REVOKED"))
        for value in (TEAM_KEY, rotated):
            self.assertEqual(rows_containing(self.database, value), 0)
            self.assertNotIn(value, self.daemon.log_text())

    def test_what_admission_hands_a_run_follows_every_change(self):
        # Each pooled connection caches a version's routes, secrets and rules: a model switched
        # off, a safety rule added and a key secret's expiry count from the next visitor all
        # the same. Each phase asks more times than the daemon has connections.
        _, workspace, key = self.new_user("cached-routes")
        secrets = f"/api/v1/workspaces/{workspace['id']}/secrets"
        expires = psql(self.database, "select to_char((now() + interval '4 seconds') at time zone 'utc', "
                                      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
        self.ok("POST", secrets, {"name": "SHORT_KEY", "value": TEAM_KEY, "expires_at": expires}, key, status=201)
        self.ok("POST", f"/api/v1/workspaces/{workspace['id']}/llm-providers",
                {"name": "short", "base_url": self.team_provider.base_url, "api_key_secret": "SHORT_KEY",
                 "models": [model("short-model")]}, key, status=201)
        path = self.published(key, workspace, llm_app({"model": "short-model"}))

        def outcomes(times=12):
            seen = set()
            for _ in range(times):
                code, _, body = self.daemon.request("POST", path, {"inputs": {"q": "hi"}})
                self.assertEqual(code, 200, body)
                run = body["data"]
                seen.add(run["status"] if run["status"] == "completed" else run["error"]["error_code"])
            return seen

        self.team_provider.script("short-model", *[{"reply": "fine words"}] * 100)
        self.assertEqual(outcomes(), {"completed"})
        rules = f"/api/v1/workspaces/{workspace['id']}/safety-rules"
        self.ok("POST", rules, {"category": "illegal", "text": "fine words"}, key, status=201)
        self.assertEqual(outcomes(), {"AI_OUTPUT_BLOCKED"})
        self.ok("POST", "/api/v1/llm-models/short-model/disable", {"reason": "test"}, self.admin)
        try:
            self.assertEqual(outcomes(), {"LLM_MODEL_UNAVAILABLE"})
        finally:
            self.ok("POST", "/api/v1/llm-models/short-model/enable", {}, self.admin)
        self.assertEqual(outcomes(), {"AI_OUTPUT_BLOCKED"})
        # Nothing is written when the secret expires: the cached routes go stale by the clock.
        deadline = time.time() + 10
        while psql(self.database, f"select expires_at > now() from flowgres.workspace_secrets "
                                  f"where workspace_id = '{workspace['id']}'") == "t" and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(outcomes(), {"SECRET_EXPIRED"})

    def test_a_visitors_model_calls_hold_tokens_only_under_a_limit(self):
        _, workspace, key = self.new_user("visitor-quota")
        psql(self.database, f"update flowgres.workspaces set plan = 'enterprise' where id = '{workspace['id']}'")
        path = self.published(key, workspace, llm_app({"model": "m-hold", "max_tokens": 100}))
        holds = f"select count(*) from flowgres.token_holds where workspace_id = '{workspace['id']}'"

        # No tokens quota, no enforced budget: nothing to hold, so no hold is taken.
        self.provider.script("m-hold", {"reply": "ok", "first_token_delay_ms": 600})
        caller = Caller(lambda: self.daemon.request("POST", path, {"inputs": {"q": "x"}}))
        time.sleep(0.3)
        self.assertEqual(psql(self.database, holds), "0", "an unlimited workspace's call holds nothing")
        caller.join(timeout=10)
        self.assertEqual(caller.answer[2]["data"]["status"], "completed")

        # Under a quota, parallel visitors' calls are held first and the quota holds.
        used = int(psql(self.database, "select coalesce(sum(quantity), 0) from flowgres.usage_events "
                                       f"where workspace_id = '{workspace['id']}' and dimension = 'tokens'"))
        self.ok("PUT", f"/api/v1/workspaces/{workspace['id']}/quotas/tokens", {"quota": used + 350}, self.admin)
        self.provider.script("m-hold", *[{"reply": "ok", "first_token_delay_ms": 800}] * 8)
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda _: self.daemon.request("POST", path, {"inputs": {"q": "x"}}, timeout=30), range(8)))
        outcomes = [(body["data"]["status"], (body["data"].get("error") or {}).get("error_code")) for _, _, body in answers]
        self.assertEqual(outcomes.count(("completed", None)), 3, outcomes)
        self.assertEqual(outcomes.count(("failed", "QUOTA_EXCEEDED")), 5, outcomes)
        self.assertEqual(psql(self.database, holds), "0", "holds end with their runs")
        self.provider.reset()

    def test_a_visitors_hostile_prompt_is_recorded_verbatim_with_everything_its_run_left(self):
        # A visitor's run is written once, when it ends, by one statement (executions_record):
        # 100 kB of SQL, markup and quotes go through the model call and land as text, with the
        # run's usage rows, its trail and its model call.
        _, workspace, key = self.new_user("visitor-hostile")
        path = self.published(key, workspace, llm_app({"model": "m-main"}))
        hostile = "x'); drop table flowgres.model_usage; --<script>alert(1)</script>\"é" + "y" * 100000
        code, _, body = self.daemon.request("POST", path, {"inputs": {"q": hostile}}, timeout=30)
        self.assertEqual((code, body["data"]["status"]), (200, "completed"), str(body)[:300])
        self.assertEqual(body["data"]["outputs"]["out"]["text"], "Echo: " + hostile)
        run = body["data"]["execution_id"]
        stored = json.loads(psql(self.database, f"""
            select json_build_object(
                'output', (select outputs -> 'out' ->> 'text' from flowgres.executions where id = '{run}'),
                'usage', (select json_object_agg(dimension, quantity) from flowgres.usage_events where execution_id = '{run}'),
                'trail', (select jsonb_array_length(events) || '/' || jsonb_array_length(node_logs)
                          from flowgres.execution_trails where execution_id = '{run}'),
                'calls', (select count(*) from flowgres.model_usage where execution_id = '{run}' and ok))"""))
        self.assertEqual(stored["output"], "Echo: " + hostile)
        self.assertEqual(set(stored["usage"]), {"requests", "tokens", "egress"})
        self.assertEqual(stored["usage"]["requests"], 1)
        self.assertGreater(stored["usage"]["egress"], 100000)
        self.assertTrue(stored["trail"].endswith("/3"), stored["trail"])
        self.assertEqual(stored["calls"], 1)
        self.assertEqual(psql(self.database, "select to_regclass('flowgres.model_usage') is not null"), "t")

    def test_a_provider_on_loopback_needs_egress_allow(self):
        strict = Daemon(self.database, master_keys=KEYS).start()
        try:
            app = self.app_with(self.key, self.workspace, llm_app({"model": "m-main"}))
            status, _, document = strict.request("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": {"q": "x"}}, self.key)
            execution = document["data"]
            self.assertEqual(execution["status"], "failed")
            self.assertEqual(execution["error"]["error_code"], "EGRESS_DENIED")
        finally:
            strict.stop()

    def test_bad_step_configs_are_refused_at_version_creation(self):
        app = self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/apps", {"name": f"bad {time.time_ns()}"},
                      self.key, status=201)
        bad = llm_app({"model": "has space", "temperature": 3, "max_tokens": 0, "routingStrategy": "random",
                       "apiKeys": {"local": "{{secrets.K}}", "Bad Name": "x"}, "outputSchema": "not an object"})
        bad["nodes"][1]["config"]["systemPrompt"] = "{{secrets.K}}"
        document = self.fails("POST", f"/api/v1/apps/{app['id']}/versions", 422, "VALIDATION_FAILED",
                              {"version": "1.0.0", "workflow": bad}, self.key)
        fields = {problem["field"] for problem in document["data"]["details"]}
        for field in ("model", "temperature", "max_tokens", "routing_strategy", "api_keys.Bad Name", "output_schema",
                      "system_prompt"):
            self.assertIn(f"workflow.nodes[1].config.{field}", fields)
        self.assertNotIn("workflow.nodes[1].config.api_keys.local", fields, "api_keys is a credential field")


class TokenHoldsOfDeadRuns(ApiTestCase):
    """A daemon killed (-9) while its model call holds tokens: the hold counts while the run
    could still be alive, and stops counting once the maintenance worker (which watches
    flowgres_test) fails the run as abandoned."""

    database = "flowgres_test"
    reuse_database = True
    daemon_settings = {"master_keys": KEYS, "egress_allow": "127.0.0.0/8", "execution_heartbeat_interval_ms": 200,
                       "llm_first_token_timeout_ms": 60000}

    def test_a_killed_run_stops_holding_tokens(self):
        provider = Provider().start()
        try:
            name = f"kill-{time.time_ns()}"
            self.ok("POST", "/api/v1/llm-providers", {"name": name, "base_url": provider.base_url,
                                                      "models": [{"model": name}]}, self.admin, status=201)
            _, workspace, key = self.new_user("killed")
            self.ok("PUT", f"/api/v1/workspaces/{workspace['id']}/quotas/tokens", {"quota": 150}, self.admin)
            app = self.app_with(key, workspace, llm_app({"model": name, "max_tokens": 100}))
            provider.script(name, {"reply": "never seen", "first_token_delay_ms": 30000}, {"reply": "after the kill"})
            doomed = Caller(lambda: self.call("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": {"q": "x"}}, key, timeout=40))
            deadline = time.time() + 10
            while time.time() < deadline and not [r for r in provider.requests if (r["body"] or {}).get("model") == name]:
                time.sleep(0.05)
            self.assertEqual(psql(self.database, "select count(*) from flowgres.token_holds "
                                                 f"where workspace_id = '{workspace['id']}'"), "1", "the call holds its tokens")
            self.daemon.process.kill()
            self.daemon.process.wait()
            doomed.join(timeout=5)
            self.assertIsNotNone(doomed.error, "the caller's connection ended with the daemon")
            type(self).daemon = Daemon(self.database, **self.daemon_settings).start()
            refused = self.ok("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": {"q": "x"}}, key)
            self.assertEqual(refused["error"]["error_code"], "QUOTA_EXCEEDED", "while the run may be alive, its hold counts")
            deadline = time.time() + 20
            while time.time() < deadline and psql(self.database, "select count(*) from flowgres.executions "
                                                                 f"where app_id = '{app['id']}' and status = 'running'") != "0":
                time.sleep(0.2)
            later = self.ok("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": {"q": "x"}}, key)
            self.assertEqual(later["status"], "completed", later)
            abandoned = psql(self.database, "select count(*) from flowgres.executions "
                                            f"where app_id = '{app['id']}' and error ->> 'error_code' = 'EXECUTION_ABANDONED'")
            self.assertEqual(abandoned, "1")
        finally:
            provider.stop()


if __name__ == "__main__":
    main()
