#!/usr/bin/env python3
"""The HTTPS listener (tls_port) with the platform's certificate: requests over TLS with the
name verified (Python's ssl and curl), TLS 1.2 and 1.3 served and older versions refused,
sessions resumed, keep-alive and large bodies both ways, bytes that are not TLS closed without
harm, hostile server names refused from memory, and start-up refusing a listener without a usable certificate."""

import datetime
import json
import os
import socket
import ssl
import struct
import subprocess
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness import DAEMON, ApiTestCase, Daemon, free_port, main

HOST = "apps.flowgres.test"


def write_certificate(directory, name):
    """A self-signed certificate for `name` and its key: (cert path, key path)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(directory, f"{name}.pem"), os.path.join(directory, f"{name}.key")
    with open(cert_path, "wb") as out:
        out.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return cert_path, key_path


class Https(ApiTestCase):

    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.mkdtemp(prefix="flowgres-tls-")
        cls.cert, cls.key_file = write_certificate(cls.directory, HOST)
        cls.tls_port = free_port()
        cls.daemon_settings = {"tls_port": cls.tls_port, "tls_cert_file": cls.cert, "tls_key_file": cls.key_file,
                               "platform_host": HOST}
        super().setUpClass()

    def context(self, **versions):
        context = ssl.create_default_context(cafile=self.cert)
        for name, value in versions.items():
            setattr(context, name, value)
        return context

    def https(self, method, path, body=b"", context=None, session=None, headers=None):
        """One request over a new TLS connection: (status, body bytes, the TLS socket's facts)."""
        raw = socket.create_connection(("127.0.0.1", self.tls_port), timeout=10)
        with (context or self.context()).wrap_socket(raw, server_hostname=HOST, session=session) as tls:
            head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
            for name, value in (headers or {}).items():
                head += f"{name}: {value}\r\n"
            tls.sendall(head.encode() + b"\r\n" + body)
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
            facts = {"version": tls.version(), "session": tls.session, "reused": tls.session_reused}
        status = int(answer.split(b" ", 2)[1])
        return status, answer.split(b"\r\n\r\n", 1)[1], facts

    def test_requests_over_tls_with_the_name_verified(self):
        status, body, facts = self.https("GET", "/health")
        self.assertEqual((status, json.loads(body)["data"]["status"]), (200, "ok"))
        self.assertEqual(facts["version"], "TLSv1.3")
        curl = subprocess.run(["curl", "-s", "--cacert", self.cert, "--resolve", f"{HOST}:{self.tls_port}:127.0.0.1",
                               f"https://{HOST}:{self.tls_port}/openapi.json"], capture_output=True, timeout=30)
        self.assertGreater(len(curl.stdout), 100_000, "a large answer arrives whole")
        self.assertEqual(json.loads(curl.stdout)["openapi"][:2], "3.")
        # A large request body, and the management API as on the plain port.
        user, workspace, key = self.new_user()
        big = json.dumps({"workflow": {"nodes": [], "edges": []}, "padding": "x" * 500_000}).encode()
        status, body, _ = self.https("POST", "/api/v1/workflows/validate", big,
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        self.assertIn(status, (200, 422), body[:200])
        status, body, _ = self.https("GET", f"/api/v1/workspaces/{workspace['id']}",
                                     headers={"Authorization": f"Bearer {key}"})
        self.assertEqual((status, json.loads(body)["data"]["id"]), (200, workspace["id"]))

    def test_versions_and_resumption(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            _, _, facts = self.https("GET", "/health", context=self.context(minimum_version=version, maximum_version=version))
            self.assertEqual(facts["version"], version.name.replace("v1_", "v1."))
        old = self.context()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # what the test offers, on purpose
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
        with self.assertRaises(ssl.SSLError):
            self.https("GET", "/health", context=old)
        twelve = self.context(maximum_version=ssl.TLSVersion.TLSv1_2)
        _, _, first = self.https("GET", "/health", context=twelve)
        reused = [self.https("GET", "/health", context=twelve, session=first["session"])[2]["reused"] for _ in range(4)]
        self.assertTrue(all(reused), "the session is resumed, whichever worker answers")
        s_client = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.tls_port}", "-servername", HOST,
                                   "-tls1_1"], input=b"", capture_output=True, timeout=10)
        self.assertIn(b"alert protocol version", s_client.stdout + s_client.stderr)

    def test_what_is_not_tls_is_closed_without_harm(self):
        for garbage in [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x05hello", os.urandom(5000), b""]:
            with socket.create_connection(("127.0.0.1", self.tls_port), timeout=5) as raw:
                raw.sendall(garbage)
                raw.shutdown(socket.SHUT_WR)
                raw.settimeout(5)
                try:
                    while raw.recv(65536):
                        pass
                except (ConnectionResetError, socket.timeout):
                    pass
        with socket.create_connection(("127.0.0.1", self.tls_port), timeout=5):
            pass  # a connection that says nothing and leaves
        status, _, _ = self.https("GET", "/health")
        self.assertEqual(status, 200)
        self.assertEqual(self.daemon.request("GET", "/health")[0], 200)

    def metric(self, name):
        metrics = self.daemon.request("GET", "/metrics")[2]
        return int(next(line.split()[1] for line in metrics.splitlines() if line.startswith(name + " ")))

    def test_hostile_server_names_cost_nothing(self):
        """ClientHellos written by hand, so the server name is any bytes at all: huge, empty,
        not UTF-8, with NULs, dots, slashes, wildcards, IP literals, bad punycode, the platform's
        name in capitals. 16 clients at once, 640 handshakes: each ends at once (a ServerHello
        with the platform's certificate, or an alert), none reads the database (no domain is
        listed), and the listener and the database keep serving."""
        hostile = [b"x" * 253, b"a." * 126 + b"b", b"y" * 4000, b"", b".", b"..", b"a..b", b"\x00evil.example.com",
                   b"evil.example.com\x00.apps.flowgres.test", "b\u00fccher.example".encode(), b"\xff\xfe\xfd",
                   b"../../etc/passwd", b"*.example.com", b"127.0.0.1", b"[::1]", b"xn--zz.example", b"xn--.example",
                   b"APPS.FLOWGRES.TEST", b"apps.flowgres.test.", b"%2e%2e.example.com", b"<script>.example.com",
                   b"a" * 64 + b".example.com", b"'; drop table flowgres.app_domains; --"]
        loads, lists = self.metric("flowgres_tls_certificate_loads_total"), self.metric("flowgres_tls_domain_list_loads_total")
        self.assertGreaterEqual(lists, 1, "the list of names was read at start")

        def hello(index):
            name = hostile[index % len(hostile)] if index % 2 else f"made-up-{index}.example.com".encode()
            server_name = struct.pack("!BH", 0, len(name)) + name
            extensions = b"".join(struct.pack("!HH", kind, len(data)) + data for kind, data in [
                (0x0000, struct.pack("!H", len(server_name)) + server_name),
                (0x000a, struct.pack("!H", 4) + bytes.fromhex("001d0017")),        # x25519, P-256
                (0x000b, bytes.fromhex("0100")),                                   # uncompressed points
                (0x000d, struct.pack("!H", 6) + bytes.fromhex("040308040401"))])   # ECDSA, PSS, RSA
            suites = bytes.fromhex("c02bc02fc02cc030")
            body = (b"\x03\x03" + os.urandom(32) + b"\x00" + struct.pack("!H", len(suites)) + suites + b"\x01\x00" +
                    struct.pack("!H", len(extensions)) + extensions)
            handshake = b"\x01" + len(body).to_bytes(3, "big") + body
            with socket.create_connection(("127.0.0.1", self.tls_port), timeout=5) as raw:
                raw.sendall(b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake)
                answer = raw.recv(5)
            return name, answer[:1]

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(hello, range(640)))
        for name, first in answers:
            self.assertIn(first, (b"\x16", b"\x15"), f"{name!r}: a ServerHello or an alert, at once")
        made_up = [first for name, first in answers if name.startswith(b"made-up-")]
        self.assertEqual(made_up, [b"\x15"] * 320, "a name nobody bound is refused")
        self.assertEqual(self.metric("flowgres_tls_certificate_loads_total"), loads, "no name was read from the database")
        self.assertEqual(self.metric("flowgres_tls_domain_list_loads_total"), lists)
        self.assertEqual(self.https("GET", "/health")[0], 200)
        self.assertEqual(self.daemon.request("GET", "/ready")[0], 200)

    def test_start_up_refuses_a_listener_without_a_usable_certificate(self):
        _, other_key = write_certificate(self.directory, "other.flowgres.test")
        for settings, message in [({"tls_port": free_port()}, "needs tls_cert_file"),
                                  ({"tls_port": free_port(), "tls_cert_file": "/nonexistent.pem", "tls_key_file": self.key_file},
                                   "does not load"),
                                  ({"tls_port": free_port(), "tls_cert_file": self.cert, "tls_key_file": other_key},
                                   "mismatch")]:
            arguments = [DAEMON, f"--database_url=host=/nonexistent dbname=x"] + [f"--{k}={v}" for k, v in settings.items()]
            run = subprocess.run(arguments, capture_output=True, text=True, timeout=20)
            self.assertEqual(run.returncode, 2, run.stderr)
            self.assertIn(message, run.stderr)


if __name__ == "__main__":
    main()
