#!/usr/bin/env python3
"""Certificates of custom domains from a real ACME CA: Debian's pebble (RFC 8555), which
resolves names with pebble-challtestsrv (every name → 127.0.0.1) and validates HTTP-01 by
connecting to the daemon. Orders by request (and ?async=true), the account made once and kept
sealed, the challenge answered by a daemon other than the one that ordered, renewal, a failed
challenge backed off, the sweep ordering for an active domain by itself, and refusals."""

import datetime
from concurrent.futures import ThreadPoolExecutor
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from domains_test import GREETER, UI, DnsServer
from harness import PG_PORT, SOCKET_DIR, ApiTestCase, Daemon, PROVISION, free_port, fresh_database, main, psql
from page_browser_test import NPM_PREFIX, ARTIFACTS, SCRIPT, ensure_playwright
from tls_test import write_certificate

KEYS = subprocess.run([PROVISION, "keygen", "--id", "k1"], capture_output=True, text=True, check=True).stdout.strip()


def write_tls_for_pebble(directory):
    """A CA and a certificate for 127.0.0.1 / localhost, for pebble's own HTTPS."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flowgres test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                   .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                               x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .sign(ca_key, hashes.SHA256()))
    paths = {name: os.path.join(directory, name) for name in ("ca.pem", "cert.pem", "key.pem")}
    with open(paths["ca.pem"], "wb") as out:
        out.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths["cert.pem"], "wb") as out:
        out.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(paths["key.pem"], "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return paths


class Pebble:
    def __init__(self, directory, http_port, dns_port):
        self.port, self.management_port = free_port(), free_port()
        self.tls = write_tls_for_pebble(directory)
        config = {"pebble": {"listenAddress": f"127.0.0.1:{self.port}",
                             "managementListenAddress": f"127.0.0.1:{self.management_port}",
                             "certificate": self.tls["cert.pem"], "privateKey": self.tls["key.pem"],
                             "httpPort": http_port, "tlsPort": free_port(), "ocspResponderURL": "",
                             "externalAccountBindingRequired": False}}
        config_path = os.path.join(directory, "pebble.json")
        with open(config_path, "w") as out:
            json.dump(config, out)
        self.log = open(os.path.join(directory, "pebble.log"), "w")
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
        self.process = subprocess.Popen(["pebble", "-config", config_path, "-dnsserver", f"127.0.0.1:{dns_port}"],
                                        stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.directory_url = f"https://127.0.0.1:{self.port}/dir"
        context = ssl.create_default_context(cafile=self.tls["ca.pem"])
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.directory_url, context=context, timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("pebble did not start")
        # The CA pebble signs certificates with is new at every start.
        self.management_context = ssl.create_default_context(cafile=self.tls["ca.pem"])
        with urllib.request.urlopen(f"https://127.0.0.1:{self.management_port}/roots/0",
                                    context=self.management_context, timeout=5) as response:
            self.issuing_root = response.read()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


class Certificates(ApiTestCase):

    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.mkdtemp(prefix="flowgres-acme-")
        cls.dns = DnsServer()
        cls.database = "it_certificates"
        fresh_database(cls.database)
        cls.platform_cert, cls.platform_key = write_certificate(cls.workdir, "apps.flowgres.test")
        cls.tls_port = free_port()
        settings = dict(master_keys=KEYS, dns_resolver=f"127.0.0.1:{cls.dns.dns_port}",
                        domain_check_interval_ms=3_600_000, tls_port=cls.tls_port, tls_cert_file=cls.platform_cert,
                        tls_key_file=cls.platform_key, platform_host="apps.flowgres.test", hsts_max_age=600)
        cls.daemon = Daemon(cls.database, **settings)
        cls.pebble = Pebble(cls.workdir, cls.daemon.port, cls.dns.dns_port)
        cls.daemon.settings.update(acme_directory_url=cls.pebble.directory_url, acme_ca_file=cls.pebble.tls["ca.pem"],
                                   acme_email="ops@flowgres.test")
        cls.daemon.start()
        cls.admin = cls.daemon.admin_key

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        cls.pebble.stop()
        cls.dns.stop()

    def setUp(self):
        self.owner, self.workspace, self.key = self.new_user()
        psql(self.database, f"update flowgres.workspaces set plan = 'enterprise' where id = '{self.workspace['id']}'")
        self.app = self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/apps", {"name": f"app {time.time_ns()}"},
                           self.key, status=201)

    def verified_domain(self, status="verified"):
        name = f"shop-{uuid.uuid4().hex[:10]}.example.com"
        domain = self.ok("POST", f"/api/v1/apps/{self.app['id']}/domains", {"domain": name}, self.key, status=201)
        self.dns.set_txt(f"_flowgres.{name}", domain["verification"]["txt"]["value"])
        domain = self.ok("POST", f"/api/v1/domains/{domain['id']}/verify", key=self.key)
        if status == "active":
            domain = self.ok("POST", f"/api/v1/domains/{domain['id']}/activate", key=self.key)
        return domain

    def stored_certificate(self, domain_id):
        chain = psql(self.database, f"select certificate_chain from flowgres.app_domains where id = '{domain_id}'")
        blocks = [block + "-----END CERTIFICATE-----\n" for block in chain.split("-----END CERTIFICATE-----") if "BEGIN" in block]
        return [x509.load_pem_x509_certificate(block.strip().encode() + b"\n") for block in blocks]

    def test_issue_and_renew(self):
        domain = self.verified_domain()
        issued = self.ok("POST", f"/api/v1/domains/{domain['id']}/cert/issue", key=self.key, timeout=60)
        self.assertEqual(issued["ssl_status"], "issued", issued)
        self.assertIsNone(issued["ssl_last_error"])
        chain = self.stored_certificate(domain["id"])
        names = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        self.assertEqual(names, [domain["domain"]])
        self.assertIsNotNone(issued["ssl_expires_at"])
        sealed = psql(self.database, f"select certificate_key_sealed from flowgres.app_domains where id = '{domain['id']}'")
        self.assertNotIn("PRIVATE KEY", sealed, "the key is sealed, never stored in the clear")
        self.assertEqual(psql(self.database, "select count(*) from flowgres.acme_accounts"), "1")
        self.assertNotIn("PRIVATE KEY", psql(self.database, "select key_sealed from flowgres.acme_accounts"))
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.acme_challenges where domain_id = '{domain['id']}'"),
                         "0", "the answers go once the order ends")
        events = psql(self.database, f"select event_type from flowgres.runtime_events where details ->> 'domain_id' = '{domain['id']}' "
                                     f"and event_type like 'cert.%'")
        self.assertEqual(events, "cert.issued")

        self.fails("POST", f"/api/v1/domains/{domain['id']}/cert/issue", 409, "STATE_CONFLICT", key=self.key)
        first_serial = chain[0].serial_number
        renewed = self.ok("POST", f"/api/v1/apps/{self.app['id']}/domains/{domain['id']}/cert/renew", key=self.key, timeout=60)
        self.assertEqual(renewed["ssl_status"], "issued")
        self.assertNotEqual(self.stored_certificate(domain["id"])[0].serial_number, first_serial, "a new certificate")
        self.assertEqual(psql(self.database, "select count(*) from flowgres.acme_accounts"), "1", "the account is kept")

    def test_a_challenge_answered_by_another_daemon_and_async(self):
        # The CA reaches a second daemon on the port pebble validates at; the first one orders.
        domain = self.verified_domain()
        other = Daemon(self.database, master_keys=KEYS, acme_directory_url=self.pebble.directory_url,
                       acme_ca_file=self.pebble.tls["ca.pem"], domain_check_interval_ms=3_600_000)
        other.start()
        try:
            claimed = other.request("POST", f"/api/v1/domains/{domain['id']}/cert/issue?async=true", key=self.key)
            self.assertEqual((claimed[0], claimed[2]["data"]["ssl_status"]), (202, "issuing"), claimed)
            deadline = time.time() + 60
            while time.time() < deadline:
                state = self.ok("GET", f"/api/v1/domains/{domain['id']}", key=self.key)
                if state["ssl_status"] != "issuing":
                    break
                time.sleep(0.2)
            self.assertEqual(state["ssl_status"], "issued", state)
        finally:
            other.stop()

    def test_a_failed_challenge_is_backed_off(self):
        domain = self.verified_domain()
        # The name resolves to an address where no daemon listens: the CA cannot fetch the answer.
        self.dns.manage("add-a", {"host": domain["domain"] + ".", "addresses": ["127.0.0.9"]})
        failed = self.ok("POST", f"/api/v1/domains/{domain['id']}/cert/issue", key=self.key, timeout=60)
        self.assertEqual(failed["ssl_status"], "failed", failed)
        self.assertIn("challenge", failed["ssl_last_error"])
        self.assertIsNotNone(failed["ssl_next_retry_at"])
        gap = psql(self.database, f"select extract(epoch from ssl_next_retry_at - updated_at)::int "
                                  f"from flowgres.app_domains where id = '{domain['id']}'")
        self.assertEqual(gap, "300", "five minutes after the first failure")
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.runtime_events where event_type = 'cert.issue.failed' "
                                             f"and details ->> 'domain_id' = '{domain['id']}'"), "1")

    def test_the_sweep_orders_for_an_active_domain(self):
        domain = self.verified_domain("active")
        sweeper = Daemon(self.database, master_keys=KEYS, acme_directory_url=self.pebble.directory_url,
                         acme_ca_file=self.pebble.tls["ca.pem"], domain_check_interval_ms=200)
        sweeper.start()
        try:
            deadline = time.time() + 60
            while time.time() < deadline:
                state = self.ok("GET", f"/api/v1/domains/{domain['id']}", key=self.key)
                if state["ssl_status"] == "issued":
                    break
                time.sleep(0.2)
            self.assertEqual(state["ssl_status"], "issued", state)
        finally:
            sweeper.stop()

    def tls_get(self, name, path="/", cafile=None):
        """GET over HTTPS with SNI `name`, the chain verified against `cafile`: (status, body, peer cert)."""
        context = ssl.create_default_context(cafile=cafile)
        raw = socket.create_connection(("127.0.0.1", self.tls_port), timeout=10)
        with context.wrap_socket(raw, server_hostname=name) as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
            peer = tls.getpeercert()
        return int(answer.split(b" ", 2)[1]), answer.split(b"\r\n\r\n", 1)[1], peer

    def loads(self, metric="flowgres_tls_certificate_loads_total"):
        metrics = self.daemon.request("GET", "/metrics")[2]
        return int(next(line.split()[1] for line in metrics.splitlines() if line.startswith(metric + " ")))

    def test_the_https_listener_presents_the_domain_certificate(self):
        slug = f"tls-{uuid.uuid4().hex[:8]}"
        app = self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/apps", {"name": slug, "slug": slug}, self.key, status=201)
        version = self.ok("POST", f"/api/v1/apps/{app['id']}/versions", {"version": "1.0.0", "workflow": GREETER, "ui_schema": UI},
                          self.key, status=201)
        self.ok("POST", f"/api/v1/apps/{app['id']}/publish",
                {"version_id": version["id"], "access_policy": {"access_mode": "public_anonymous"}}, self.key)
        self.app = app
        domain = self.verified_domain("active")
        name = domain["domain"]
        roots = os.path.join(self.workdir, "pebble-root.pem")
        with open(roots, "wb") as out:
            out.write(self.pebble.issuing_root)
        with self.assertRaises(ssl.SSLError, msg="no certificate yet: the name is refused at the handshake"):
            self.tls_get(name, cafile=roots)
        self.ok("POST", f"/api/v1/domains/{domain['id']}/cert/issue", key=self.key, timeout=60)
        # The issue was announced (NOTIFY): the refusal is forgotten, the certificate read once.
        deadline = time.time() + 5
        while True:
            try:
                status, body, peer = self.tls_get(name, cafile=roots)
                break
            except ssl.SSLError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(json.loads(body)["data"]["app"]["id"], app["id"], "the app, over HTTPS at its own name")
        self.assertIn(("DNS", name), peer["subjectAltName"])
        status, _, _ = self.tls_get("apps.flowgres.test", "/health", cafile=self.platform_cert)
        self.assertEqual(status, 200, "the platform's name keeps the platform's certificate")
        curl = subprocess.run(["curl", "-s", "--cacert", roots, "--resolve", f"{name}:{self.tls_port}:127.0.0.1",
                               f"https://{name}:{self.tls_port}/schema"], capture_output=True, timeout=30)
        self.assertEqual(curl.returncode, 0, curl.stderr)

        # The page in Debian's chromium, over HTTPS at the domain's own name: filled, submitted,
        # answered. (The chain is verified by curl and Python above; chromium does not know
        # pebble's CA, so its errors are ignored here.)
        ensure_playwright()
        plan = {"viewport": {"width": 1024, "height": 800}, "host_rules": f"MAP {name} 127.0.0.1",
                "ignore_https_errors": True,
                "steps": [{"goto": f"https://{name}:{self.tls_port}/"}, {"wait": "#run"}, {"fill": ["Name", "Tls"]},
                          {"click": "#run"}, {"wait_text": ["#result", "hello Tls"]}, {"text": "#result"},
                          {"eval": "location.protocol"}]}
        run = subprocess.run(["node", SCRIPT, json.dumps(plan)], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "NPM_PREFIX": NPM_PREFIX, "ARTIFACTS_DIR": ARTIFACTS})
        self.assertEqual(run.returncode, 0, run.stderr)
        report = json.loads(run.stdout.strip().splitlines()[-1])
        self.assertNotIn("error", report, report.get("error"))
        self.assertEqual(report["page_errors"], [])
        self.assertIn("hello Tls", report["results"][5])
        self.assertEqual(report["results"][6], "https:")

        # Plain HTTP to the domain now goes to HTTPS (ACME's answers excepted); HTTPS answers say HSTS.
        status, headers, _ = self.daemon.request("GET", "/schema?x=1", headers={"Host": name})
        self.assertEqual((status, headers.get("location")), (308, f"https://{name}:{self.tls_port}/schema?x=1"))
        line = self.daemon.raw(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode()).split(b"\r\n")[0]
        self.assertEqual(line, b"HTTP/1.1 308 Permanent Redirect")
        status, _, _ = self.daemon.request("GET", "/.well-known/acme-challenge/none", headers={"Host": name})
        self.assertEqual(status, 404)
        self.assertNotIn("strict-transport-security", self.daemon.request("GET", "/health")[1])
        raw = socket.create_connection(("127.0.0.1", self.tls_port), timeout=10)
        with ssl.create_default_context(cafile=roots).wrap_socket(raw, server_hostname=name) as tls:
            tls.sendall(f"GET /schema HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
        self.assertIn(b"\r\nStrict-Transport-Security: max-age=600\r\n", answer)

        before, refused = self.loads(), self.loads("flowgres_tls_names_refused_total")
        for _ in range(30):
            self.tls_get(name, "/health", cafile=roots)
        # A storm of made-up names, each new, and of one name again and again: all refused from
        # the list of names the daemon read, none read from the database.
        unknown = f"nobody-{uuid.uuid4().hex[:8]}.example.com"
        for index in range(60):
            with self.assertRaises(ssl.SSLError):
                self.tls_get(unknown if index % 2 else f"made-up-{index}-{uuid.uuid4().hex[:8]}.example.com", cafile=roots)
        self.assertEqual(self.loads() - before, 0, "no name was read: none is on the list")
        self.assertEqual(self.loads("flowgres_tls_names_refused_total") - refused, 60)
        # Notifications lost (the LISTEN connections cut): the list is read again once the
        # connection is back, so nothing announced meanwhile is missed.
        lists = self.loads("flowgres_tls_domain_list_loads_total")
        self.assertGreaterEqual(lists, 1)
        psql(self.database, "select pg_terminate_backend(pid) from pg_stat_activity "
                            "where query like 'LISTEN%flowgres_domains%'")
        deadline = time.time() + 10
        while self.loads("flowgres_tls_domain_list_loads_total") == lists and time.time() < deadline:
            time.sleep(0.2)
        self.assertGreater(self.loads("flowgres_tls_domain_list_loads_total"), lists)
        self.assertEqual(self.tls_get(name, "/health", cafile=roots)[0], 200)

        # A read of the certificate that fails (its backend killed while it waits) refuses that
        # handshake and keeps the name listed: answered again 5 s later, not 10 minutes later.
        psql(self.database, f"select pg_notify('flowgres_domains', '{name}')")  # read again at the next handshake
        holder = subprocess.Popen(["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", self.database, "-c",
                                   "begin; lock table flowgres.app_domains in access exclusive mode; select pg_sleep(2)"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            with ThreadPoolExecutor(1) as pool:
                waiting = pool.submit(self.tls_get, name, "/health", cafile=roots)
                killed, deadline = "0", time.time() + 5
                while killed == "0" and time.time() < deadline:
                    time.sleep(0.05)
                    killed = psql(self.database, "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                                                 "where query like '%app_domain_tls(%' and wait_event_type = 'Lock'")
                self.assertEqual(killed, "1", "the read waited behind the lock")
                with self.assertRaises(ssl.SSLError):
                    waiting.result(timeout=10)
        finally:
            holder.wait(timeout=10)
        self.assertEqual(self.eventually_tls_status(name, roots, within=10), 200)

        self.ok("POST", f"/api/v1/domains/{domain['id']}/block", {"reason": "abuse"}, self.admin)
        deadline = time.time() + 5
        refused = False
        while not refused and time.time() < deadline:
            try:
                self.tls_get(name, cafile=roots)
                time.sleep(0.1)
            except ssl.SSLError:
                refused = True
        self.assertTrue(refused, "a blocked name is refused at the handshake, at once")
        s_client = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.tls_port}", "-servername", name],
                                  input=b"", capture_output=True, timeout=10)
        self.assertIn(b"unrecognized name", s_client.stdout + s_client.stderr)

        # Unblocked, it is answered again; deleted, refused again: each at the next handshake.
        self.ok("POST", f"/api/v1/domains/{domain['id']}/unblock", {"reason": "cleared"}, self.admin)
        self.assertEqual(self.eventually_tls_status(name, roots), 200)
        self.assertEqual(self.call("DELETE", f"/api/v1/domains/{domain['id']}", key=self.key)[0], 200)
        self.assertIsNone(self.eventually_tls_status(name, roots, refused=True), "a deleted name is refused")

    def eventually_tls_status(self, name, roots, refused=False, within=5):
        """The status of GET /health at `name` once its handshake succeeds (or, with `refused`,
        None once it is refused), within 5 s: an announcement reaches the listener at once,
        but not within the request that made it."""
        deadline = time.time() + within
        while True:
            try:
                status = self.tls_get(name, "/health", cafile=roots)[0]
                if not refused:
                    return status
            except ssl.SSLError:
                if refused:
                    return None
            if time.time() > deadline:
                self.fail(f"{name} was {'still answered' if refused else 'still refused'} after {within} s")
            time.sleep(0.1)

    def test_parallel_orders_of_one_certificate(self):
        domain = self.verified_domain()
        with ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(lambda _: self.call("POST", f"/api/v1/domains/{domain['id']}/cert/issue", key=self.key,
                                                      timeout=60)[0], range(10)))
        self.assertEqual(sorted(codes), [200] + [409] * 9, "one order at a time: the claim")
        self.assertEqual(psql(self.database, f"select ssl_status, ssl_claimed_by is null from flowgres.app_domains "
                                             f"where id = '{domain['id']}'"), "issued|t")
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.acme_challenges where domain_id = '{domain['id']}'"), "0")
        self.assertEqual(psql(self.database, "select count(*) from flowgres.acme_accounts"), "1")

    def test_a_daemon_killed_mid_order(self):
        domain = self.verified_domain()
        ordering = Daemon(self.database, master_keys=KEYS, acme_directory_url=self.pebble.directory_url,
                          acme_ca_file=self.pebble.tls["ca.pem"], domain_check_interval_ms=3_600_000).start()
        status, _, _ = ordering.request("POST", f"/api/v1/domains/{domain['id']}/cert/issue?async=true", key=self.key)
        self.assertEqual(status, 202)
        ordering.process.kill()  # kill -9 while the order is under way (or just done)
        ordering.process.wait()
        ordering.stop()
        state = psql(self.database, f"select ssl_status from flowgres.app_domains where id = '{domain['id']}'")
        self.assertIn(state, ("issuing", "issued"))
        # The dead daemon's claim runs out (its 5-minute lease, brought forward here); the sweep
        # of a living daemon takes the domain up again.
        psql(self.database, f"update flowgres.app_domains set ssl_claimed_until = now() - interval '1 second', "
                            f"ssl_expires_at = case when ssl_status = 'issued' then now() + interval '1 day' end "
                            f"where id = '{domain['id']}'")
        sweeper = Daemon(self.database, master_keys=KEYS, acme_directory_url=self.pebble.directory_url,
                         acme_ca_file=self.pebble.tls["ca.pem"], domain_check_interval_ms=200).start()
        try:
            fresh = (f"select ssl_status = 'issued' and ssl_expires_at > now() + interval '30 days' "
                     f"from flowgres.app_domains where id = '{domain['id']}'")
            deadline = time.time() + 60
            while time.time() < deadline and psql(self.database, fresh) != "t":
                time.sleep(0.2)
            self.assertEqual(psql(self.database, fresh), "t", "a full certificate, ordered again by the living daemon")
        finally:
            sweeper.stop()
        self.assertEqual(psql(self.database, "select count(*) from flowgres.acme_accounts"), "1", "one account, whoever ordered")

    def test_refusals(self):
        pending = self.ok("POST", f"/api/v1/apps/{self.app['id']}/domains", {"domain": f"p{uuid.uuid4().hex[:8]}.example.com"},
                          self.key, status=201)
        self.fails("POST", f"/api/v1/domains/{pending['id']}/cert/issue", 409, "STATE_CONFLICT", key=self.key)
        _, _, outsider_key = self.new_user()
        self.fails("POST", f"/api/v1/domains/{pending['id']}/cert/issue", 404, "DOMAIN_NOT_FOUND", key=outsider_key)
        unconfigured = Daemon(self.database).start()
        try:
            status, _, body = unconfigured.request("POST", f"/api/v1/domains/{pending['id']}/cert/issue", key=self.key)
            self.assertEqual((status, body["error_code"]), (503, "ACME_NOT_CONFIGURED"))
        finally:
            unconfigured.stop()
        for token in ["nothing", "../../etc/passwd", "a" * 300, "'; drop table flowgres.acme_challenges; --"]:
            status, _, _ = self.daemon.request("GET", "/.well-known/acme-challenge/" + urllib.request.quote(token, safe=""))
            self.assertEqual(status, 404, token)
        self.assertEqual(self.daemon.request("GET", "/health")[0], 200)


if __name__ == "__main__":
    main()
