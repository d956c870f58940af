#!/usr/bin/env python3
"""The test model provider (llm_provider.py) against the official OpenAI client from npm: plain
and streamed completions with the usage chunk, the models list, scripted errors with their
statuses, a wrong key, and a stream cut mid-way. flowgresd's own LLM tests rely on this
provider; this test is what makes it a faithful stand-in for the real wire protocol."""

import json
import os
import subprocess
import unittest

from harness import ROOT, main
from llm_provider import Provider

NPM_PREFIX = os.path.join(ROOT, "build", "npm")
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openai_client.cjs")


def ensure_openai_client():
    if not os.path.isdir(os.path.join(NPM_PREFIX, "node_modules", "openai")):
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NPM_PREFIX, "openai@7"],
                       check=True, capture_output=True, timeout=300)


class ProviderSpeaksOpenAI(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ensure_openai_client()
        cls.provider = Provider(api_key="sk-test-key").start()

    @classmethod
    def tearDownClass(cls):
        cls.provider.stop()

    def client(self, *calls, key="sk-test-key"):
        plan = {"baseURL": self.provider.base_url, "apiKey": key, "calls": list(calls)}
        run = subprocess.run(["node", SCRIPT, json.dumps(plan)], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "NPM_PREFIX": NPM_PREFIX})
        self.assertEqual(run.returncode, 0, run.stderr)
        return json.loads(run.stdout)

    def test_plain_and_streamed_completions_with_usage(self):
        self.provider.script("m1", {"reply": "hello there world"}, {"reply": "one two three", "token_delay_ms": 5})
        messages = [{"role": "user", "content": "say hello"}]
        plain, streamed = self.client({"kind": "create", "request": {"model": "m1", "messages": messages}},
                                      {"kind": "stream", "request": {"model": "m1", "messages": messages,
                                                                     "stream_options": {"include_usage": True}}})
        self.assertEqual(plain["content"], "hello there world")
        self.assertEqual(plain["usage"]["completion_tokens"], 3)
        self.assertEqual(plain["finish"], "stop")
        self.assertEqual(streamed["deltas"], ["one", " two", " three"])
        self.assertEqual(streamed["usage"]["completion_tokens"], 3)
        self.assertEqual(streamed["usage"]["total_tokens"],
                         streamed["usage"]["prompt_tokens"] + streamed["usage"]["completion_tokens"])
        sent = self.provider.requests[-1]
        self.assertEqual(sent["headers"]["authorization"], "Bearer sk-test-key")
        self.assertTrue(sent["body"]["stream"])

    def test_default_reply_fits_the_requested_schema(self):
        schema = {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}
        [result] = self.client({"kind": "create", "request": {
            "model": "flowgres-local-echo", "messages": [{"role": "user", "content": "a long text"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}}})
        self.assertEqual(json.loads(result["content"]), {"summary": "a long text"})

    def test_errors_wrong_key_and_a_cut_stream(self):
        self.provider.script("m2", {"status": 429, "retry_after": 2}, {"status": 500}, {"reply": "a b c d", "cut_after_tokens": 2})
        messages = [{"role": "user", "content": "x"}]
        limited, failed, cut = self.client({"kind": "create", "request": {"model": "m2", "messages": messages}},
                                           {"kind": "create", "request": {"model": "m2", "messages": messages}},
                                           {"kind": "stream", "request": {"model": "m2", "messages": messages}})
        self.assertEqual((limited["ok"], limited["status"]), (False, 429))
        self.assertEqual((failed["ok"], failed["status"]), (False, 500))
        self.assertFalse(cut["ok"], cut)
        [unauthorized] = self.client({"kind": "create", "request": {"model": "m2", "messages": messages}}, key="wrong")
        self.assertEqual(unauthorized["status"], 401)

    def test_models_list(self):
        self.provider.script("listed-model", {"reply": "x"})
        [listed] = self.client({"kind": "models"})
        self.assertIn("listed-model", listed["models"])
        self.assertIn("flowgres-local-echo", listed["models"])


if __name__ == "__main__":
    main()
