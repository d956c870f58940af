#!/usr/bin/env python3
"""The public app page in a real browser: Debian's chromium driven by npm playwright-core
(page_browser.cjs). A visitor fills and submits the form and sees the result; a script
payload shows as text and never runs; markdown, tables and SVG charts render; the rate-limit
message counts down; the terms prompt is remembered; client-side checks stop a bad submit
before the network; the page fits a phone; the embed page loads in a frame of an allowed
origin only. No page error, dialog or CSP violation happens in any of them. Screenshots are
kept in build/test-artifacts/page/."""

import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import ROOT, free_port, main, psql
from page_test import PageCase
from runtime_test import claims, jwt

NPM_PREFIX = os.path.join(ROOT, "build", "npm")
ARTIFACTS = os.path.join(ROOT, "build", "test-artifacts", "page")
SCRIPT = os.path.join(ROOT, "tests", "integration", "page_browser.cjs")
PAYLOAD = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'

ECHO = {"nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"name": "text", "required": True}]}},
                  {"id": "t", "type": "transform", "config": {"template": {"md": "{{text}}"}}},
                  {"id": "out", "type": "output", "config": {"value": "{{t.md}}"}}],
        "edges": [{"source": "start", "target": "t"}, {"source": "t", "target": "out"}]}
MARKDOWN_UI = {"schema_version": "1.0.0",
               "blocks": [{"type": "input", "id": "text", "label": "Text", "props": {"multiline": True},
                           "validation": {"required": True}}],
               "result_view": {"type": "markdown", "props": {"content": "### Answer\n\n{{out}}"}}}
ROWS = [{"city": "Oslo", "visits": 3}, {"city": "Lima", "visits": 7}, {"city": "Pune", "visits": 5}]
CHART = {"nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"name": "topic"}]}},
                   {"id": "t", "type": "transform", "config": {"template": {"rows": ROWS}}},
                   {"id": "rows", "type": "output", "config": {"value": "{{t.rows}}"}}],
         "edges": [{"source": "start", "target": "t"}, {"source": "t", "target": "rows"}]}
CHART_UI = {"schema_version": "1.0.0",
            "blocks": [{"type": "select", "id": "topic", "label": "Topic", "props": {"options": ["cities", "towns"]}},
                       {"type": "table", "id": "numbers", "label": "The numbers", "props": {"source": "rows"}}],
            "result_view": {"type": "chart", "props": {"source": "rows", "x": "city", "y": "visits"}}}


def ensure_playwright():
    if not os.path.isdir(os.path.join(NPM_PREFIX, "node_modules", "playwright-core")):
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NPM_PREFIX, "playwright-core@1"],
                       check=True, capture_output=True, timeout=300)


