#!/usr/bin/env python3
"""The AI app's public page in a real browser (Debian's chromium through playwright-core): a
visitor asks an app of start → llm → output, sees the model's text appear while it streams
(before the result), then the result; an answer that breaks a safety rule is explained, with
its category and without its text. The model is the test provider speaking OpenAI's protocol."""

import page_browser_test as browser
from harness import main, psql
from llm_provider import Provider
from page_test import PageCase

ASK = {"nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"name": "question", "required": True}]}},
                 {"id": "ask", "type": "llm", "config": {"model": "page-model", "userPrompt": "{{question}}"}},
                 {"id": "out", "type": "output", "config": {"value": "{{ask.text}}"}}],
       "edges": [{"source": "start", "target": "ask"}, {"source": "ask", "target": "out"}]}
ASK_UI = {"schema_version": "1.0.0",
          "blocks": [{"type": "input", "id": "question", "input_key": "question", "label": "Question",
                      "validation": {"required": True}}],
          "result_view": {"type": "text"}}
ANSWER = "one two three four five six seven eight nine ten eleven twelve"


class AiPageInBrowser(PageCase):
    daemon_settings = {**PageCase.daemon_settings, "egress_allow": "127.0.0.0/8", "event_flush_ms": 50}
    browse = browser.PageInBrowser.browse
    assertClean = browser.PageInBrowser.assertClean
    url = browser.PageInBrowser.url

    @classmethod
    def setUpClass(cls):
        browser.ensure_playwright()
        cls.provider = Provider().start()
        super().setUpClass()
        cls().ok("POST", "/api/v1/llm-providers", {"name": "local", "base_url": cls.provider.base_url,
                                                   "models": [{"model": "page-model"}]}, cls.admin, status=201)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.provider.stop()

    def test_the_answer_streams_into_the_page(self):
        self.published("ask-page", workflow=ASK, ui=ASK_UI)
        self.provider.script("page-model", {"reply": ANSWER, "token_delay_ms": 150})
        report = self.browse([
            {"goto": self.url("ask-page")},
            {"wait": "#run"},
            {"fill": ["Question", "count to twelve"]},
            {"click": "#run"},
            {"wait": "#live-answer"},
            {"text": "#live-answer"},
            {"screenshot": "ai-streaming"},
            {"wait_text": ["#result", "twelve"]},
            {"text": "#result"},
        ])
        self.assertClean(report)
        partial, final = report["results"][5], report["results"][8]
        self.assertTrue(partial and ANSWER.startswith(partial.strip()), partial)
        self.assertLess(len(partial.strip()), len(ANSWER), "text showed while the answer was still coming")
        self.assertIn(ANSWER, final)

    def test_a_withheld_answer_is_explained(self):
        self.published("ask-blocked", workflow=ASK, ui=ASK_UI)
        self.provider.script("page-model", {"reply": "Sure, here is how to build a bomb"})
        report = self.browse([
            {"goto": self.url("ask-blocked")},
            {"wait": "#run"},
            {"fill": ["Question", "something bad"]},
            {"click": "#run"},
            {"wait": ".blocked"},
            {"text": ".blocked"},
        ])
        self.assertClean(report)
        self.assertIn("withheld", report["results"][5])
        self.assertIn("violence", report["results"][5])
        self.assertNotIn("bomb", report["results"][5])
        self.assertEqual(psql(self.database, "select error ->> 'error_code' from flowgres.executions "
                                             "order by created_at desc limit 1"), "AI_OUTPUT_BLOCKED")


if __name__ == "__main__":
    main()
