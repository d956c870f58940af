#!/usr/bin/env python3
"""Custom domains through the real daemon, database and a real DNS server: Debian's
pebble-challtestsrv answers TXT and CNAME questions as its management API sets them, and the
daemon (dns_resolver) asks it with c-ares. Binding over HTTP, checks by request (and
?async=true) and by the background sweep, failures with backoff, a DNS server that fails,
activation and rollback, the operator's block, the nested routes, many parallel binds,
activations and checks, and hostile input."""

import json
import os
import subprocess
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

from harness import ApiTestCase, Daemon, free_port, fresh_database, main, psql

PLATFORM_HOST = "apps.flowgres.test"
GREETER = {"nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"name": "name", "required": True}]}},
                     {"id": "greet", "type": "transform", "config": {"template": {"greeting": "hello {{name}}"}}},
                     {"id": "out", "type": "output", "config": {"value": "{{greet.greeting}}"}}],
           "edges": [{"source": "start", "target": "greet"}, {"source": "greet", "target": "out"}]}
UI = {"schema_version": "1.0.0", "blocks": [{"type": "form", "children": [
    {"type": "input", "id": "name", "input_key": "name", "label": "Name", "validation": {"required": True}}]}]}


class DnsServer:
    """pebble-challtestsrv as a DNS server only (no challenge listeners)."""

    def __init__(self):
        self.dns_port = free_port()
        self.management_port = free_port()
        self.process = subprocess.Popen(
            ["pebble-challtestsrv", "-management", f"127.0.0.1:{self.management_port}",
             "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "", "-https01", "", "-tlsalpn01", "",
             "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                self.manage("set-default-ipv4", {"ip": "127.0.0.1"})
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("pebble-challtestsrv did not start")

    def manage(self, action, body):
        request = urllib.request.Request(f"http://127.0.0.1:{self.management_port}/{action}",
                                         data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status

    def set_txt(self, name, value):
        self.manage("set-txt", {"host": name + ".", "value": value})

    def set_cname(self, name, target):
        self.manage("set-cname", {"host": name + ".", "target": target + "."})

    def set_servfail(self, name):
        self.manage("set-servfail", {"host": name + "."})

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


class Domains(ApiTestCase):

    @classmethod
    def setUpClass(cls):
        cls.dns = DnsServer()
        cls.database = "it_domains"
        fresh_database(cls.database)
        # Settings the daemon's sessions read (the cluster is shared by every test).
        psql(cls.database, f"alter database {cls.database} set flowgres.platform_hosts = '{PLATFORM_HOST}, flowgres.test'")
        psql(cls.database, f"alter database {cls.database} set flowgres.domain_verify_attempts = 3")
        psql(cls.database, f"alter database {cls.database} set flowgres.domain_support_url = 'https://help.flowgres.test/dns'")
        # This daemon's sweep never comes round during a test (it would race the checks the tests
        # ask for); the sweep's own test starts a second daemon whose sweep does.
        cls.daemon = Daemon(cls.database, dns_resolver=f"127.0.0.1:{cls.dns.dns_port}", dns_timeout_ms=2000,
                            domain_check_interval_ms=3_600_000, platform_host=PLATFORM_HOST,
                            trusted_proxies="127.0.0.2/32").start()
        cls.admin = cls.daemon.admin_key

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        cls.dns.stop()

    def setUp(self):
        self.owner, self.workspace, self.key = self.new_user()
        psql(self.database, f"update flowgres.workspaces set plan = 'enterprise' where id = '{self.workspace['id']}'")
        self.app = self.new_app()

    def new_app(self):
        return self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/apps", {"name": f"app {time.time_ns()}"},
                       self.key, status=201)

    def bind(self, name, app=None):
        return self.ok("POST", f"/api/v1/apps/{(app or self.app)['id']}/domains", {"domain": name}, self.key, status=201)

    def unique_name(self, prefix="shop"):
        return f"{prefix}-{uuid.uuid4().hex[:10]}.example.com"

    def test_bind_and_verify_by_txt_and_by_cname(self):
        name = self.unique_name()
        domain = self.bind(name)
        self.assertEqual((domain["domain"], domain["status"]), (name, "pending"))
        txt = domain["verification"]["txt"]
        self.assertEqual(txt["name"], f"_flowgres.{name}")
        self.assertEqual(domain["verification"]["cname"]["value"], PLATFORM_HOST)

        failed = self.ok("POST", f"/api/v1/domains/{domain['id']}/verify", key=self.key)
        self.assertEqual(failed["status"], "failed")
        self.assertIn(f"no TXT record at _flowgres.{name}", failed["last_error"])
        self.assertIn(f"{name} has no CNAME record", failed["last_error"])
        self.assertIsNotNone(failed["next_retry_at"])

        self.dns.set_txt(f"_flowgres.{name}", "not the token")
        wrong = self.ok("POST", f"/api/v1/apps/{self.app['id']}/domains/{domain['id']}/verify", key=self.key)
        self.assertIn("do not hold the token", wrong["last_error"])
        self.dns.set_txt(f"_flowgres.{name}", txt["value"])
        verified = self.ok("POST", f"/api/v1/domains/{domain['id']}/verify", key=self.key)
        self.assertEqual((verified["status"], verified["verified_by"], verified["last_error"]), ("verified", "txt", None))
        self.fails("POST", f"/api/v1/domains/{domain['id']}/verify", 409, "STATE_CONFLICT", key=self.key)

        by_cname = self.bind(self.unique_name("www"))
        self.dns.set_cname(by_cname["domain"], PLATFORM_HOST.upper())
        self.assertEqual(self.ok("POST", f"/api/v1/domains/{by_cname['id']}/verify", key=self.key)["verified_by"], "cname")
        elsewhere = self.bind(self.unique_name("else"))
        self.dns.set_cname(elsewhere["domain"], "other.host.test")
        self.assertIn(f"is a CNAME to other.host.test, not to {PLATFORM_HOST}",
                      self.ok("POST", f"/api/v1/domains/{elsewhere['id']}/verify", key=self.key)["last_error"])

        events = psql(self.database, f"select event_type, count(*) from flowgres.runtime_events where app_id = '{self.app['id']}' "
                                     f"and event_type like 'domain.%' group by 1 order by 1").split()
        self.assertEqual(events, ["domain.verified|2", "domain.verify.failed|3"])
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.audit_logs where target_id = '{domain['id']}' "
                                             f"and action = 'domain.verify'"), "3")

    def test_a_failing_dns_server_is_a_failed_check_with_backoff(self):
        name = self.unique_name("broken")
        domain = self.bind(name)
        self.dns.set_servfail(f"_flowgres.{name}")
        self.dns.set_servfail(name)
        failed = self.ok("POST", f"/api/v1/domains/{domain['id']}/verify", key=self.key)
        self.assertEqual(failed["status"], "failed")
        self.assertIn("the DNS server did not answer", failed["last_error"])
        for _ in range(2):  # the third failure reaches flowgres.domain_verify_attempts
            failed = self.ok("POST", f"/api/v1/domains/{domain['id']}/verify", key=self.key)
        self.assertEqual((failed["verify_attempts"], failed["support_url"]), (3, "https://help.flowgres.test/dns"))
        gap = psql(self.database, f"select extract(epoch from next_retry_at - updated_at)::int from flowgres.app_domains "
                                  f"where id = '{domain['id']}'")
        self.assertEqual(gap, "240")  # 1, 2, then 4 minutes
        self.assertEqual(self.daemon.request("GET", "/health")[0], 200)

    def test_async_check_and_the_background_sweep(self):
        sweeper = Daemon(self.database, dns_resolver=f"127.0.0.1:{self.dns.dns_port}", dns_timeout_ms=2000,
                         domain_check_interval_ms=200).start()
        try:
            self.check_async_and_sweep()
        finally:
            sweeper.stop()

    def check_async_and_sweep(self):
        name = self.unique_name("async")
        domain = self.bind(name)
        # The sweep checks a new domain at once: nothing in DNS yet, so it fails and backs off.
        self.assertEqual(self.wait_for_status(domain, "failed"), "failed")
        self.assertEqual(psql(self.database, f"select action, actor_user_id is null from flowgres.audit_logs "
                                             f"where target_id = '{domain['id']}' and action = 'domain.verify'"),
                         "domain.verify|t")  # the sweep acts as the operator
        self.dns.set_txt(f"_flowgres.{name}", domain["verification"]["txt"]["value"])
        claimed = self.ok("POST", f"/api/v1/domains/{domain['id']}/verify?async=true", key=self.key, status=202)
        self.assertEqual(claimed["status"], "verifying")
        self.assertEqual(self.wait_for_status(domain, "verified"), "verified")

        later = self.bind(self.unique_name("later"))
        self.assertEqual(self.wait_for_status(later, "failed"), "failed")
        self.dns.set_txt(f"_flowgres.{later['domain']}", later["verification"]["txt"]["value"])
        psql(self.database, f"update flowgres.app_domains set next_retry_at = now() where id = '{later['id']}'")
        self.assertEqual(self.wait_for_status(later, "verified"), "verified",
                         "the sweep checks a domain again once its retry time has come")

    def test_a_check_whose_daemon_died_is_taken_up(self):
        name = self.unique_name("dead")
        domain = self.bind(name)
        self.dns.set_txt(f"_flowgres.{name}", domain["verification"]["txt"]["value"])
        # A daemon claimed the check (a lease of 1 s here; 60 s in life) and was killed -9.
        psql(self.database, f"select flowgres.app_domain_verify_begin('{domain['id']}', 'dead-daemon', null, 1)")
        self.fails("POST", f"/api/v1/domains/{domain['id']}/verify", 409, "STATE_CONFLICT", key=self.key)
        time.sleep(1.2)
        sweeper = Daemon(self.database, dns_resolver=f"127.0.0.1:{self.dns.dns_port}", dns_timeout_ms=2000,
                         domain_check_interval_ms=200).start()
        try:
            self.assertEqual(self.wait_for_status(domain, "verified"), "verified", "the claim ran out; the sweep checks it")
        finally:
            sweeper.stop()

    def wait_for_status(self, domain, status, seconds=10):
        """The domain's status once it is `status`, or whatever it is after `seconds`."""
        deadline = time.time() + seconds
        while True:
            now = self.ok("GET", f"/api/v1/domains/{domain['id']}", key=self.key)["status"]
            if now == status or time.time() >= deadline:
                return now
            time.sleep(0.05)

    def verified(self, app=None):
        domain = self.bind(self.unique_name("v"), app)
        self.dns.set_txt(f"_flowgres.{domain['domain']}", domain["verification"]["txt"]["value"])
        return self.ok("POST", f"/api/v1/domains/{domain['id']}/verify", key=self.key)

    def test_activation_rollback_block_and_delete(self):
        first, second = self.verified(), self.verified()
        path = f"/api/v1/apps/{self.app['id']}/domains"
        self.assertEqual(self.ok("POST", f"{path}/{first['id']}/activate", key=self.key)["status"], "active")
        self.assertEqual(self.ok("POST", f"/api/v1/domains/{second['id']}/activate", key=self.key)["replaced_domain_id"],
                         first["id"])
        listed = self.ok("GET", f"{path}?status=active", key=self.key)
        self.assertEqual([d["id"] for d in listed["items"]], [second["id"]])
        rolled = self.ok("POST", f"{path}/{second['id']}/rollback", key=self.key)
        self.assertEqual((rolled["domain"]["status"], rolled["restored"]["id"]), ("verified", first["id"]))

        other_app = self.new_app()
        self.fails("POST", f"/api/v1/apps/{other_app['id']}/domains/{first['id']}/activate", 404, "DOMAIN_NOT_FOUND",
                   key=self.key)
        self.fails("POST", f"/api/v1/domains/{first['id']}/block", 403, "PERMISSION_DENIED", {"reason": "x"}, self.key)
        blocked = self.ok("POST", f"/api/v1/domains/{first['id']}/block", {"reason": "phishing <b>reports</b>"}, self.admin)
        self.assertEqual((blocked["status"], blocked["blocked_reason"]), ("blocked", "phishing <b>reports</b>"))
        self.fails("DELETE", f"/api/v1/domains/{first['id']}", 409, "STATE_CONFLICT", key=self.key)
        self.fails("POST", f"/api/v1/apps/{other_app['id']}/domains", 409, "DOMAIN_TAKEN", {"domain": first["domain"]},
                   self.key)
        self.assertEqual(self.ok("POST", f"/api/v1/domains/{first['id']}/unblock", {"reason": "cleared"}, self.admin)["status"],
                         "active")
        self.ok("DELETE", f"{path}/{second['id']}", key=self.key)
        self.fails("GET", f"/api/v1/domains/{second['id']}", 404, "DOMAIN_NOT_FOUND", key=self.key)
        _, _, outsider_key = self.new_user()
        self.fails("GET", f"/api/v1/domains/{first['id']}", 404, "DOMAIN_NOT_FOUND", key=outsider_key)
        self.fails("POST", f"/api/v1/domains/{first['id']}/verify", 404, "DOMAIN_NOT_FOUND", key=outsider_key)

    def test_parallel_binds_activations_and_checks(self):
        name = self.unique_name("race")
        apps = [self.new_app() for _ in range(8)]
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda i: self.call("POST", f"/api/v1/apps/{apps[i % 8]['id']}/domains",
                                                      {"domain": name}, self.key)[0], range(16)))
        self.assertEqual(sorted(codes), [201] + [409] * 15, "one app gets a name bound by many at once")

        names = [self.unique_name(f"n{i}") for i in range(26)]
        with ThreadPoolExecutor(26) as pool:
            codes = list(pool.map(lambda n: self.call("POST", f"/api/v1/apps/{self.app['id']}/domains", {"domain": n},
                                                      self.key)[0], names))
        self.assertEqual((codes.count(201), codes.count(403)), (20, 6), "an app binds 20 domains at most, however fast")
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.app_domains where app_id = '{self.app['id']}'"), "20")

        app = self.new_app()
        domains = [self.verified(app) for _ in range(6)]
        with ThreadPoolExecutor(12) as pool:
            codes = list(pool.map(lambda i: self.call("POST", f"/api/v1/domains/{domains[i % 6]['id']}/activate",
                                                      key=self.key)[0], range(12)))
        self.assertEqual(set(codes) - {200, 409}, set(), codes)
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.app_domains where app_id = '{app['id']}' "
                                             f"and status = 'active'"), "1")

        pending = self.bind(self.unique_name("claim"), app)
        with ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(lambda _: self.call("POST", f"/api/v1/domains/{pending['id']}/verify", key=self.key)[0],
                                  range(10)))
        self.assertEqual(set(codes) - {200, 409}, set(), codes)
        self.assertGreaterEqual(codes.count(200), 1)
        attempts = int(psql(self.database, f"select verify_attempts from flowgres.app_domains where id = '{pending['id']}'"))
        self.assertEqual(attempts, codes.count(200), "each check that ran was counted once; the others were refused")

    def published_app(self):
        slug = f"greeter-{uuid.uuid4().hex[:8]}"
        app = self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/apps", {"name": slug, "slug": slug}, self.key,
                      status=201)
        version = self.ok("POST", f"/api/v1/apps/{app['id']}/versions", {"version": "1.0.0", "workflow": GREETER,
                                                                          "ui_schema": UI}, self.key, status=201)
        self.ok("POST", f"/api/v1/apps/{app['id']}/publish",
                {"version_id": version["id"], "access_policy": {"access_mode": "public_anonymous"}}, self.key)
        return app

    def at(self, host, method, path, body=None, headers=None):
        return self.daemon.request(method, path, body=body, headers={"Host": host, **(headers or {})})

    def test_visitors_reach_the_app_at_its_active_domain(self):
        app = self.published_app()
        domain = self.verified(app)
        host = domain["domain"]
        status, _, refused = self.at(host, "GET", "/")
        self.assertEqual((status, refused["error_code"]), (404, "RUNTIME_APP_NOT_FOUND"), "verified is not active")
        self.ok("POST", f"/api/v1/domains/{domain['id']}/activate", key=self.key)

        status, _, entry = self.at(host.upper() + ":8080", "GET", "/")
        self.assertEqual(status, 200, entry)
        self.assertEqual(entry["data"]["app"]["id"], app["id"])
        status, _, schema = self.at(host, "GET", "/schema")
        self.assertEqual(status, 200, schema)
        status, headers, run = self.at(host, "POST", "/", {"inputs": {"name": "Ada"}})
        self.assertEqual((status, run["data"]["outputs"]), (200, {"out": "hello Ada"}), run)
        status, _, execution = self.at(host, "GET", f"/executions/{run['data']['execution_id']}",
                                       headers={"X-App-Session-Id": headers["x-app-session-id"]})
        self.assertEqual((status, execution["data"]["status"]), (200, "completed"), execution)
        self.assertEqual(psql(self.database, f"select app_id from flowgres.executions where id = '{run['data']['execution_id']}'"),
                         app["id"], "the run is the app's, recorded as any visitor's")
        status, headers, page = self.at(host, "GET", "/", headers={"Accept": "text/html"})
        self.assertEqual((status, headers["content-type"].split(";")[0]), (200, "text/html"))
        self.assertIn('"base":""', page.replace(" ", ""), "the page calls its own domain's root")
        status, _, missing = self.at(host, "GET", "/nothing/here")
        self.assertEqual(status, 404, missing)
        # The management API stays the API at any host; the platform's host is never an app's.
        self.assertEqual(self.at(host, "GET", "/api/v1/error-codes")[0], 401)
        self.assertEqual(self.at(PLATFORM_HOST, "GET", "/")[0], 404)
        self.assertEqual(self.at(f"x.{PLATFORM_HOST}", "GET", "/")[2]["error_code"], "NOT_FOUND")
        self.assertEqual(self.at("unknown-" + host, "GET", "/")[2]["error_code"], "RUNTIME_APP_NOT_FOUND")

        blocked = self.ok("POST", f"/api/v1/domains/{domain['id']}/block", {"reason": "abuse"}, self.admin)
        self.assertEqual(blocked["status"], "blocked")
        status, _, refused = self.at(host, "POST", "/", {"inputs": {"name": "Ada"}})
        self.assertEqual((status, refused["error_code"]), (403, "DOMAIN_BLOCKED"), "a block takes effect at once")
        self.ok("POST", f"/api/v1/domains/{domain['id']}/unblock", {"reason": "ok"}, self.admin)
        self.assertEqual(self.at(host, "GET", "/")[0], 200)
        self.ok("POST", f"/api/v1/domains/{domain['id']}/rollback", key=self.key)
        self.assertEqual(self.at(host, "GET", "/")[0], 404, "a rolled-back domain routes nowhere")

    def test_the_host_from_a_trusted_proxy(self):
        app = self.published_app()
        domain = self.verified(app)
        self.ok("POST", f"/api/v1/domains/{domain['id']}/activate", key=self.key)
        # From 127.0.0.1, not a trusted proxy here: X-Forwarded-Host and Forwarded are ignored.
        status, _, _ = self.at("127.0.0.1", "GET", "/", headers={"X-Forwarded-Host": domain["domain"]})
        self.assertEqual(status, 404)
        status, _, _ = self.at("127.0.0.1", "GET", "/", headers={"Forwarded": f'host="{domain["domain"]}"'})
        self.assertEqual(status, 404)
        proxied = Daemon(self.database, platform_host=PLATFORM_HOST, trusted_proxies="127.0.0.1/32").start()
        try:
            status, _, entry = proxied.request("GET", "/", headers={"Host": "127.0.0.1",
                                                                   "X-Forwarded-Host": f"evil.test, {domain['domain']}"})
            self.assertEqual((status, entry["data"]["app"]["id"]), (200, app["id"]), "the nearest proxy's value counts")
            status, _, entry = proxied.request("GET", "/", headers={"Host": "127.0.0.1",
                                                                   "Forwarded": f'for=1.2.3.4;host=evil.test, for=5.6.7.8;host="{domain["domain"]}"'})
            self.assertEqual(status, 200, entry)
        finally:
            proxied.stop()

    def test_hostile_input(self):
        path = f"/api/v1/apps/{self.app['id']}/domains"
        for value in ["", "a" * 100_000, "x'; drop table flowgres.app_domains; --", "<script>alert(1)</script>.com",
                      "../../etc/passwd", "1.2.3.4", "[::1]", "*.example.com", "example.com:443", "http://example.com",
                      "exa\u0000mple.com", "😀.example.com", "a..b.com", "é" * 300, "localhost", PLATFORM_HOST,
                      f"x.{PLATFORM_HOST}"]:
            code, _, document = self.call("POST", path, {"domain": value}, self.key)
            self.assertIn(code, (400, 422), (value[:40], document))
            self.assertIn(document["error_code"], ("VALIDATION_FAILED", "BAD_REQUEST", "DOMAIN_PLATFORM_HOST"), document)
        for value in [None, 5, ["a.com"], {"a": 1}, True]:
            code, _, document = self.call("POST", path, {"domain": value}, self.key)
            self.assertEqual((code, document["error_code"]), (422, "VALIDATION_FAILED"), (value, document))
        self.fails("POST", path, 422, "VALIDATION_FAILED", {}, self.key)
        self.fails("GET", "/api/v1/domains/not-a-uuid", 404, "NOT_FOUND", key=self.key)
        self.fails("POST", "/api/v1/domains/..%2f..%2fetc/verify", 404, "NOT_FOUND", key=self.key)
        self.fails("GET", f"/api/v1/domains/{uuid.uuid4()}", 404, "DOMAIN_NOT_FOUND", key=self.key)
        self.fails("GET", f"{path}?status=" + "x" * 100, 422, "VALIDATION_FAILED", key=self.key)
        self.fails("GET", f"{path}?colour=red", 422, "VALIDATION_FAILED", key=self.key)
        domain = self.bind(self.unique_name("h"))
        for reason in ["", "r" * 501]:
            self.fails("POST", f"/api/v1/domains/{domain['id']}/block", 422, "VALIDATION_FAILED", {"reason": reason},
                       self.admin)
        for host in ["", "a" * 400, "evil.com/x", "[::1]", "x'; drop table flowgres.apps; --", "<b>.com", "é" * 200,
                     "shop.example.com:99999", "..", "0.0.0.0"]:
            answer = self.daemon.raw(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            self.assertRegex(answer.decode(errors="replace").split("\r\n")[0], r"^HTTP/1.1 (400|404) ", host[:40])
        self.assertEqual(self.daemon.request("GET", "/health")[0], 200)
        self.assertEqual(psql(self.database, "select count(*) from flowgres.app_domains where domain !~ '^[a-z0-9.-]+$'"), "0")


if __name__ == "__main__":
    main()
