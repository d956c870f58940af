#!/usr/bin/env python3
"""The public app page over HTTP (README "Public runtime"): its settings routes (public-branding,
public-seo, public-inputs) with their checks; the HTML a browser gets from the entry by
Accept, with a strict Content-Security-Policy, the SEO fields escaped and the boot data
unable to close its element; /embed framed only from the allowed origins; refusals as pages
with their status; the page's files served from memory with ETags. page_browser_test.py
drives the same page in chromium."""

import json
import re

from harness import main, psql
from runtime_test import RuntimeCase

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def boot_of(page):
    """The JSON of <script type="application/json" id="flowgres-boot">."""
    match = re.search(r'<script type="application/json" id="flowgres-boot">(.*?)</script>', page, re.S)
    assert match, page[:400]
    return json.loads(match.group(1))


class PageCase(RuntimeCase):
    """A user with a workspace, published apps on demand, and a daemon taking the test JWTs."""


class PageSettings(PageCase):
    def test_sections_merge_and_show_in_the_app_and_the_runtime(self):
        app = self.published("page-settings")
        data = self.ok("PATCH", f"/api/v1/apps/{app['id']}/public-branding",
                       {"title": "Ask <b>us</b>", "accent_color": "#0a7", "terms": {"text": "Be kind."}}, self.key)
        self.assertEqual(data["public_page"]["branding"],
                         {"title": "Ask <b>us</b>", "accent_color": "#0a7", "terms": {"text": "Be kind."}})
        data = self.ok("PATCH", f"/api/v1/apps/{app['id']}/public-branding", {"accent_color": None, "theme": "dark"}, self.key)
        self.assertEqual(data["public_page"]["branding"], {"title": "Ask <b>us</b>", "theme": "dark", "terms": {"text": "Be kind."}})
        self.ok("PATCH", f"/api/v1/apps/{app['id']}/public-seo", {"title": "Ask us", "noindex": True}, self.key)
        self.ok("PATCH", f"/api/v1/apps/{app['id']}/public-inputs",
                {"defaults": {"name": "Ada"}, "examples": [{"label": "Grace", "inputs": {"name": "Grace"}}]}, self.key)
        stored = json.loads(psql(self.database, f"select public_page from flowgres.apps where id = '{app['id']}'"))
        self.assertEqual(set(stored), {"branding", "seo", "inputs"})
        self.assertEqual(stored["inputs"]["defaults"], {"name": "Ada"})
        # Visitors get it with the entry and the schema; no new version was needed.
        code, _, entry = self.daemon.request("GET", f"/runtime/{self.ws_slug}/page-settings")
        self.assertEqual(code, 200, entry)
        self.assertEqual(entry["data"]["app"]["page"]["seo"], {"title": "Ask us", "noindex": True})
        self.assertNotIn("allowed_origins", entry["data"])
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.app_versions where app_id = '{app['id']}'"), "1")
        audit = psql(self.database, "select count(*) from flowgres.audit_logs where action = 'app.public_page_update' "
                                    f"and target_id = '{app['id']}'")
        self.assertEqual(audit, "4")

    def test_bad_settings_are_refused_field_by_field_and_change_nothing(self):
        app = self.published("bad-settings")
        self.ok("PATCH", f"/api/v1/apps/{app['id']}/public-seo", {"title": "Kept"}, self.key)
        refused = self.fails("PATCH", f"/api/v1/apps/{app['id']}/public-branding", 422, "VALIDATION_FAILED",
                             {"logo_url": "javascript:alert(1)", "accent_color": "red;background:url(x)", "onclick": "x"},
                             self.key)
        fields = sorted(problem["field"] for problem in refused["data"]["details"])
        self.assertEqual(fields, ["branding.accent_color", "branding.logo_url", "branding.onclick"])
        self.fails("PATCH", f"/api/v1/apps/{app['id']}/public-seo", 422, "VALIDATION_FAILED", {"lang": "en\"><x"}, self.key)
        self.fails("PATCH", f"/api/v1/apps/{app['id']}/public-inputs", 422, "VALIDATION_FAILED",
                   {"defaults": {"name": {"$where": "1"}}}, self.key)
        self.fails("PATCH", f"/api/v1/apps/{app['id']}/public-inputs", 422, "VALIDATION_FAILED", {}, self.key)
        self.fails("PATCH", f"/api/v1/apps/{app['id']}/public-seo", 422, "VALIDATION_FAILED",
                   raw_body=b"[1,2]", headers={"Content-Type": "application/json"}, key=self.key)
        self.fails("PATCH", f"/api/v1/apps/{app['id']}/public-seo", 422, "VALIDATION_FAILED",
                   {"description": "x" * 301}, self.key)
        stored = psql(self.database, f"select public_page::text from flowgres.apps where id = '{app['id']}'")
        self.assertEqual(json.loads(stored), {"seo": {"title": "Kept"}})

    def test_only_editors_of_the_app_may_change_it(self):
        app = self.published("guarded")
        _, _, stranger = self.new_user("stranger")
        self.fails("PATCH", f"/api/v1/apps/{app['id']}/public-seo", 404, "APP_NOT_FOUND", {"title": "Mine"}, stranger)
        self.fails("PATCH", "/api/v1/apps/00000000-0000-0000-0000-000000000000/public-seo", 404, "APP_NOT_FOUND",
                   {"title": "x"}, self.key)
        self.fails("PATCH", f"/api/v1/apps/{app['id']}/public-seo", 401, "UNAUTHENTICATED", {"title": "x"})
        self.assertEqual(psql(self.database, f"select public_page::text from flowgres.apps where id = '{app['id']}'"), "{}")


