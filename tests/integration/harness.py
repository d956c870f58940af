"""Shared set-up for the daemon's integration tests: a database of its own on the throwaway
cluster that scripts/test.sh started, a real flowgresd on a free loopback port, and small
HTTP helpers (http.client for ordinary calls, raw sockets for protocol edge cases).
Nothing here is mocked: every call crosses a real socket into the real daemon and database."""

import http.client
import json
import os
import resource
import socket
import subprocess
import threading
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAEMON = os.path.join(ROOT, "build", "flowgresd")
SOCKET_DIR = os.environ.get("FLOWGRES_TEST_SOCKET", "")
PG_PORT = os.environ.get("FLOWGRES_TEST_PORT", "")


# The thousand-idle-connections test holds 1,000 sockets in this process.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if _soft < min(_hard, 4096):
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(_hard, 4096), _hard))


def psql(database, sql, *, check=True):
    """Runs SQL as the cluster's superuser; returns stdout (tuples only, unaligned)."""
    result = subprocess.run(
        ["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", database, "-AtX", "-v", "ON_ERROR_STOP=1",
         "-c", sql], capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise RuntimeError(f"psql failed: {result.stderr}")
    return result.stdout.strip()


def hold_workspaces_lock(database, seconds):
    """A psql session holding flowgres.workspaces exclusively for `seconds`, so requests that
    read it wait in the database: "requests in flight" for shutdown and pool tests."""
    process = subprocess.Popen(
        ["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", database, "-c",
         f"begin; lock table flowgres.workspaces in access exclusive mode; select pg_sleep({seconds}); commit;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)  # let the lock be taken before the caller's requests arrive
    return process


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def new_key():
    return subprocess.run([DAEMON, "--new-key"], capture_output=True, text=True, check=True).stdout.strip()


def fresh_database(name):
    psql("postgres", f"drop database if exists {name} with (force)")
    psql("postgres", f"create database {name}")
    psql(name, "create extension flowgres")


class Daemon:
    """A flowgresd process with its own port; stderr (the JSON log) is kept in a file."""

    def __init__(self, database, **settings):
        self.database = database
        self.port = free_port()
        self.admin_key = new_key()
        self.log_path = f"/tmp/flowgresd-test-{self.port}.log"
        self.settings = {
            "database_url": f"host={SOCKET_DIR} port={PG_PORT} user=postgres dbname={database}",
            "admin_key": self.admin_key,
            "port": str(self.port),
            "workers": "2",
            "db_queue_timeout_ms": "2000",
            "shutdown_timeout_ms": "5000",
        }
        self.settings.update({key: str(value) for key, value in settings.items()})
        self.process = None

    def start(self, wait_ready=True):
        arguments = [DAEMON] + [f"--{key}={value}" for key, value in self.settings.items()]
        self.log = open(self.log_path, "w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWGRES_")}
        self.process = subprocess.Popen(arguments, stderr=self.log, stdout=self.log, env=env)
        deadline = time.time() + 15
        path = "/ready" if wait_ready else "/health"
        while time.time() < deadline:
            try:
                status, _, _ = self.request("GET", path)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("flowgresd did not become ready:\n" + open(self.log_path).read()[-3000:])

    def stop(self, timeout=15):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "log", None) and not self.log.closed:
            self.log.close()
            os.unlink(self.log_path)
        return self.process.returncode if self.process else None

    def log_text(self, having=None, seconds=2):
        """The daemon's log so far. With `having`: once it holds that text, or after `seconds`
        (a worker writes its lines once per loop iteration, right after answering)."""
        deadline = time.time() + seconds
        while True:
            with open(self.log_path) as handle:
                text = handle.read()
            if having is None or having in text or time.time() >= deadline:
                return text
            time.sleep(0.02)

    def request(self, method, path, body=None, key=None, headers=None, raw_body=None, timeout=10):
        """One HTTP request on a new connection: (status, headers dict lowercased, parsed JSON or text)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        all_headers = dict(headers or {})
        if key:
            all_headers["Authorization"] = f"Bearer {key}"
        payload = raw_body
        if body is not None:
            payload = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        connection.request(method, path, body=payload, headers=all_headers)
        response = connection.getresponse()
        text = response.read()
        connection.close()
        response_headers = {name.lower(): value for name, value in response.getheaders()}
        try:
            document = json.loads(text) if text else None
        except ValueError:
            document = text.decode(errors="replace")
        return response.status, response_headers, document

    def raw(self, data, read_timeout=3.0, until_close=True):
        """Sends raw bytes; returns everything the server wrote until it closed (or timed out)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=read_timeout) as connection:
            connection.sendall(data)
            return read_all(connection, read_timeout, until_close)


