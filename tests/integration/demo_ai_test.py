#!/usr/bin/env python3
"""make run's AI app (scripts/demo_llm.sh): offline, the bundled test provider is started and
registered under a model id that says it is not a model, and the demo app "ask" (the seed §52
example) answers visitors through it; with FLOWGRES_LLM_BASE_URL, FLOWGRES_LLM_API_KEY and
FLOWGRES_LLM_MODELS the named provider is registered instead, its key sealed by the daemon.
Running the script again changes nothing."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from harness import PG_PORT, PROVISION, ROOT, SOCKET_DIR, Daemon, free_port, fresh_database, main, open_sealed, psql
from llm_provider import Provider

SCRIPT = os.path.join(ROOT, "scripts", "demo_llm.sh")


class DemoAiApp(unittest.TestCase):
    database = "flowgres_demo_ai"

    @classmethod
    def setUpClass(cls):
        fresh_database(cls.database)
        subprocess.run(["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", cls.database, "-qX", "-v",
                        "ON_ERROR_STOP=1", "-f", os.path.join(ROOT, "scripts", "demo.sql")],
                       check=True, capture_output=True, timeout=60)
        cls.keys = subprocess.run([PROVISION, "keygen", "--id", "demo1"], capture_output=True, text=True, check=True).stdout.strip()
        cls.state = tempfile.mkdtemp(prefix="flowgres-demo-ai-")
        cls.daemon = Daemon(cls.database, master_keys=cls.keys, egress_allow="127.0.0.1/32").start()
        cls.control = f"host={SOCKET_DIR} port={PG_PORT} user=postgres dbname={cls.database}"
        cls.llm_port = free_port()

    @classmethod
    def tearDownClass(cls):
        pid_file = os.path.join(cls.state, "llm_provider.pid")
        if os.path.exists(pid_file):
            try:
                os.kill(int(open(pid_file).read()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        cls.daemon.stop()
        shutil.rmtree(cls.state, ignore_errors=True)

    def demo_llm(self, **environment):
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWGRES_LLM_")}
        env.update(environment)
        return subprocess.run([SCRIPT, self.control, f"http://127.0.0.1:{self.daemon.port}", self.daemon.admin_key,
                               self.state, str(self.llm_port)], capture_output=True, text=True, timeout=120, env=env)

    def test_a_offline_the_bundled_provider_answers_the_demo_app(self):
        first = self.demo_llm()
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertIn("bundled test provider (not a model", first.stdout)
        self.assertIn("demo AI app 'ask' published (model local-echo-not-a-model)", first.stdout)
        code, _, document = self.daemon.request("POST", "/runtime/demo/ask", {"inputs": {"prompt": "flowgres hosts apps"}})
        self.assertEqual((code, document["data"]["status"]), (200, "completed"), document)
        self.assertIn("flowgres hosts apps", document["data"]["outputs"]["output"])
        # The gateway key it made calls the same provider through /v1, paid by the demo workspace.
        self.assertIn("gateway key for workspace 'demo'", first.stdout)
        gateway_key = open(os.path.join(self.state, "gateway_key")).read().strip()
        self.assertEqual(oct(os.stat(os.path.join(self.state, "gateway_key")).st_mode & 0o777), "0o600")
        code, _, answer = self.daemon.request("POST", "/v1/chat/completions", {
            "model": "local-echo-not-a-model", "messages": [{"role": "user", "content": "Hello"}]}, key=gateway_key)
        self.assertEqual(code, 200, answer)
        self.assertIn("Hello", answer["choices"][0]["message"]["content"])
        again = self.demo_llm()
        self.assertEqual((again.returncode, again.stdout), (0, ""), again.stderr)
        self.assertEqual(psql(self.database, "select count(*) from flowgres.api_keys where 'llm:execute' = any (scopes)"), "1")
        self.assertEqual(psql(self.database, "select count(*) from flowgres.apps where slug = 'ask'"), "1")

    def test_b_a_configured_provider_is_registered_with_its_key_sealed(self):
        provider = Provider(api_key="sk-configured-0123456789abcdef").start()
        try:
            run = self.demo_llm(FLOWGRES_LLM_BASE_URL=provider.base_url, FLOWGRES_LLM_API_KEY="sk-configured-0123456789abcdef",
                                FLOWGRES_LLM_MODELS="model-a,model-b")
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertIn("model provider 'configured' registered", run.stdout)
            document = self.daemon.request("GET", "/api/v1/llm-providers/configured", None, self.daemon.admin_key)[2]["data"]
            self.assertEqual([m["model"] for m in document["models"]], ["model-a", "model-b"])
            self.assertTrue(document["has_api_key"])
            sealed = psql(self.database, "select sealed_api_key from flowgres.llm_providers where name = 'configured'")
            self.assertEqual(open_sealed(self.keys, sealed, "platform_llm_provider:configured"), "sk-configured-0123456789abcdef")
            again = self.demo_llm(FLOWGRES_LLM_BASE_URL=provider.base_url, FLOWGRES_LLM_API_KEY="sk-configured-rotated-key-1",
                                  FLOWGRES_LLM_MODELS="model-a")
            self.assertEqual(again.returncode, 0, again.stderr)
            sealed = psql(self.database, "select sealed_api_key from flowgres.llm_providers where name = 'configured'")
            self.assertEqual(open_sealed(self.keys, sealed, "platform_llm_provider:configured"), "sk-configured-rotated-key-1")
        finally:
            provider.stop()


if __name__ == "__main__":
    main()