class PageServing(PageCase):
    def test_browsers_get_the_page_and_api_clients_json(self):
        app = self.published("served")
        self.ok("PATCH", f"/api/v1/apps/{app['id']}/public-seo",
                {"title": "</title><script>alert(1)</script>", "description": "A \"quoted\" <i>thing</i> & more",
                 "image_url": "https://cdn.example.com/card.png", "lang": "de"}, self.key)
        self.ok("PATCH", f"/api/v1/apps/{app['id']}/public-branding",
                {"tagline": "</script><script>alert(2)</script>\u2028", "title": "{{boot}}"}, self.key)
        code, headers, page = self.daemon.request("GET", f"/runtime/{self.ws_slug}/served", headers=BROWSER)
        self.assertEqual(code, 200, page)
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        policy = headers["content-security-policy"]
        for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
                          "require-trusted-types-for 'script'", "base-uri 'none'", "form-action 'none'"):
            self.assertIn(directive, policy)
        self.assertNotIn("unsafe", policy)
        self.assertEqual(headers["x-frame-options"], "DENY")
        self.assertEqual(headers["x-content-type-options"], "nosniff")
        self.assertEqual(headers["cache-control"], "no-store")
        # The SEO fields, escaped; no script but the page's own module.
        self.assertIn("<title>&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;</title>", page)
        self.assertIn('content="A &quot;quoted&quot; &lt;i&gt;thing&lt;/i&gt; &amp; more"', page)
        self.assertIn('<meta property="og:image" content="https://cdn.example.com/card.png">', page)
        self.assertIn('<html lang="de">', page)
        self.assertIn('<meta name="robots" content="index, follow">', page)
        self.assertEqual(len(re.findall(r"<script", page)), 2, "the module and the boot data, nothing else")
        self.assertNotIn("alert(2)</script>", page)
        boot = boot_of(page)
        self.assertEqual(boot["base"], f"/runtime/{self.ws_slug}/served")
        self.assertEqual(boot["app"]["page"]["branding"]["tagline"], "</script><script>alert(2)</script>\u2028")
        self.assertEqual(boot["app"]["page"]["branding"]["title"], "{{boot}}", "placeholders in values stay text")
        self.assertEqual(boot["session"], headers["x-app-session-id"])
        self.assertNotIn("error", boot)
        # The assets it names are served.
        for asset in re.findall(r'(?:src|href)="(/assets/[^"?]+)', page):
            code, _, _ = self.daemon.request("GET", asset)
            self.assertEqual(code, 200, asset)
        # API clients keep getting JSON from the same address.
        for accept in (None, "application/json", "*/*"):
            code, headers, entry = self.daemon.request("GET", f"/runtime/{self.ws_slug}/served",
                                                       headers={"Accept": accept} if accept else None)
            self.assertEqual(code, 200)
            self.assertEqual(headers["content-type"], "application/json")
            self.assertEqual(entry["data"]["app"]["slug"], "served")
        events = psql(self.database, f"select count(*) from flowgres.runtime_events where app_id = '{app['id']}' "
                                     "and event_type = 'runtime.entry'")
        self.assertEqual(events, "4", "the page view is an entry like any other")

    def test_embed_is_framed_only_from_allowed_origins(self):
        self.published("embedded", {"allowed_origins": ["https://partner.example", "https://*.shop.example"]})
        code, headers, page = self.daemon.request("GET", f"/runtime/{self.ws_slug}/embedded/embed")
        self.assertEqual(code, 200, page)
        self.assertIn("frame-ancestors 'self' https://partner.example https://*.shop.example;",
                      headers["content-security-policy"])
        self.assertNotIn("x-frame-options", headers)
        self.assertIn('<body class="embed">', page)
        self.assertIn('content="noindex, nofollow"', page)
        self.assertTrue(boot_of(page)["embed"])
        self.assertEqual(boot_of(page)["base"], f"/runtime/{self.ws_slug}/embedded")
        _, _, page = self.daemon.request("GET", f"/runtime/{self.ws_slug}/embedded/embed/")
        self.assertEqual(boot_of(page)["base"], f"/runtime/{self.ws_slug}/embedded", "the script's base is tidy")
        self.published("embedded-anywhere")
        _, headers, _ = self.daemon.request("GET", f"/runtime/{self.ws_slug}/embedded-anywhere/embed")
        self.assertIn("frame-ancestors 'self';", headers["content-security-policy"], "no list: this site only")
        code, headers, _ = self.daemon.request("POST", f"/runtime/{self.ws_slug}/embedded/embed", {"inputs": {}})
        self.assertEqual(code, 405)

    def test_refusals_are_pages_with_their_status_and_nothing_private(self):
        private = self.published("secret-plans", mode="private")
        self.ok("PATCH", f"/api/v1/apps/{private['id']}/public-branding",
                {"title": "Secret plans", "sign_in_url": "https://id.example/login"}, self.key)
        code, headers, page = self.daemon.request("GET", f"/runtime/{self.ws_slug}/secret-plans", headers=BROWSER)
        self.assertEqual(code, 401)
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        boot = boot_of(page)
        self.assertEqual(boot["error"]["code"], "AUTH_REQUIRED")
        self.assertEqual(boot["app"], {"page": {"branding": {"sign_in_url": "https://id.example/login"}}})
        self.assertNotIn("Secret plans", page)
        self.assertNotIn("secret-plans\"", json.dumps(boot["app"]))
        self.assertIn('content="noindex, nofollow"', page)
        code, _, page = self.daemon.request("GET", f"/runtime/{self.ws_slug}/no-such-app", headers=BROWSER)
        self.assertEqual(code, 404)
        self.assertEqual(boot_of(page)["error"]["code"], "RUNTIME_APP_NOT_FOUND")
        code, _, page = self.daemon.request("GET", "/runtime/no-such-workspace/x/embed")
        self.assertEqual(code, 404)
        self.assertEqual(boot_of(page)["error"]["code"], "RUNTIME_APP_NOT_FOUND")
        # Rate-limited visitors get the page with Retry-After, the script counts down.
        self.published("tight", {"rate_limit": {"per_ip": {"max_requests": 1, "window_seconds": 60}}})
        self.daemon.request("GET", f"/runtime/{self.ws_slug}/tight", headers=BROWSER)
        code, headers, page = self.daemon.request("GET", f"/runtime/{self.ws_slug}/tight", headers=BROWSER)
        self.assertEqual(code, 429)
        self.assertGreater(int(headers["retry-after"]), 0)
        self.assertEqual(boot_of(page)["error"]["code"], "RATE_LIMITED")

    def test_old_slugs_redirect_to_the_page(self):
        app = self.published("old-page")
        self.ok("PATCH", f"/api/v1/apps/{app['id']}", {"slug": "new-page"}, self.key)
        code, headers, _ = self.daemon.request("GET", f"/runtime/{self.ws_slug}/old-page/embed")
        self.assertEqual(code, 301)
        self.assertEqual(headers["location"], f"/runtime/{self.ws_slug}/new-page/embed")

    def test_assets_from_memory_with_etags_and_nothing_else(self):
        code, headers, body = self.daemon.request("GET", "/assets/page.js")
        self.assertEqual(code, 200)
        self.assertEqual(headers["content-type"], "text/javascript; charset=utf-8")
        self.assertIn("flowgres-boot", body)
        self.assertNotIn("innerHTML", body, "the page builds DOM nodes, never HTML")
        etag = headers["etag"]
        code, headers, _ = self.daemon.request("GET", "/assets/page.js", headers={"If-None-Match": etag})
        self.assertEqual(code, 304)
        self.assertNotIn("content-length", headers)
        self.assertEqual(self.daemon.request("GET", "/assets/page.css")[1]["content-type"], "text/css; charset=utf-8")
        for path in ("/assets/page.html", "/assets/../README.md", "/assets/%2e%2e/README.md", "/assets/",
                     "/assets/page.js/", "/assets/PAGE.JS"):
            code, _, body = self.daemon.request("GET", path)
            self.assertEqual(code, 404, path)
            self.assertEqual(body["error_code"], "NOT_FOUND")
        code, headers, _ = self.daemon.request("POST", "/assets/page.js", {})
        self.assertEqual(code, 405)
        self.assertEqual(headers["allow"], "GET, HEAD")
        for name in ("render.js", "markdown.js", "chart.js"):
            code, _, body = self.daemon.request("GET", f"/assets/{name}")
            self.assertEqual(code, 200)
            self.assertNotRegex(body, r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(")


if __name__ == "__main__":
    main()