def read_all(connection, timeout, until_close=True):
    connection.settimeout(timeout)
    chunks = []
    try:
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            if not until_close:
                break
    except socket.timeout:
        pass
    return b"".join(chunks)


def statuses(raw_bytes):
    """Status codes of every response in a raw byte stream, in order."""
    import re
    # Bodies end without CRLF, so the next status line may follow a body directly.
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw_bytes)]


class Caller(threading.Thread):
    """A request made on its own thread, for tests that kill the daemon under it: it keeps what
    the request answered, or the connection error that ended it, instead of a stray traceback."""

    def __init__(self, request):
        super().__init__(daemon=True)
        self.request = request
        self.answer = None
        self.error = None
        self.start()

    def run(self):
        try:
            self.answer = self.request()
        except (OSError, http.client.HTTPException) as error:
            self.error = error


class ApiTestCase(unittest.TestCase):
    """One database and one daemon per test class; the operator's key is self.admin."""

    database = None
    reuse_database = False  # True: use `database` as it is (flowgres_test, which the worker watches)
    daemon_settings = {}

    @classmethod
    def setUpClass(cls):
        cls.database = cls.database or ("it_" + cls.__name__.lower())
        if not cls.reuse_database:
            fresh_database(cls.database)
        cls.daemon = Daemon(cls.database, **cls.daemon_settings).start()
        cls.admin = cls.daemon.admin_key

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()

    def call(self, method, path, body=None, key=None, **kwargs):
        return self.daemon.request(method, path, body=body, key=key, **kwargs)

    def ok(self, method, path, body=None, key=None, status=200, **kwargs):
        code, headers, document = self.call(method, path, body, key, **kwargs)
        self.assertEqual(code, status, f"{method} {path}: {document}")
        self.assertEqual(document["code"], "OK")
        return document["data"]

    def fails(self, method, path, status, error_code, body=None, key=None, **kwargs):
        code, headers, document = self.call(method, path, body, key, **kwargs)
        self.assertEqual(code, status, f"{method} {path}: {document}")
        self.assertEqual(document["error_code"], error_code, document)
        self.assertEqual(document["code"], error_code)
        self.assertIn("details", document["data"])
        return document

    def app_with(self, key, workspace, workflow):
        """A new app of the workspace (on the enterprise plan, so quotas never interfere) whose
        version 1.0.0 has the workflow."""
        psql(self.database, f"update flowgres.workspaces set plan = 'enterprise' where id = '{workspace['id']}'")
        app = self.ok("POST", f"/api/v1/workspaces/{workspace['id']}/apps", {"name": f"app {time.time_ns()}"}, key, status=201)
        self.ok("POST", f"/api/v1/apps/{app['id']}/versions", {"version": "1.0.0", "workflow": workflow}, key, status=201)
        return app

    _users = 0

    def new_user(self, name=None):
        """A user made by the operator, with a read+write key of their own: (user, workspace, key)."""
        ApiTestCase._users += 1
        name = name or f"user{ApiTestCase._users}"
        email = f"{name}.{ApiTestCase._users}.{time.time_ns()}@example.com"
        created = self.ok("POST", "/api/v1/users", {"email": email, "display_name": name}, self.admin, status=201)
        key = self.ok("POST", f"/api/v1/users/{created['user']['id']}/api-keys", {"name": "test"}, self.admin, status=201)
        return created["user"], created["workspace"], key["key"]


