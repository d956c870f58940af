#!/usr/bin/env python3
"""http steps against a real upstream on loopback (a threaded Python HTTP server; the daemon
allow-lists 127.0.0.0/8 as tests must): JSON in and out, two slow steps at once, retry then
success, timeout, oversized responses, the egress policy refusing what is not allowed, and
https against upstreams with a trusted certificate, a self-signed one and one for another name."""

import io
import json
import os
import socket
import struct
import ssl
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import ApiTestCase, main, psql

FLAKY = {"count": 0}


class Upstream(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(0.3)
            return self.reply(200, json.dumps({"slow": True}))
        if self.path.startswith("/hang"):
            time.sleep(3)
            return self.reply(200, "{}")
        if self.path.startswith("/flaky"):
            FLAKY["count"] += 1
            return self.reply(500 if FLAKY["count"] == 1 else 200, json.dumps({"attempt": FLAKY["count"]}))
        if self.path.startswith("/reset"):
            # Half a response, then a reset (RST, not FIN): SO_LINGER 0 and close.
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.wfile = io.BytesIO()  # what the handler would still flush goes nowhere
            return
        if self.path.startswith("/nul"):
            return self.reply(200, b"before\x00after", "text/plain")
        if self.path.startswith("/big"):
            return self.reply(200, "x" * 200000, "text/plain")
        if self.path.startswith("/redirect-to?"):
            self.send_response(302)
            self.send_header("Location", self.path.split("?", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/echo?from=redirect")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        return self.reply(200, json.dumps({"path": self.path, "agent": self.headers.get("User-Agent"),
                                           "token": self.headers.get("X-Token"),
                                           "authorization": self.headers.get("Authorization"),
                                           "cookie": self.headers.get("Cookie"),
                                           "port": self.server.server_address[1]}))

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        return self.reply(201, json.dumps({"received": json.loads(body), "type": self.headers.get("Content-Type")}))


def graph(nodes, edges):
    return {"nodes": nodes, "edges": [{"source": s, "target": t} for s, t in edges]}


class UpstreamCase(ApiTestCase):
    """A daemon allowed to reach loopback, a plain-http upstream, and a workspace to run in."""

    daemon_settings = {"egress_allow": "127.0.0.0/8", "max_http_response_bytes": 100000,
                       "execution_heartbeat_interval_ms": 200}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
        cls.base = f"http://127.0.0.1:{cls.upstream.server_address[1]}"
        threading.Thread(target=cls.upstream.serve_forever, daemon=True).start()
        helper = cls()  # an instance, for the helpers
        _, cls.workspace, cls.key = helper.new_user()
        psql(cls.database, f"update flowgres.workspaces set plan = 'enterprise' where id = '{cls.workspace['id']}'")

    @classmethod
    def tearDownClass(cls):
        cls.upstream.shutdown()
        super().tearDownClass()

    def run_workflow(self, workflow, inputs=None):
        app = self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/apps", {"name": f"h{time.time_ns()}"}, self.key, status=201)
        self.ok("POST", f"/api/v1/apps/{app['id']}/versions", {"version": "1.0.0", "workflow": workflow}, self.key, status=201)
        return self.ok("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": inputs or {}}, self.key)

    def single(self, config, inputs=None):
        return self.run_workflow(graph([{"id": "s", "type": "start", "data": {"inputs": [{"name": "q"}, {"name": "token"}]}},
                                        {"id": "h", "type": "http", "config": config}, {"id": "o", "type": "output"}],
                                       [("s", "h"), ("h", "o")]), inputs)