class PageInBrowser(PageCase):
    @classmethod
    def setUpClass(cls):
        ensure_playwright()
        super().setUpClass()

    def browse(self, steps, viewport=None, host_rules=None):
        plan = {"steps": steps, "viewport": viewport or {"width": 1024, "height": 800}}
        if host_rules:
            plan["host_rules"] = host_rules
        run = subprocess.run(["node", SCRIPT, json.dumps(plan)], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "NPM_PREFIX": NPM_PREFIX, "ARTIFACTS_DIR": ARTIFACTS})
        self.assertEqual(run.returncode, 0, run.stderr)
        return json.loads(run.stdout.strip().splitlines()[-1])

    def assertClean(self, report):
        """Nothing broke: no script error, no alert, no CSP violation, no error in the steps."""
        self.assertNotIn("error", report, report.get("error"))
        self.assertEqual(report["page_errors"], [])
        self.assertEqual(report["violations"], [])
        self.assertEqual(report["dialogs"], 0)

    def url(self, slug, suffix=""):
        return f"http://127.0.0.1:{self.daemon.port}/runtime/{self.ws_slug}/{slug}{suffix}"

    def test_fill_submit_and_see_the_result(self):
        app = self.published("hello-page")
        self.ok("PATCH", f"/api/v1/apps/{app['id']}/public-branding",
                {"title": "Say hello", "tagline": "Greets anyone", "accent_color": "#8250df", "submit_label": "Greet"},
                self.key)
        self.ok("PATCH", f"/api/v1/apps/{app['id']}/public-inputs",
                {"defaults": {"name": "Ada"}, "examples": [{"label": "Grace", "inputs": {"name": "Grace"}}]}, self.key)
        report = self.browse([
            {"goto": self.url("hello-page")},
            {"wait": "#run"},
            {"text": "h1"},
            {"eval": "document.querySelector('input[name=name]').value"},
            {"text": "#run"},
            {"eval": "getComputedStyle(document.querySelector('#run')).backgroundColor"},
            {"click": "#run"},
            {"wait": "#result"},
            {"text": "#result"},
            {"screenshot": "result"},
            {"click": ".examples .chip"},
            {"click": "#run"},
            {"wait_text": ["#result", "hello Grace"]},
            {"text": "#result"},
        ])
        self.assertClean(report)
        self.assertEqual(report["results"][2], "Say hello")
        self.assertEqual(report["results"][3], "Ada", "the input default is filled in")
        self.assertEqual(report["results"][4], "Greet")
        self.assertEqual(report["results"][5], "rgb(130, 80, 223)", "the accent colour applies")
        self.assertIn("hello Ada", report["results"][8])
        self.assertIn("hello Grace", report["results"][13], "the example fills the form")
        runs = psql(self.database, f"select count(*) from flowgres.executions where app_id = '{app['id']}' and status = 'completed'")
        self.assertEqual(runs, "2")
        self.assertIn(f"GET /runtime/{self.ws_slug}/hello-page/schema", report["requests"])
        self.assertTrue(any(r.startswith(f"GET /runtime/{self.ws_slug}/hello-page/executions/") and r.endswith("/events")
                            for r in report["requests"]), "progress comes over the event stream")

    def test_the_page_at_a_custom_domain(self):
        app = self.published("domain-page")
        domain = self.ok("POST", f"/api/v1/apps/{app['id']}/domains", {"domain": "hello.shop.test"}, self.key, status=201)
        # Proven in DNS elsewhere (domains_test.py): here the browser is the point.
        psql(self.database, f"update flowgres.app_domains set status = 'verified' where id = '{domain['id']}'")
        self.ok("POST", f"/api/v1/domains/{domain['id']}/activate", key=self.key)
        report = self.browse([
            {"goto": f"http://hello.shop.test:{self.daemon.port}/"},
            {"wait": "#run"},
            {"fill": ["Name", "Lin"]},
            {"click": "#run"},
            {"wait_text": ["#result", "hello Lin"]},
            {"text": "#result"},
            {"eval": "location.pathname"},
            {"screenshot": "custom-domain"},
        ], host_rules="MAP hello.shop.test 127.0.0.1")
        self.assertClean(report)
        self.assertIn("hello Lin", report["results"][5])
        self.assertEqual(report["results"][6], "/")
        self.assertIn("GET /schema", report["requests"])
        self.assertIn("POST /", report["requests"])
        self.assertTrue(any(r.startswith("GET /executions/") and r.endswith("/events") for r in report["requests"]),
                        report["requests"])
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.executions where app_id = '{app['id']}' "
                                             f"and status = 'completed'"), "1")

    def test_a_script_payload_shows_as_text_and_never_runs(self):
        hostile_ui = {"schema_version": "1.0.0", "blocks": [
            {"type": "markdown", "id": "intro", "props": {"content": "Hi <script>window.__pwned=7</script> **there**"}},
            {"type": "form", "label": "<svg onload=window.__pwned=8>", "children": [
                {"type": "input", "id": "name", "input_key": "name", "label": "Name <img src=x onerror=window.__pwned=6>",
                 "props": {"placeholder": "\"><script>window.__pwned=9</script>"}, "validation": {"required": True}}]}]}
        app = self.published("xss-page", ui=hostile_ui)
        self.ok("PATCH", f"/api/v1/apps/{app['id']}/public-branding",
                {"title": "<img src=x onerror=\"window.__pwned=3\">", "tagline": "<script>window.__pwned=4</script>",
                 "anonymous_notice": "<b onmouseover=\"window.__pwned=5\">notice</b>"}, self.key)
        report = self.browse([
            {"goto": self.url("xss-page")},
            {"wait": "#run"},
            {"fill": ["Name", PAYLOAD[:100]]},
            {"click": "#run"},
            {"wait": "#result"},
            {"text": "#result"},
            {"text": "h1"},
            {"text": ".tagline"},
            {"eval": "window.__pwned === undefined"},
            {"count": "main img, main script, main svg, #result b, .notices b"},
            {"screenshot": "script-payload"},
            {"text": "label"},
            {"text": "legend"},
            {"text": ".block-markdown"},
        ])
        self.assertClean(report)
        self.assertIn("hello " + PAYLOAD[:100], report["results"][5])
        self.assertEqual(report["results"][6], '<img src=x onerror="window.__pwned=3">')
        self.assertEqual(report["results"][7], "<script>window.__pwned=4</script>")
        self.assertTrue(report["results"][8], "no payload ran")
        self.assertEqual(report["results"][9], 0, "no element came from text")
        self.assertIn("Name <img src=x onerror=window.__pwned=6>", report["results"][11], "UI schema labels are text")
        self.assertEqual(report["results"][12], "<svg onload=window.__pwned=8>")
        self.assertIn("<script>window.__pwned=7</script>", report["results"][13])

    def test_markdown_answers_render_escaped(self):
        self.published("markdown-page", workflow=ECHO, ui=MARKDOWN_UI)
        answer = ("**bold** and `code` <script>window.__pwned=1</script>\n\n- one\n- two\n\n"
                  "[safe](https://example.com/a) [unsafe](javascript:window.__pwned=2)")
        report = self.browse([
            {"goto": self.url("markdown-page")},
            {"wait": "#run"},
            {"fill": ["Text", answer]},
            {"click": "#run"},
            {"wait": "#result .markdown"},
            {"eval": """(() => { const r = document.querySelector('#result .markdown');
                return {h4: r.querySelectorAll('h4').length, strong: r.querySelectorAll('strong').length,
                        code: r.querySelectorAll('code').length, items: r.querySelectorAll('li').length,
                        scripts: r.querySelectorAll('script').length,
                        links: [...r.querySelectorAll('a')].map(a => a.href), text: r.textContent}; })()"""},
            {"click": "#result a"},
            {"eval": "window.__pwned === undefined"},
            {"screenshot": "markdown"},
        ])
        self.assertClean(report)
        shown = report["results"][5]
        self.assertEqual((shown["h4"], shown["strong"], shown["code"], shown["items"], shown["scripts"]), (1, 1, 1, 2, 0))
        self.assertEqual(shown["links"], ["https://example.com/a"], "only http(s) links become links")
        self.assertIn("<script>window.__pwned=1</script>", shown["text"])
        self.assertIn("[unsafe](javascript:window.__pwned=2)", shown["text"])
        self.assertTrue(report["results"][7])

    def test_tables_and_svg_charts(self):
        self.published("chart-page", workflow=CHART, ui=CHART_UI)
        report = self.browse([
            {"goto": self.url("chart-page")},
            {"wait": "#run"},
            {"count": "select[name=topic] option"},
            {"click": "#run"},
            {"wait": "#result svg.chart"},
            {"count": "#result svg.chart rect.mark"},
            {"eval": "[...document.querySelectorAll('#result svg.chart text')].map(t => t.textContent).slice(-3)"},
            {"count": ".block-table tbody tr"},
            {"text": ".block-table thead"},
            {"screenshot": "chart"},
        ])
        self.assertClean(report)
        self.assertEqual(report["results"][2], 3, "two options and the empty choice")
        self.assertEqual(report["results"][5], 3, "a bar per row")
        self.assertEqual(report["results"][6], ["Oslo", "Lima", "Pune"])
        self.assertEqual(report["results"][7], 3, "the table block shows the same rows")
        self.assertIn("visits", report["results"][8])

    def test_rate_limit_message_counts_down(self):
        # The page view, the schema, the run, its stream and its end use five; the next run is refused.
        self.published("tight-page", {"rate_limit": {"per_ip": {"max_requests": 5, "window_seconds": 60}}})
        if time.time() % 60 > 40:  # windows align to the minute: start in a fresh one
            time.sleep(61 - time.time() % 60)
        report = self.browse([
            {"goto": self.url("tight-page")},
            {"wait": "#run"},
            {"fill": ["Name", "Ada"]},
            {"click": "#run"},
            {"wait": "#result"},
            {"click": "#run"},
            {"wait": ".status-wait .countdown"},
            {"text": ".status-wait .countdown"},
            {"eval": "document.querySelector('#run').disabled"},
            {"screenshot": "rate-limited"},
            {"eval": "new Promise(r => setTimeout(r, 2100))"},
            {"text": ".status-wait .countdown"},
        ])
        self.assertClean(report)
        first, later = report["results"][7], report["results"][11]
        self.assertRegex(first, r"faster than this app allows\. Try again in \d+ s\.")
        self.assertTrue(report["results"][8], "the button waits for the countdown")
        seconds = lambda text: int(text.rsplit("in ", 1)[1].split(" ")[0])
        self.assertLess(seconds(later), seconds(first), "it counts down")
        refused = psql(self.database, "select count(*) from flowgres.runtime_events where event_type = 'runtime.rate_limited' "
                                      f"and app_id = (select id from flowgres.apps where slug = 'tight-page')")
        self.assertEqual(refused, "1")

    def test_terms_are_asked_once_and_remembered(self):
        app = self.published("terms-page")
        self.ok("PATCH", f"/api/v1/apps/{app['id']}/public-branding",
                {"terms": {"text": "Use kindly.\nNo spam.", "url": "https://example.com/terms"},
                 "privacy": {"text": "Inputs are kept 30 days."}}, self.key)
        report = self.browse([
            {"goto": self.url("terms-page")},
            {"wait": "#terms-accept"},
            {"eval": "document.querySelector('form.run-form').inert"},
            {"text": ".terms-text"},
            {"text": ".notice-privacy"},
            {"screenshot": "terms"},
            {"click": "#terms-accept"},
            {"eval": "document.querySelector('form.run-form').inert"},
            {"reload": True},
            {"wait": "#run"},
            {"count": ".terms"},
        ])
        self.assertClean(report)
        self.assertTrue(report["results"][2], "the form waits for the terms")
        self.assertEqual(report["results"][3], "Use kindly.\nNo spam.")
        self.assertIn("Inputs are kept 30 days.", report["results"][4])
        self.assertFalse(report["results"][7])
        self.assertEqual(report["results"][10], 0, "accepted terms are not asked again")

    def test_client_side_checks_stop_a_bad_submit(self):
        self.published("checked-page")
        report = self.browse([
            {"goto": self.url("checked-page")},
            {"wait": "#run"},
            {"click": "#run"},
            {"wait": ".field-error:not(:empty)"},
            {"text": ".field-error"},
            {"fill": ["Name", "x" * 101]},
            {"click": "#run"},
            {"wait_text": [".field-error", "at most"]},
            {"text": ".field-error"},
            {"eval": "document.activeElement.name"},
        ])
        self.assertClean(report)
        self.assertEqual(report["results"][4], "is required", "the server's words")
        self.assertEqual(report["results"][8], "must be at most 100 characters")
        self.assertEqual(report["results"][9], "name", "the field with the problem has the focus")
        self.assertFalse([r for r in report["requests"] if r.startswith("POST")], "nothing was sent")

    def test_sign_in_required_then_signed_in_by_the_returned_token(self):
        app = self.published("members-page", mode="public_auth")
        self.ok("PATCH", f"/api/v1/apps/{app['id']}/public-branding", {"sign_in_url": "https://id.example/login"}, self.key)
        token = jwt(claims("visitor-42", self.ws_slug))
        forged = jwt(claims("someone-else", self.ws_slug))
        report = self.browse([
            # A token another site linked here with, no state or a made-up one: not taken.
            {"goto": self.url("members-page") + "#access_token=" + forged},
            {"wait": ".status-error"},
            {"goto": self.url("members-page") + "#access_token=" + forged + "&state=guessed"},
            {"wait": ".status-error"},
            {"count": "#run"},
            {"goto": self.url("members-page")},
            {"wait": ".status-error"},
            {"text": ".status-error"},
            {"eval": "document.querySelector('.status-error a').href"},
            {"count": "#run"},
            {"eval": "new URL(document.querySelector('.status-error a').href).searchParams.get('state')"},
            {"goto": "about:blank"},  # back from the provider: a new navigation
            {"goto_with_state": self.url("members-page") + "#access_token=" + token + "&state="},
            {"wait": "#run"},
            {"eval": "location.hash"},
            {"fill": ["Name", "Ada"]},
            {"click": "#run"},
            {"wait": "#result"},
            {"text": "#result"},
        ])
        self.assertClean(report)
        self.assertEqual(report["results"][4], 0, "a token without the tab's own state signs nobody in")
        self.assertIn("Sign in to use this app.", report["results"][7])
        self.assertTrue(report["results"][8].startswith("https://id.example/login?return_to=http%3A%2F%2F127.0.0.1"))
        self.assertEqual(report["results"][9], 0, "no form before signing in")
        self.assertRegex(report["results"][10], r"^[0-9a-f]{32}$", "the link carries a fresh state")
        self.assertEqual(report["results"][14], "", "the token leaves the address bar")
        self.assertIn("hello Ada", report["results"][18])
        subject = psql(self.database, "select s.subject from flowgres.executions e join flowgres.app_sessions s on s.id = e.session_id "
                                      f"where e.app_id = '{app['id']}'")
        self.assertEqual(subject, "visitor-42", "the run belongs to the signed-in visitor")

    def test_fits_a_phone(self):
        app = self.published("phone-page")
        self.ok("PATCH", f"/api/v1/apps/{app['id']}/public-branding",
                {"title": "A rather long title that has to wrap on a narrow screen without overflowing"}, self.key)
        report = self.browse([
            {"goto": self.url("phone-page")},
            {"wait": "#run"},
            {"fill": ["Name", "W" * 100]},
            {"click": "#run"},
            {"wait": "#result"},
            {"eval": "document.documentElement.scrollWidth"},
            {"eval": "document.querySelector('#run').getBoundingClientRect().width"},
            {"screenshot": "phone"},
        ], viewport={"width": 375, "height": 740})
        self.assertClean(report)
        self.assertLessEqual(report["results"][5], 375, "no horizontal scrolling")
        self.assertGreater(report["results"][6], 40, "the button is big enough to tap")

    def test_embed_loads_only_in_allowed_origins(self):
        host_port = free_port()
        frame_url = self.url("embed-page", "/embed")

        class Host(BaseHTTPRequestHandler):
            def do_GET(self):
                body = f'<!doctype html><title>host</title><iframe src="{frame_url}" width="600" height="500"></iframe>'.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        host = ThreadingHTTPServer(("127.0.0.1", host_port), Host)
        threading.Thread(target=host.serve_forever, daemon=True).start()
        try:
            self.published("embed-page", {"allowed_origins": [f"http://127.0.0.1:{host_port}"]})
            # localhost is another origin than 127.0.0.1 (same server, different host).
            allowed = self.browse([{"goto": f"http://127.0.0.1:{host_port}/"}, {"frame_text": ["/embed", "h1"]},
                                   {"screenshot": "embedded"}])
            self.assertClean(allowed)
            self.assertEqual(allowed["results"][1], "embed-page")
            refused = self.browse([{"goto": f"http://localhost:{host_port}/"}, {"frame_text": ["/embed", "h1"]}])
            self.assertIn("error", refused, "a frame from an origin not listed is blocked")
        finally:
            host.shutdown()


if __name__ == "__main__":
    main()