def main():
    """Runs the module's tests; prints the closing line scripts/test.sh counts."""
    import sys
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromModule(sys.modules["__main__"])
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors)
    print(f"{max(0, result.testsRun - failed)} passed, {failed} failed")
    sys.exit(0 if result.wasSuccessful() else 1)


PROVISION = os.path.join(ROOT, "build", "flowgres-provision")


class TenantServer:
    """A throwaway PostgreSQL server for workspace databases, set up the way the README asks
    of a pool server: the administrator over the Unix socket, everyone else over TCP with
    SCRAM passwords, and tenant roles (members of flowgres_tenants) let into the database of
    their own name only (samerole) and refused everywhere else."""

    BIN = "/usr/lib/postgresql/15/bin"
    HBA = """local all postgres trust
local all all reject
host samerole +flowgres_tenants 127.0.0.1/32 scram-sha-256
host all +flowgres_tenants 127.0.0.1/32 reject
host all all 127.0.0.1/32 scram-sha-256
"""

    def __init__(self, directory, port=None):
        self.directory = directory
        self.port = port or free_port()
        self.data = os.path.join(directory, "pgdata")
        self.socket_dir = os.path.join(directory, "sock")

    def _as_server_user(self, *command, check=True):
        prefix = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        return subprocess.run(prefix + list(command), capture_output=True, text=True, timeout=120, check=check)

    def create(self):
        os.makedirs(self.directory, exist_ok=True)
        os.chmod(self.directory, 0o755)
        for path in (self.data, self.socket_dir):
            os.makedirs(path, exist_ok=True)
        if os.getuid() == 0:
            subprocess.run(["chown", "-R", "postgres:postgres", self.directory], check=True)
        self._as_server_user(f"{self.BIN}/initdb", "-D", self.data, "-U", "postgres", "--auth-local=trust",
                             "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8")
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as conf:
            conf.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.socket_dir}'\nmax_connections = 100\nfsync = off\n")
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as hba:
            hba.write(self.HBA)
        return self.start()

    def start(self):
        self._as_server_user(f"{self.BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.directory, "server.log"),
                             "-w", "-t", "60", "start")
        return self

    def crash(self):
        """Stops without a shutdown checkpoint, as a power cut would."""
        self._as_server_user(f"{self.BIN}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", "60", "stop", check=False)

    def stop(self):
        self._as_server_user(f"{self.BIN}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop", check=False)

    def admin_conninfo(self):
        return f"host={self.socket_dir} port={self.port} user=postgres dbname=postgres"

    def psql(self, sql, database="postgres"):
        return subprocess.run(["psql", "-h", self.socket_dir, "-p", str(self.port), "-U", "postgres", "-d", database,
                               "-AtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                              capture_output=True, text=True, timeout=60, check=True).stdout.strip()


def tenant_psql(host, port, database, user, password, sql):
    """Runs SQL as a tenant role over TCP with its password; returns the CompletedProcess."""
    environment = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="5")
    return subprocess.run(["psql", "-h", host, "-p", str(port), "-U", user, "-d", database, "-qAtX", "-v",
                           "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True, timeout=60, env=environment)


def open_sealed(keys_text, sealed, context):
    """Opens an enc:v1 secret with Python's own AES-256-GCM (python3-cryptography): the stored
    format is plain AES-GCM that any implementation reads, not something only ours can."""
    import base64
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    def decode(text):
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    prefix, version, key_id, nonce, body = sealed.split(":")
    assert (prefix, version) == ("enc", "v1"), sealed
    keys = dict(entry.split("=", 1) for entry in keys_text.replace("\n", ",").split(",") if entry)
    return AESGCM(decode(keys[key_id])).decrypt(decode(nonce), decode(body), context.encode()).decode()