class HttpSteps(UpstreamCase):
    def test_get_with_templates_in_url_and_headers(self):
        execution = self.single({"url": self.base + "/echo?q={{q}}", "headers": {"X-Token": "{{token}}"}},
                                {"q": "a b&c", "token": "t1\r\nX-Evil: 1"})
        self.assertEqual(execution["status"], "completed", execution)
        body = execution["outputs"]["o"]["body"]
        self.assertEqual(body["path"], "/echo?q=a%20b%26c")
        self.assertEqual(body["token"], "t1X-Evil: 1", "CR/LF never reach a header")
        self.assertEqual(body["agent"], "flowgresd")
        self.assertEqual(execution["outputs"]["o"]["status"], 200)

    def test_post_json_body_and_expected_status(self):
        execution = self.single({"method": "POST", "url": self.base + "/items", "body": {"name": "{{q}}", "n": 2},
                                 "expected_status": [201]}, {"q": "widget"})
        self.assertEqual(execution["status"], "completed", execution)
        self.assertEqual(execution["outputs"]["o"]["body"], {"received": {"name": "widget", "n": 2}, "type": "application/json"})
        failed = self.single({"method": "POST", "url": self.base + "/items", "body": {}, "expected_status": 200})
        self.assertEqual(failed["status"], "failed")
        self.assertEqual(failed["error"]["error_code"], "HTTP_UNEXPECTED_STATUS")

    def test_two_slow_steps_run_at_once(self):
        started = time.time()
        execution = self.run_workflow(graph([{"id": "s", "type": "start"},
                                             {"id": "a", "type": "http", "config": {"url": self.base + "/slow/a"}},
                                             {"id": "b", "type": "http", "config": {"url": self.base + "/slow/b"}},
                                             {"id": "o", "type": "output"}],
                                            [("s", "a"), ("s", "b"), ("a", "o"), ("b", "o")]))
        elapsed = time.time() - started
        self.assertEqual(execution["status"], "completed", execution)
        self.assertLess(elapsed, 0.55, "two 300 ms HTTP steps ran one after the other")

    def test_retry_then_success_redirects_and_limits(self):
        FLAKY["count"] = 0
        execution = self.single({"url": self.base + "/flaky", "retryCount": 2, "retryDelay": 50})
        self.assertEqual(execution["status"], "completed", execution)
        self.assertEqual([log["status"] for log in execution["node_logs"] if log["node_id"] == "h"], ["failed", "completed"])
        redirected = self.single({"url": self.base + "/redirect"})
        self.assertEqual(redirected["outputs"]["o"]["body"]["path"], "/echo?from=redirect")
        big = self.single({"url": self.base + "/big"})
        self.assertEqual(big["error"]["error_code"], "HTTP_RESPONSE_TOO_LARGE")
        slow = self.single({"url": self.base + "/hang", "timeout": 300})
        self.assertEqual(slow["error"]["error_code"], "NODE_TIMEOUT")
        refused = self.single({"url": "http://127.0.0.1:1/"})
        self.assertEqual(refused["error"]["error_code"], "HTTP_REQUEST_FAILED")
        reset = self.single({"url": self.base + "/reset"})
        self.assertEqual(reset["error"]["error_code"], "HTTP_REQUEST_FAILED")
        self.assertIn("connection", reset["error"]["message"])

    def test_a_nul_in_a_steps_data_leaves_the_run_recordable(self):
        execution = self.single({"url": self.base + "/nul"})
        self.assertEqual(execution["status"], "completed", execution)
        self.assertEqual(execution["outputs"]["o"]["body"], "before\ufffdafter", "NUL stored as the replacement character")
        stored = psql(self.database, f"select status || ' ' || (outputs -> 'o' ->> 'body') from flowgres.executions "
                                     f"where id = '{execution['id']}'")
        self.assertEqual(stored, "completed before\ufffdafter")
        self.assertEqual(len(execution["node_logs"]), 3, "and its node logs with it")
        logged = psql(self.database, "select jsonb_array_length(node_logs) from flowgres.execution_trails "
                                     f"where execution_id = '{execution['id']}'")
        self.assertEqual(logged, "3", "stored in its trail (nobody streamed the run)")

    def test_credentials_never_follow_a_redirect_to_another_origin(self):
        other = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
        threading.Thread(target=other.serve_forever, daemon=True).start()
        try:
            credentials = {"Authorization": "Bearer s3cret", "Cookie": "session=abc", "X-Token": "plain"}
            elsewhere = f"http://127.0.0.1:{other.server_address[1]}/echo"
            away = self.single({"url": f"{self.base}/redirect-to?{elsewhere}", "headers": credentials})
            body = away["outputs"]["o"]["body"]
            self.assertEqual(body["port"], other.server_address[1], away)
            self.assertEqual((body["authorization"], body["cookie"]), (None, None), "credentials stayed behind")
            self.assertEqual(body["token"], "plain", "other headers go on")
            home = self.single({"url": f"{self.base}/redirect-to?/echo", "headers": credentials})
            self.assertEqual(home["outputs"]["o"]["body"]["authorization"], "Bearer s3cret", "the same origin keeps them")
        finally:
            other.shutdown()

    def test_egress_policy_refuses_metadata_and_private_addresses(self):
        # Address literals only: a test sends no DNS query off the machine.
        for url in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://[::1]/"):
            execution = self.single({"url": url})
            self.assertEqual(execution["status"], "failed", url)
            self.assertIn(execution["error"]["error_code"], ("EGRESS_DENIED", "HTTP_REQUEST_FAILED"), url)
        for url in ("http://169.254.169.254/", "http://10.0.0.1/"):
            self.assertEqual(self.single({"url": url})["error"]["error_code"], "EGRESS_DENIED")
        code, _, _ = self.call("GET", "/health")
        self.assertEqual(code, 200)


def make_certificates(directory):
    """A test CA, a server certificate it signs for 127.0.0.1, a self-signed impostor for the
    same address, and a CA-signed certificate for another name only."""
    def openssl(*arguments):
        subprocess.run(["openssl", *arguments], cwd=directory, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=flowgres test CA")
    for name, alt in (("good", "IP:127.0.0.1"), ("elsewhere", "DNS:elsewhere.example")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}")
        with open(os.path.join(directory, f"{name}.ext"), "w") as extension:
            extension.write(f"subjectAltName={alt}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue.key", "-out", "rogue.pem", "-days", "2",
            "-subj", "/CN=rogue", "-addext", "subjectAltName=IP:127.0.0.1")


CERTIFICATES = tempfile.mkdtemp(prefix="flowgres-tls-")


def tls_upstream(name):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(CERTIFICATES, f"{name}.pem"), os.path.join(CERTIFICATES, f"{name}.key"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"https://127.0.0.1:{server.server_address[1]}"


class HttpsSteps(UpstreamCase):
    """The same daemon settings plus the test CA (http_ca_file)."""

    make_certificates(CERTIFICATES)
    daemon_settings = {**UpstreamCase.daemon_settings, "http_ca_file": os.path.join(CERTIFICATES, "ca.pem")}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.servers = {name: tls_upstream(name) for name in ("good", "rogue", "elsewhere")}

    @classmethod
    def tearDownClass(cls):
        for server, _ in cls.servers.values():
            server.shutdown()
        import shutil
        shutil.rmtree(CERTIFICATES, ignore_errors=True)
        super().tearDownClass()

    def test_https_to_a_trusted_upstream(self):
        base = self.servers["good"][1]
        execution = self.single({"url": base + "/echo?q={{q}}"}, {"q": "tls"})
        self.assertEqual(execution["status"], "completed", execution)
        self.assertEqual(execution["outputs"]["o"]["body"]["path"], "/echo?q=tls")
        posted = self.single({"method": "POST", "url": base + "/items", "body": {"n": 1}, "expected_status": 201})
        self.assertEqual(posted["outputs"]["o"]["body"]["received"], {"n": 1})
        big = self.single({"url": base + "/big"})
        self.assertEqual(big["error"]["error_code"], "HTTP_RESPONSE_TOO_LARGE")

    def test_https_refuses_untrusted_or_misnamed_certificates(self):
        rogue = self.single({"url": self.servers["rogue"][1] + "/echo"})
        self.assertEqual(rogue["error"]["error_code"], "HTTP_REQUEST_FAILED")
        self.assertIn("certificate verify failed", rogue["error"]["message"])
        misnamed = self.single({"url": self.servers["elsewhere"][1] + "/echo"})
        self.assertEqual(misnamed["error"]["error_code"], "HTTP_REQUEST_FAILED")
        self.assertIn("certificate verify failed", misnamed["error"]["message"])
        self.assertIn("mismatch", misnamed["error"]["message"])
        # A plain-http server behind an https URL: the handshake fails, the daemon carries on.
        plain = self.single({"url": self.base.replace("http://", "https://") + "/echo"})
        self.assertEqual(plain["error"]["error_code"], "HTTP_REQUEST_FAILED")
        self.assertIn("TLS", plain["error"]["message"])
        self.assertEqual(self.call("GET", "/health")[0], 200)

    def test_a_missing_ca_file_stops_start_up(self):
        from harness import DAEMON
        settings = {**self.daemon.settings, "http_ca_file": "/nonexistent/ca.pem"}
        result = subprocess.run([DAEMON] + [f"--{key}={value}" for key, value in settings.items()],
                                capture_output=True, text=True, timeout=10)
        self.assertEqual(result.returncode, 2)
        self.assertIn("http_ca_file", result.stderr)


class HostileUpstream:
    """A raw TCP server on loopback that misbehaves by path: /silent reads the request and
    never answers, /stall sends part of a response and goes quiet, /header-flood sends an
    endless header block, /many-headers sends 5,000 small header fields. Every connection
    ends by itself after a few seconds; a socket listening with a full backlog (never
    accepted) makes connecting hang."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()
        # Nothing ever accepts here: once the backlog of one is taken, SYNs are dropped.
        self.black_hole = socket.socket()
        self.black_hole.bind(("127.0.0.1", 0))
        self.black_hole.listen(0)
        self.black_hole_port = self.black_hole.getsockname()[1]
        self.fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.black_hole_port))
            self.fillers.append(filler)

    def serve(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.misbehave, args=(connection,), daemon=True).start()

    def misbehave(self, connection):
        connection.settimeout(8)
        try:
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 65536:
                chunk = connection.recv(4096)
                if not chunk:
                    return
                request += chunk
            path = request.split(b" ")[1].decode()
            if path.startswith("/stall"):
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
                time.sleep(4)
            elif path.startswith("/header-flood"):
                connection.sendall(b"HTTP/1.1 200 OK\r\nX-Flood: ")
                deadline = time.time() + 4
                while time.time() < deadline:
                    connection.sendall(b"a" * 65536)
            elif path.startswith("/many-headers"):
                connection.sendall(b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(5000)))
                time.sleep(4)
            else:  # /silent
                time.sleep(4)
        except OSError:
            pass
        finally:
            connection.close()

    def close(self):
        self.server.close()
        self.black_hole.close()
        for filler in self.fillers:
            filler.close()


class HostileUpstreams(UpstreamCase):
    """Each phase of an http step has its own bound: connect, first byte, idle, header size."""

    daemon_settings = {**UpstreamCase.daemon_settings, "http_connect_timeout_ms": 500,
                       "http_first_byte_timeout_ms": 700, "http_idle_timeout_ms": 600,
                       "max_http_header_bytes": 16384}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hostile = HostileUpstream()
        cls.hostile_base = f"http://127.0.0.1:{cls.hostile.port}"

    @classmethod
    def tearDownClass(cls):
        cls.hostile.close()
        super().tearDownClass()

    def fails_with(self, url, code, words, within=3.0, **config):
        started = time.time()
        execution = self.single({"url": url, **config})
        elapsed = time.time() - started
        self.assertEqual(execution["status"], "failed", execution)
        self.assertEqual(execution["error"]["error_code"], code, execution["error"])
        self.assertIn(words, execution["error"]["message"])
        self.assertLess(elapsed, within, f"{url} held the step for {elapsed:.1f} s")

    def test_a_server_that_never_accepts_times_out_connecting(self):
        self.fails_with(f"http://127.0.0.1:{self.hostile.black_hole_port}/", "HTTP_TIMEOUT", "connect timeout")

    def test_a_server_that_never_answers_times_out_waiting_for_the_first_byte(self):
        self.fails_with(self.hostile_base + "/silent", "HTTP_TIMEOUT", "first_byte timeout")

    def test_a_server_that_goes_quiet_times_out_idle(self):
        self.fails_with(self.hostile_base + "/stall", "HTTP_TIMEOUT", "idle timeout")

    def test_the_steps_own_timeout_is_the_ceiling(self):
        # 200 ms of step timeout against a 700 ms first-byte timeout: the step's wins.
        self.fails_with(self.hostile_base + "/silent", "NODE_TIMEOUT", "timeout", within=1.0, timeout=200)

    def test_endless_or_countless_headers_are_cut_off(self):
        self.fails_with(self.hostile_base + "/header-flood", "HTTP_RESPONSE_TOO_LARGE", "headers")
        self.fails_with(self.hostile_base + "/many-headers", "HTTP_RESPONSE_TOO_LARGE", "headers")
        self.assertEqual(self.daemon.request("GET", "/health")[0], 200)


if __name__ == "__main__":
    main()
