"""Workspace databases end to end (README "Workspace databases"): flowgres-provision against two throwaway
PostgreSQL servers and the test cluster's control database. Placement across both servers,
tenant isolation (another tenant's database, the server's own databases, the control
database), repair by provisioning again, one provision at a time, rotation refusing the old
password at once, rollback when a step fails, a server crashing mid-provision, a server down
for good, wrong master keys, and re-sealing under a new master key."""

import datetime
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from harness import (PG_PORT, PROVISION, SOCKET_DIR, ApiTestCase, Daemon, TenantServer, fresh_database, main, open_sealed, psql,
                     tenant_psql)

CONTROL_DB = "flowgres_wsdb"
CONTROL = f"host={SOCKET_DIR} port={PG_PORT} user=postgres dbname={CONTROL_DB}"


def keygen(key_id):
    return subprocess.run([PROVISION, "keygen", "--id", key_id], capture_output=True, text=True, check=True).stdout.strip()


KEYS = keygen("k1")
MIGRATIONS = os.path.join(os.path.dirname(PROVISION), "..", "migrations")
LATEST = len([name for name in os.listdir(MIGRATIONS) if name.endswith(".up.sql")])

# In server A's template1, so every database made there has it: while a file named
# slow_provision exists in the data directory, CREATE SCHEMA sleeps (the test crashes the
# server meanwhile).
SLOW_SCHEMA_TRIGGER = """
create function slow_schema() returns event_trigger language plpgsql as $$
begin
    if exists (select 1 from pg_ls_dir('.') as f where f = 'slow_provision') then perform pg_sleep(20); end if;
end $$;
create event trigger slow_schema on ddl_command_start when tag in ('CREATE SCHEMA') execute function slow_schema();
"""
FAILING_SCHEMA_TRIGGER = """
create function frozen_schema() returns event_trigger language plpgsql as $$
begin raise exception 'schemas are frozen on this server'; end $$;
create event trigger frozen_schema on ddl_command_start when tag in ('CREATE SCHEMA') execute function frozen_schema();
"""


SERVERS = {}


def database_row(workspace_id):
    """The workspace's row in flowgres.workspace_databases, sealed password included."""
    return json.loads(psql(CONTROL_DB, f"select to_jsonb(d)::text from flowgres.workspace_databases d "
                                       f"where workspace_id = '{workspace_id}'"))


def tenant_password(workspace_id, keys=KEYS):
    """The workspace role's password, opened from its sealed form with `keys`."""
    return open_sealed(keys, database_row(workspace_id)["secret_ref"], f"workspace_database:{workspace_id}")


def setUpModule():
    root = tempfile.mkdtemp(prefix="flowgres-wsdb-")
    os.chmod(root, 0o755)
    SERVERS["root"] = root
    SERVERS["pool-a"] = TenantServer(os.path.join(root, "a")).create()
    SERVERS["pool-b"] = TenantServer(os.path.join(root, "b")).create()
    SERVERS["pool-a"].psql(SLOW_SCHEMA_TRIGGER, database="template1")
    fresh_database(CONTROL_DB)
    for name in ("pool-a", "pool-b"):
        server = SERVERS[name]
        WorkspaceDatabaseTest.cli("server", "add", name, "--host", "127.0.0.1", "--port", str(server.port), "--admin",
                                  server.admin_conninfo(), check=True)


def tearDownModule():
    for name in ("pool-a", "pool-b"):
        SERVERS[name].stop()
    shutil.rmtree(SERVERS["root"], ignore_errors=True)


class WorkspaceDatabaseTest(unittest.TestCase):
    serial = 0

    @classmethod
    def setUpClass(cls):
        cls.server_a = SERVERS["pool-a"]
        cls.server_b = SERVERS["pool-b"]

    @classmethod
    def cli(cls, *arguments, keys=KEYS, check=False, timeout=120):
        environment = dict(os.environ, FLOWGRES_MASTER_KEYS=keys)
        if keys is None:
            environment.pop("FLOWGRES_MASTER_KEYS")
        result = subprocess.run([PROVISION, "--control", CONTROL, "--first-backoff-ms", "100", *arguments],
                                capture_output=True, text=True, timeout=timeout, env=environment)
        if check and result.returncode != 0:
            raise AssertionError(f"flowgres-provision {' '.join(arguments)} failed: {result.stderr}")
        return result

    def new_workspace(self):
        WorkspaceDatabaseTest.serial += 1
        email = f"wsdb-{os.getpid()}-{self.serial}@example.com"
        user = json.loads(psql(CONTROL_DB, f"select flowgres.user_create('{email}', 'Tenant')::text"))
        return psql(CONTROL_DB, f"select id from flowgres.workspaces where owner_user_id = '{user['user']['id']}'")

    def provision(self, workspace, *extra, **options):
        result = self.cli("provision", workspace, *extra, **options)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)

    def row(self, workspace):
        return database_row(workspace)

    def password(self, workspace, keys=KEYS):
        return tenant_password(workspace, keys)

    def server_of(self, document):
        return self.server_a if document["server"] == "pool-a" else self.server_b

    def as_tenant(self, document, sql, database=None, password=None):
        return tenant_psql("127.0.0.1", document["port"], database or document["db_name"], document["db_user"],
                           password or self.password(document["workspace_id"]), sql)

    def events(self, workspace, event_type):
        return int(psql(CONTROL_DB, f"select count(*) from flowgres.runtime_events where workspace_id = '{workspace}' "
                                    f"and event_type = '{event_type}'"))

    def test_placement_and_isolation(self):
        first, second, third = (self.provision(self.new_workspace()) for _ in range(3))
        servers = json.loads(self.cli("server", "list", check=True).stdout)
        counts = {server["name"]: server["databases"] for server in servers}
        self.assertEqual(abs(counts["pool-a"] - counts["pool-b"]) <= 1, True, counts)
        self.assertNotEqual(first["server"], second["server"], "the second goes to the emptier server")
        for document in (first, second, third):
            self.assertEqual(document["status"], "ready")
            self.assertEqual(document["db_name"], "ws_" + document["workspace_id"].replace("-", ""))
            self.assertEqual(document["db_user"], "wsu_" + document["workspace_id"].replace("-", ""))
            self.assertNotIn("secret_ref", document)
            self.assertNotIn(self.password(document["workspace_id"]), json.dumps(document))

        # The tenant creates, writes and reads in its own schema (seed §11.2's rights).
        made = self.as_tenant(first, "create table notes (id int primary key, body text); create index on notes (body);"
                                     "insert into notes values (1, 'mine'); alter table notes add column at date;"
                                     "select body from notes")
        self.assertEqual(made.returncode, 0, made.stderr)
        self.assertEqual(made.stdout.strip(), "mine")
        self.assertEqual(self.as_tenant(first, "select current_schema()").stdout.strip(), "data")
        self.assertNotEqual(self.as_tenant(first, "create table public.leak (x int)").returncode, 0,
                            "nothing may be created in schema public")
        self.assertNotEqual(self.as_tenant(first, "create database escape").returncode, 0)
        self.assertNotEqual(self.as_tenant(first, "create role escape").returncode, 0)

        # Another tenant's database, on the same server or the other, is out of reach…
        same_server = next(d for d in (second, third) if d["server"] == first["server"])
        for other in (second, third):
            refused = tenant_psql("127.0.0.1", other["port"], other["db_name"], first["db_user"],
                                  self.password(first["workspace_id"]), "select 1")
            self.assertNotEqual(refused.returncode, 0, f"{first['db_user']} reached {other['db_name']}")
        # …even with that database's rights granted to PUBLIC: pg_hba refuses before grants count.
        self.server_of(same_server).psql(f'grant connect on database "{same_server["db_name"]}" to public')
        self.assertNotEqual(self.as_tenant(first, "select 1", database=same_server["db_name"]).returncode, 0)
        # So are the server's own databases and the control database.
        self.assertIn("pg_hba.conf", self.as_tenant(first, "select 1", database="postgres").stderr)
        control = tenant_psql(SOCKET_DIR, PG_PORT, CONTROL_DB, first["db_user"], self.password(first["workspace_id"]), "select 1")
        self.assertNotEqual(control.returncode, 0, "a tenant role does not exist on the control server")

        status = self.cli("status", first["workspace_id"], check=True).stdout
        self.assertNotIn("enc:v1", status)
        self.assertEqual(json.loads(status)["schema_version"], LATEST)
        self.assertGreater(json.loads(status)["size_bytes"], 1_000_000)

    def test_provisioning_again_repairs_what_was_broken(self):
        document = self.provision(self.new_workspace())
        sealed = self.row(document["workspace_id"])["secret_ref"]
        server = self.server_of(document)
        server.psql(f'alter role "{document["db_user"]}" password \'broken\'; '
                    f'revoke connect on database "{document["db_name"]}" from "{document["db_user"]}"')
        self.assertNotEqual(self.as_tenant(document, "select 1").returncode, 0)
        repaired = self.provision(document["workspace_id"])
        self.assertEqual(repaired["status"], "ready")
        self.assertEqual(self.row(document["workspace_id"])["secret_ref"], sealed, "a repair keeps the password")
        self.assertEqual(self.as_tenant(document, "select 1").returncode, 0)

    def test_one_provision_at_a_time(self):
        workspace = self.new_workspace()
        psql(CONTROL_DB, f"select flowgres.workspace_database_claim('{workspace}', 'provision', 'another-provisioner')")
        busy = self.cli("provision", workspace)
        self.assertEqual(busy.returncode, 1)
        self.assertIn("PROVISION_IN_PROGRESS", busy.stderr)
        db_name = "ws_" + workspace.replace("-", "")
        for server in (self.server_a, self.server_b):
            self.assertEqual(server.psql(f"select count(*) from pg_database where datname = '{db_name}'"), "0")

        # Two at once: one does the work, the other is told it is running (or, if it came
        # second, finds it done); one database either way.
        workspace = self.new_workspace()
        processes = [subprocess.Popen([PROVISION, "--control", CONTROL, "provision", workspace], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=dict(os.environ, FLOWGRES_MASTER_KEYS=KEYS))
                     for _ in range(2)]
        outcomes = []
        for process in processes:
            _, stderr = process.communicate(timeout=120)
            outcomes.append((process.returncode, stderr))
        self.assertIn(0, [code for code, _ in outcomes])
        for code, stderr in outcomes:
            self.assertTrue(code == 0 or "PROVISION_IN_PROGRESS" in stderr, stderr)
        db_name = "ws_" + workspace.replace("-", "")
        found = sum(int(server.psql(f"select count(*) from pg_database where datname = '{db_name}'"))
                    for server in (self.server_a, self.server_b))
        self.assertEqual(found, 1)
        self.assertEqual(self.row(workspace)["status"], "ready")

    def test_rotation_refuses_the_old_password_at_once(self):
        document = self.provision(self.new_workspace())
        old_password = self.password(document["workspace_id"])
        session = subprocess.Popen(["psql", "-h", "127.0.0.1", "-p", str(document["port"]), "-U", document["db_user"], "-d",
                                    document["db_name"], "-c", "select pg_sleep(60)"],
                                   env=dict(os.environ, PGPASSWORD=old_password), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            server = self.server_of(document)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and server.psql(
                    f"select count(*) from pg_stat_activity where usename = '{document['db_user']}'") == "0":
                time.sleep(0.1)
            rotated = json.loads(self.cli("rotate-secret", document["workspace_id"], check=True).stdout)
            self.assertIsNotNone(rotated["secret_rotated_at"])
            new_password = self.password(document["workspace_id"])
            self.assertNotEqual(new_password, old_password)
            self.assertIn("password authentication failed",
                          self.as_tenant(document, "select 1", password=old_password).stderr)
            self.assertEqual(self.as_tenant(document, "select 1").returncode, 0)
            self.assertNotEqual(session.wait(timeout=10), 0, "the session opened with the old password was ended")
        finally:
            session.kill()
        self.assertEqual(self.events(document["workspace_id"], "db.secret.rotated"), 1)

    def test_a_failing_step_rolls_everything_back(self):
        workspace = self.new_workspace()
        self.server_b.psql(FAILING_SCHEMA_TRIGGER, database="template1")
        try:
            failed = self.cli("provision", workspace, "--server", "pool-b")
        finally:
            self.server_b.psql("drop event trigger frozen_schema; drop function frozen_schema()", database="template1")
        self.assertEqual(failed.returncode, 1)
        self.assertIn("PROVISION_FAILED", failed.stderr)
        self.assertIn("schemas are frozen", failed.stderr)
        row = self.row(workspace)
        self.assertEqual((row["status"], row["cleanup_pending"], row["attempts"]), ("failed", False, 1),
                         "an error that will not pass is not retried")
        compact = workspace.replace("-", "")
        self.assertEqual(self.server_b.psql(f"select count(*) from pg_database where datname = 'ws_{compact}'"), "0")
        self.assertEqual(self.server_b.psql(f"select count(*) from pg_roles where rolname in ('ws_{compact}', 'wsu_{compact}')"), "0")
        self.assertEqual(self.events(workspace, "db.provision.failed"), 1)
        self.assertEqual(self.provision(workspace)["status"], "ready", "provisioning again succeeds")

    def test_a_server_crashing_mid_provision_is_retried_to_the_end(self):
        workspace = self.new_workspace()
        flag = os.path.join(self.server_a.data, "slow_provision")
        open(flag, "w").close()
        process = subprocess.Popen([PROVISION, "--control", CONTROL, "--max-attempts", "10", "--first-backoff-ms", "200",
                                    "provision", workspace, "--server", "pool-a"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=dict(os.environ, FLOWGRES_MASTER_KEYS=KEYS))
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.server_a.psql(
                    "select count(*) from pg_stat_activity where wait_event = 'PgSleep'") == "0":
                time.sleep(0.1)
            self.assertLess(time.monotonic(), deadline, "the provision never reached CREATE SCHEMA")
            self.server_a.crash()
            os.remove(flag)
            time.sleep(1)
            self.server_a.start()
            stdout, stderr = process.communicate(timeout=120)
        finally:
            if os.path.exists(flag):
                os.remove(flag)
            process.kill()
        self.assertEqual(process.returncode, 0, stderr)
        self.assertIn("retrying", stderr)
        document = json.loads(stdout)
        self.assertEqual(document["status"], "ready")
        self.assertGreaterEqual(document["attempts"], 2)
        self.assertEqual(self.as_tenant(document, "select 1").returncode, 0)

    def test_a_server_down_for_good_fails_then_provisioning_finishes_later(self):
        workspace = self.new_workspace()
        self.server_b.stop()
        try:
            failed = self.cli("provision", workspace, "--server", "pool-b", "--max-attempts", "3")
        finally:
            self.server_b.start()
        self.assertEqual(failed.returncode, 1)
        self.assertIn("PROVISION_FAILED", failed.stderr)
        row = self.row(workspace)
        self.assertEqual((row["status"], row["cleanup_pending"], row["attempts"]), ("failed", True, 3))
        self.assertEqual(self.events(workspace, "db.provision.failed"), 1)
        document = self.provision(workspace)
        self.assertEqual((document["status"], document["server"]), ("ready", "pool-b"))
        self.assertEqual(self.as_tenant(document, "select 1").returncode, 0)

    def test_wrong_or_missing_master_keys(self):
        document = self.provision(self.new_workspace())
        workspace = document["workspace_id"]
        impostor = keygen("k1")
        wrong = self.cli("provision", workspace, keys=impostor)
        self.assertEqual(wrong.returncode, 1)
        self.assertIn("SECRET_INVALID", wrong.stderr)
        unknown = self.cli("provision", workspace, keys=keygen("k9"))
        self.assertIn("SECRET_KEY_UNKNOWN", unknown.stderr)
        none = self.cli("provision", self.new_workspace(), keys=None)
        self.assertIn("SECRETS_NOT_CONFIGURED", none.stderr)
        row = self.row(workspace)
        self.assertEqual(row["status"], "ready", "a key that does not fit changes nothing")
        self.assertEqual(self.as_tenant(document, "select 1").returncode, 0)

    def test_migrations_up_and_down(self):
        document = self.provision(self.new_workspace())
        workspace = document["workspace_id"]
        self.assertEqual(document["schema_version"], LATEST)
        server = self.server_of(document)
        recorded = server.psql("select string_agg(version || ':' || name, ',' order by version) "
                               "from flowgres_meta.workspace_db_migrations", database=document["db_name"])
        self.assertEqual(recorded, "1:workspace_meta,2:schema_changes")
        self.assertEqual(self.as_tenant(document, "select count(*) from flowgres_meta.workspace_meta").stdout.strip(), "1",
                         "the tenant reads flowgres_meta")
        self.assertIn("permission denied", self.as_tenant(document, "delete from flowgres_meta.workspace_meta").stderr,
                      "and cannot change it")

        down = json.loads(self.cli("rollback", workspace, "--to", "0", check=True).stdout)
        self.assertEqual(down["schema_version"], 0)
        self.assertEqual(server.psql("select to_regclass('flowgres_meta.workspace_meta') is null", database=document["db_name"]), "t")
        self.assertEqual(json.loads(self.cli("migrate", workspace, "--to", "1", check=True).stdout)["schema_version"], 1)
        self.assertEqual(json.loads(self.cli("migrate", workspace, check=True).stdout)["schema_version"], LATEST)
        self.assertEqual(self.events(workspace, "db.rolled_back"), 1)
        self.assertEqual(self.events(workspace, "db.migrated"), 2)

        for arguments, code in ((("migrate", workspace, "--to", "1"), "VALIDATION_FAILED"),
                                (("rollback", workspace, "--to", str(LATEST + 1)), "VALIDATION_FAILED"),
                                (("migrate", workspace, "--to", "99"), "VALIDATION_FAILED")):
            refused = self.cli(*arguments)
            self.assertEqual(refused.returncode, 1, refused.stderr)
            self.assertIn(code, refused.stderr)
        self.assertEqual(self.cli("rollback", workspace).returncode, 2, "rollback needs --to")
        self.assertEqual(self.row(workspace)["schema_version"], LATEST)

    def test_a_failing_migration_leaves_the_version_before_it(self):
        document = self.provision(self.new_workspace())
        workspace = document["workspace_id"]
        directory = tempfile.mkdtemp(prefix="flowgres-migrations-")
        try:
            for name in os.listdir(MIGRATIONS):
                shutil.copy(os.path.join(MIGRATIONS, name), directory)
            broken = f"{LATEST + 1:04d}_broken"
            with open(os.path.join(directory, broken + ".up.sql"), "w") as up:
                up.write("create table flowgres_meta.half_made (x int);\nselect 1 / 0;\n")
            with open(os.path.join(directory, broken + ".down.sql"), "w") as down:
                down.write("drop table flowgres_meta.half_made;\n")
            failed = self.cli("migrate", workspace, "--migrations-dir", directory)
            self.assertEqual(failed.returncode, 1)
            self.assertIn("MIGRATION_FAILED", failed.stderr)
            self.assertIn("division by zero", failed.stderr)
            row = self.row(workspace)
            self.assertEqual((row["status"], row["schema_version"]), ("ready", LATEST))
            self.assertIn("division by zero", row["last_error"])
            server = self.server_of(document)
            self.assertEqual(server.psql("select to_regclass('flowgres_meta.half_made') is null", database=document["db_name"]), "t",
                             "the failing migration's first statement was rolled back with it")
            self.assertEqual(server.psql("select max(version) from flowgres_meta.workspace_db_migrations",
                                         database=document["db_name"]), str(LATEST))
            self.assertEqual(self.events(workspace, "db.migrate.failed"), 1)

            # A migration changed after it was applied is refused, not run again.
            os.remove(os.path.join(directory, broken + ".up.sql"))
            os.remove(os.path.join(directory, broken + ".down.sql"))
            first = next(name for name in os.listdir(directory) if name.startswith("0001_") and name.endswith(".up.sql"))
            with open(os.path.join(directory, first), "a") as changed:
                changed.write("-- edited after release\n")
            drifted = self.cli("migrate", workspace, "--migrations-dir", directory)
            self.assertIn("MIGRATION_FAILED", drifted.stderr)
            self.assertIn("different file", drifted.stderr)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def test_backup_and_restore(self):
        document = self.provision(self.new_workspace())
        workspace = document["workspace_id"]
        backup_dir = os.path.join(SERVERS["root"], "backups")
        made = self.as_tenant(document, "create table notes (id int primary key, body text);"
                                        "insert into notes select i, 'note ' || i from generate_series(1, 3) i")
        self.assertEqual(made.returncode, 0, made.stderr)

        nowhere = self.cli("backup", workspace)
        self.assertIn("BACKUP_FAILED", nowhere.stderr, "no backup directory, no backup")
        self.assertEqual(self.row(workspace)["status"], "ready")

        backup = json.loads(self.cli("backup", workspace, "--backup-dir", backup_dir, check=True).stdout)
        self.assertEqual(backup["status"], "completed")
        self.assertEqual(backup["row_counts"]["data.notes"], 3)
        self.assertEqual(backup["schema_version"], LATEST)
        self.assertNotIn("location", backup)
        location = psql(CONTROL_DB, f"select location from flowgres.workspace_database_backups where id = '{backup['id']}'")
        self.assertEqual(os.stat(location).st_size, backup["size_bytes"])
        self.assertEqual(oct(os.stat(location).st_mode & 0o777), "0o600", "a dump holds the tenant's data")
        listed = json.loads(self.cli("backups", workspace, check=True).stdout)
        self.assertEqual([entry["status"] for entry in listed], ["completed", "failed"])

        changed = self.as_tenant(document, "delete from notes where id > 1; create table extra (x int)")
        self.assertEqual(changed.returncode, 0, changed.stderr)
        server = self.server_of(document)

        copy = json.loads(self.cli("restore", workspace, backup["id"], "--into", "copy", "--backup-dir", backup_dir, check=True).stdout)
        self.assertEqual(copy["restored_into"], document["db_name"] + "_restore")
        self.assertEqual(server.psql("select count(*) from data.notes", database=copy["restored_into"]), "3")
        self.assertEqual(self.as_tenant(document, "select count(*) from notes").stdout.strip(), "1", "a copy leaves the database be")
        self.assertNotEqual(self.as_tenant(document, "select 1", database=copy["restored_into"]).returncode, 0,
                            "the tenant cannot reach the copy")

        restored = json.loads(self.cli("restore", workspace, backup["id"], check=True).stdout)
        self.assertEqual((restored["restored_into"], restored["verified"]), (document["db_name"], True))
        self.assertEqual(self.as_tenant(document, "select count(*) from notes").stdout.strip(), "3", "the rows are back")
        self.assertNotEqual(self.as_tenant(document, "select 1 from extra").returncode, 0, "and what came after is gone")
        self.assertEqual(self.as_tenant(document, "insert into notes values (4, 'after'); create table later (x int)").returncode, 0,
                         "the tenant still owns its schema")
        self.assertEqual(self.events(workspace, "db.restored"), 2)

        with open(location, "ab") as dump:
            dump.write(b"x")
        altered = self.cli("restore", workspace, backup["id"])
        self.assertIn("BACKUP_FAILED", altered.stderr)
        self.assertIn("altered", altered.stderr)
        self.assertEqual(self.as_tenant(document, "select count(*) from notes").stdout.strip(), "4", "nothing was touched")
        self.assertIn("BACKUP_NOT_FOUND", self.cli("restore", workspace, "00000000-0000-0000-0000-000000000009").stderr)
        self.assertIn("VALIDATION_FAILED", self.cli("restore", workspace, "../../etc/passwd").stderr)

        # Only the newest --keep backups stay; older files are deleted.
        for _ in range(3):
            self.cli("backup", workspace, "--backup-dir", backup_dir, "--keep", "2", check=True)
        kept = [entry for entry in json.loads(self.cli("backups", workspace, check=True).stdout)
                if entry["status"] == "completed" and entry["pruned_at"] is None]
        self.assertEqual(len(kept), 2)
        self.assertFalse(os.path.exists(location), "a pruned backup's file is deleted")
        self.assertEqual(len(os.listdir(os.path.join(backup_dir, workspace))), 2)

    def test_bad_arguments(self):
        injected = self.cli("provision", "x'; drop table flowgres.workspaces; --")
        self.assertEqual(injected.returncode, 1)
        self.assertIn("VALIDATION_FAILED", injected.stderr)
        self.assertNotEqual(psql(CONTROL_DB, "select count(*) from flowgres.workspaces"), "0")
        missing = self.cli("provision", "00000000-0000-0000-0000-000000000001")
        self.assertIn("WORKSPACE_NOT_FOUND", missing.stderr)
        unknown_server = self.cli("provision", self.new_workspace(), "--server", "pool-z")
        self.assertIn("DATABASE_SERVER_NOT_FOUND", unknown_server.stderr)
        self.assertEqual(self.cli("provision").returncode, 2)
        # A server whose pg_hba.conf lets tenants anywhere (the test cluster trusts everyone)
        # does not join the pool.
        open_server = self.cli("server", "add", "wide-open", "--host", "127.0.0.1", "--port", PG_PORT, "--admin",
                               f"host={SOCKET_DIR} port={PG_PORT} user=postgres dbname=postgres")
        self.assertEqual(open_server.returncode, 1)
        self.assertIn("VALIDATION_FAILED", open_server.stderr)
        self.assertIn("samerole", open_server.stderr)
        self.assertNotIn("wide-open", self.cli("server", "list", check=True).stdout)

    def test_z_rekey_under_a_new_master_key(self):
        document = self.provision(self.new_workspace())
        new_key = keygen("k2")
        both = new_key + "," + KEYS
        resealed = json.loads(self.cli("rekey", keys=both, check=True).stdout)["resealed"]
        self.assertGreaterEqual(resealed, 1)
        self.assertEqual(psql(CONTROL_DB, "select count(*) from flowgres.workspace_databases "
                                          "where secret_ref is not null and secret_ref not like 'enc:v1:k2:%'"), "0")
        # With k1 retired, everything still opens.
        self.assertEqual(self.provision(document["workspace_id"], keys=new_key)["status"], "ready")
        self.assertEqual(self.as_tenant(document, "select 1", password=self.password(document["workspace_id"], new_key)).returncode, 0)
        # And back to k1, so the keyring the other tests use opens everything again.
        self.cli("rekey", keys=KEYS + "," + new_key, check=True)
        self.assertEqual(self.password(document["workspace_id"]), self.password(document["workspace_id"], KEYS))


class WorkspaceDatabaseApiTest(ApiTestCase):
    """The same over HTTP: flowgresd runs the provisioner on its own threads."""

    database = CONTROL_DB
    reuse_database = True
    daemon_settings = {"master_keys": KEYS, "egress_allow": "127.0.0.0/8,::1", "database_work_threads": 2}

    def test_database_work_never_holds_name_lookups(self):
        # Six database requests stuck behind a lock on the control plane: with libuv's four
        # threads they would hold every DNS lookup of every http step; on their own, none.
        callers = [self.new_user(f"dbstuck{i}") for i in range(6)]
        _, workspace, key = self.new_user("dbdns")
        app = self.app_with(key, workspace, {"nodes": [
            {"id": "s", "type": "start"}, {"id": "h", "type": "http", "config": {"url": "http://localhost:9/", "timeout": 3000}},
            {"id": "o", "type": "output"}], "edges": [{"source": "s", "target": "h"}, {"source": "h", "target": "o"}]})
        holder = subprocess.Popen(["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", CONTROL_DB,
                                   "-c", "begin; lock table flowgres.workspace_databases in access exclusive mode; "
                                         "select pg_sleep(4); commit;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.4)
        stuck = [threading.Thread(target=self.call, args=("POST", f"/api/v1/workspaces/{w['id']}/database"), kwargs={"key": k})
                 for _, w, k in callers]
        for thread in stuck:
            thread.start()
        time.sleep(0.4)
        started = time.time()
        execution = self.ok("POST", f"/api/v1/apps/{app['id']}/runs", {}, key)
        elapsed = time.time() - started
        holder.wait(timeout=30)
        for thread in stuck:
            thread.join(timeout=60)
        # localhost:9 answers nothing: what matters is that the name was looked up at once.
        self.assertNotEqual(execution["status"], "running")
        self.assertNotIn(execution.get("error", {}).get("error_code"), ("NODE_TIMEOUT",), execution)
        self.assertLess(elapsed, 2.5, "an http step's name lookup waited behind database work")

    def database_of(self, workspace_id, key, status=200, **options):
        return self.ok("GET", f"/api/v1/workspaces/{workspace_id}/database", key=key, status=status, **options)

    def test_provision_read_and_rotate(self):
        owner, workspace, key = self.new_user("dbowner")
        path = f"/api/v1/workspaces/{workspace['id']}/database"
        self.fails("GET", path, 404, "WORKSPACE_DATABASE_NOT_FOUND", key=key)
        made = self.ok("POST", path, key=key)
        self.assertEqual(made["status"], "ready")
        self.assertIn(made["server"], ("pool-a", "pool-b"))
        password = tenant_password(workspace["id"])
        self.assertNotIn(password, json.dumps(made))
        self.assertNotIn("enc:v1", json.dumps(made))
        self.assertEqual(self.database_of(workspace["id"], key)["db_name"], made["db_name"])
        self.assertNotIn(password, self.daemon.log_text())
        self.assertEqual(tenant_psql("127.0.0.1", made["port"], made["db_name"], made["db_user"], password, "select 1").returncode, 0)

        rotated = self.ok("POST", path + "/rotate-secret", key=key)
        self.assertIsNotNone(rotated["secret_rotated_at"])
        refused = tenant_psql("127.0.0.1", made["port"], made["db_name"], made["db_user"], password, "select 1")
        self.assertIn("password authentication failed", refused.stderr)

        # The same call again is a repair, not a second database.
        self.assertEqual(self.ok("POST", path, key=key)["db_name"], made["db_name"])

    def test_who_may_do_what(self):
        owner, workspace, key = self.new_user("dbrules")
        path = f"/api/v1/workspaces/{workspace['id']}/database"
        member, _, member_key = self.new_user("dbmember")
        invited = self.ok("POST", f"/api/v1/workspaces/{workspace['id']}/members",
                          {"email": member["email"], "role": "member"}, key, status=201)
        self.assertTrue(invited)
        self.ok("POST", f"/api/v1/workspaces/{workspace['id']}/members/accept", key=member_key)
        self.fails("POST", path, 403, "PERMISSION_DENIED", key=member_key)
        self.fails("POST", path, 403, "PERMISSION_DENIED", body={"server": "pool-b"}, key=key)
        _, _, stranger_key = self.new_user("dbstranger")
        self.fails("POST", path, 404, "WORKSPACE_NOT_FOUND", key=stranger_key)
        self.fails("GET", path, 404, "WORKSPACE_NOT_FOUND", key=stranger_key)
        # The operator pins the server; members then read where it is.
        pinned = self.ok("POST", path, body={"server": "pool-b"}, key=self.admin)
        self.assertEqual(pinned["server"], "pool-b")
        self.assertEqual(self.database_of(workspace["id"], member_key)["server"], "pool-b")
        self.fails("POST", path + "/rotate-secret", 403, "PERMISSION_DENIED", key=member_key)

    def test_failures_tell_members_no_server_or_role_names(self):
        psql(CONTROL_DB, "select set_config('flowgres.actor', '', false); select flowgres.database_server_add("
                         "'pool-dead', '127.0.0.1', 1, 'host=127.0.0.1 port=1 user=hidden_admin_role connect_timeout=1')")
        try:
            owner, workspace, key = self.new_user("dbhidden")
            path = f"/api/v1/workspaces/{workspace['id']}/database"
            code, _, operator_view = self.call("POST", path, {"server": "pool-dead"}, self.admin)
            self.assertEqual((code, operator_view["error_code"]), (502, "PROVISION_FAILED"), operator_view)
            self.assertIn("port 1", operator_view["message"], "the operator reads what failed")
            code, _, member_view = self.call("POST", path, key=key)
            self.assertEqual((code, member_view["error_code"]), (502, "PROVISION_FAILED"), member_view)
            for secret in ("hidden_admin_role", "port 1", "127.0.0.1"):
                self.assertNotIn(secret, json.dumps(member_view))
            self.assertIn(member_view["request_id"], member_view["message"], "the member can quote the request id")
            self.assertIn(member_view["request_id"], self.daemon.log_text(having=member_view["request_id"]),
                          "whose log line has the reason")
            document = self.database_of(workspace["id"], key)
            self.assertEqual(document["last_error"], "the last operation failed; the operator can see why")
            events = psql(CONTROL_DB, f"select string_agg(details::text, ' ') from flowgres.runtime_events "
                                      f"where workspace_id = '{workspace['id']}' and event_type = 'db.provision.failed'")
            self.assertTrue(events)
            self.assertNotIn("hidden_admin_role", events)
            self.assertNotIn("port 1", self.database_of(workspace["id"], self.admin)["server"])
            self.assertIn("port 1", self.database_of(workspace["id"], self.admin)["last_error"])
        finally:
            psql(CONTROL_DB, "update flowgres.database_servers set status = 'draining' where name = 'pool-dead'")

    def test_an_idempotency_key_replays_database_work(self):
        _, workspace, key = self.new_user("dbonce")
        path = f"/api/v1/workspaces/{workspace['id']}/database"
        made = self.ok("POST", path, key=key, headers={"Idempotency-Key": "provision-once"})
        rotated = self.ok("POST", path + "/rotate-secret", key=key, headers={"Idempotency-Key": "rotate-once"})
        password = tenant_password(workspace["id"])
        code, headers, again = self.call("POST", path + "/rotate-secret", key=key, headers={"Idempotency-Key": "rotate-once"})
        self.assertEqual((code, headers.get("idempotent-replayed")), (200, "true"))
        self.assertEqual(again["data"]["secret_rotated_at"], rotated["secret_rotated_at"])
        self.assertEqual(tenant_password(workspace["id"]), password, "the retry did not rotate a second time")
        code, headers, _ = self.call("POST", path, key=key, headers={"Idempotency-Key": "provision-once"})
        self.assertEqual((code, headers.get("idempotent-replayed")), (200, "true"))
        self.assertEqual(made["db_name"], self.database_of(workspace["id"], key)["db_name"])

    def test_async_provision_answers_202_then_finishes(self):
        _, workspace, key = self.new_user("dbasync")
        path = f"/api/v1/workspaces/{workspace['id']}/database"
        queued = self.ok("POST", path + "?async=true", key=key, status=202)
        self.assertIn(queued["status"], ("provisioning", "ready"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.database_of(workspace["id"], key)["status"] != "ready":
            time.sleep(0.1)
        self.assertEqual(self.database_of(workspace["id"], key)["status"], "ready")

    def test_bad_input_and_conflicts(self):
        _, workspace, key = self.new_user("dbbad")
        path = f"/api/v1/workspaces/{workspace['id']}/database"
        self.fails("POST", "/api/v1/workspaces/not-a-uuid/database", 404, "WORKSPACE_NOT_FOUND", key=key)
        self.fails("POST", path, 422, "VALIDATION_FAILED", body={"server": 7}, key=key)
        refused = self.fails("POST", path, 422, "VALIDATION_FAILED", body={"server": "pool-z'; drop table x; --"}, key=self.admin)
        self.assertEqual(refused["data"]["details"][0]["field"], "server")
        self.fails("POST", path, 404, "DATABASE_SERVER_NOT_FOUND", body={"server": "pool-z"}, key=self.admin)
        self.fails("POST", path + "/rotate-secret", 404, "WORKSPACE_DATABASE_NOT_FOUND", key=key)
        psql(CONTROL_DB, f"select flowgres.workspace_database_claim('{workspace['id']}', 'provision', 'elsewhere')")
        self.fails("POST", path, 409, "PROVISION_IN_PROGRESS", key=key)
        self.fails("POST", path + "/rotate-secret", 409, "PROVISION_IN_PROGRESS", key=key)
        self.assertEqual(self.database_of(workspace["id"], key)["operation_in_progress"], "provision")

    def test_migrate_and_rollback_over_http(self):
        _, workspace, key = self.new_user("dbmigrate")
        path = f"/api/v1/workspaces/{workspace['id']}/database"
        self.fails("POST", path + "/migrate", 404, "WORKSPACE_DATABASE_NOT_FOUND", key=key)
        self.assertEqual(self.ok("POST", path, key=key)["schema_version"], LATEST)
        self.assertEqual(self.ok("POST", path + "/rollback", {"target_version": 1}, key)["schema_version"], 1)
        self.assertEqual(self.ok("POST", path + "/migrate", key=key)["schema_version"], LATEST)
        self.fails("POST", path + "/rollback", 422, "VALIDATION_FAILED", body={}, key=key)
        self.fails("POST", path + "/rollback", 422, "VALIDATION_FAILED", body={"target_version": "one"}, key=key)
        self.fails("POST", path + "/rollback", 422, "VALIDATION_FAILED", body={"target_version": -1}, key=key)
        self.fails("POST", path + "/migrate", 422, "VALIDATION_FAILED", body={"target_version": 1}, key=key)
        self.assertEqual(self.database_of(workspace["id"], key)["schema_version"], LATEST)

    def test_backup_list_and_restore_over_http(self):
        _, workspace, key = self.new_user("dbbackup")
        path = f"/api/v1/workspaces/{workspace['id']}/database"
        made = self.ok("POST", path, key=key)
        self.fails("POST", path + "/backup", 502, "BACKUP_FAILED", key=key)  # this daemon has no backup_dir
        backup_dir = os.path.join(SERVERS["root"], "http-backups")
        with_backups = Daemon(CONTROL_DB, master_keys=KEYS, backup_dir=backup_dir).start()
        try:
            code, _, document = with_backups.request("POST", path + "/backup", key=key)
            self.assertEqual(code, 200, document)
            backup = document["data"]
            self.assertEqual((backup["status"], backup["reason"]), ("completed", "manual"))
            listed = self.ok("GET", path + "/backups", key=key)
            self.assertEqual(listed[0]["id"], backup["id"])
            self.assertNotIn("location", json.dumps(listed))
            code, _, document = with_backups.request("POST", path + "/restore", {"backup_id": backup["id"], "into": "copy"}, key=key)
            self.assertEqual((code, document["data"]["restored_into"]), (200, made["db_name"] + "_restore"), document)
            code, _, document = with_backups.request("POST", path + "/restore", {"backup_id": backup["id"]}, key=key)
            self.assertEqual((code, document["data"]["verified"]), (200, True), document)
            for body, status, error_code in (({}, 422, "VALIDATION_FAILED"), ({"backup_id": "../x"}, 422, "VALIDATION_FAILED"),
                                             ({"backup_id": backup["id"], "into": "elsewhere"}, 422, "VALIDATION_FAILED"),
                                             ({"backup_id": "00000000-0000-0000-0000-000000000009"}, 404, "BACKUP_NOT_FOUND")):
                code, _, document = with_backups.request("POST", path + "/restore", body, key=key)
                self.assertEqual((code, document["error_code"]), (status, error_code), body)
        finally:
            with_backups.stop()
        self.assertEqual(self.database_of(workspace["id"], key)["status"], "ready")

    def test_a_backup_stuck_behind_a_lock_gives_up(self):
        _, workspace, key = self.new_user("dblocked")
        path = f"/api/v1/workspaces/{workspace['id']}/database"
        made = self.ok("POST", path, key=key)
        server = SERVERS[made["server"]]
        server.psql("create table data.held (id int)", database=made["db_name"])
        backup_dir = os.path.join(SERVERS["root"], "locked-backups")
        impatient = Daemon(CONTROL_DB, master_keys=KEYS, backup_dir=backup_dir, database_lock_timeout_ms=300).start()
        holder = subprocess.Popen(["psql", "-h", server.socket_dir, "-p", str(server.port), "-U", "postgres",
                                   "-d", made["db_name"], "-c", "begin; lock table data.held in access exclusive mode; "
                                                                "select pg_sleep(20); commit;"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.4)
            started = time.time()
            code, _, document = impatient.request("POST", path + "/backup", key=key, timeout=60)
            self.assertEqual((code, document["error_code"]), (502, "BACKUP_FAILED"), document)
            self.assertLess(time.time() - started, 15, "the lock held the backup past its lock timeout")
        finally:
            holder.terminate()
            holder.wait(timeout=30)
            impatient.stop()
        self.assertEqual(self.database_of(workspace["id"], key)["status"], "ready")

    def test_scheduled_backups(self):
        _, workspace, key = self.new_user("dbscheduled")
        self.ok("POST", f"/api/v1/workspaces/{workspace['id']}/database", key=key)
        scheduler = Daemon(CONTROL_DB, master_keys=KEYS, backup_dir=os.path.join(SERVERS["root"], "scheduled"),
                           backup_interval_s=3600).start()
        try:
            deadline = time.monotonic() + 60
            reasons = []
            while time.monotonic() < deadline:
                reasons = [entry["reason"] for entry in
                           self.ok("GET", f"/api/v1/workspaces/{workspace['id']}/database/backups", key=key)]
                if reasons:
                    break
                time.sleep(0.5)
        finally:
            scheduler.stop()
        self.assertEqual(reasons, ["scheduled"], "backed up once: the next is due in an hour")

    def test_a_daemon_without_master_keys_refuses(self):
        _, workspace, key = self.new_user("dbnokeys")
        keyless = Daemon(CONTROL_DB).start()
        try:
            code, _, document = keyless.request("POST", f"/api/v1/workspaces/{workspace['id']}/database", key=key)
        finally:
            keyless.stop()
        self.assertEqual((code, document["error_code"]), (503, "SECRETS_NOT_CONFIGURED"))
        self.fails("GET", f"/api/v1/workspaces/{workspace['id']}/database", 404, "WORKSPACE_DATABASE_NOT_FOUND", key=key)


def chain(*steps, inputs=("body", "score", "q")):
    """start → steps… → output, each step {"id", "type", "config"}."""
    nodes = [{"id": "start", "type": "start", "data": {"inputs": [{"name": name} for name in inputs]}}]
    nodes += [{"id": step["id"], "type": step["type"], "config": step["config"]} for step in steps]
    nodes.append({"id": "out", "type": "output"})
    ids = [node["id"] for node in nodes]
    return {"nodes": nodes, "edges": [{"source": a, "target": b} for a, b in zip(ids, ids[1:])]}


class ProvisionedWorkspaceCase(ApiTestCase):
    """A daemon on the control database with the master keys, and a user whose workspace (on the
    enterprise plan) has its database: cls.workspace, cls.key, cls.target (the database's
    document) and cls.password (the workspace role's)."""

    database = CONTROL_DB
    reuse_database = True
    user_name = "provisioned"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        helper = cls()
        _, cls.workspace, cls.key = helper.new_user(cls.user_name)
        psql(CONTROL_DB, f"update flowgres.workspaces set plan = 'enterprise' where id = '{cls.workspace['id']}'")
        cls.target = helper.ok("POST", f"/api/v1/workspaces/{cls.workspace['id']}/database", key=cls.key)
        cls.password = tenant_password(cls.workspace["id"])


class DatabaseStepsTest(ProvisionedWorkspaceCase):
    """Workflows with db_* steps against a provisioned workspace database, through flowgresd's
    per-workspace pools, as the workspace's role."""

    daemon_settings = {"master_keys": KEYS, "db_step_timeout_ms": 1000, "db_step_max_rows": 50}
    user_name = "dbsteps"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        made = cls.tenant("create table notes (id serial primary key, body text not null, score int);"
                          "create table secrets (id int, value text); insert into secrets values (1, 'hidden')")
        assert made.returncode == 0, made.stderr

    @classmethod
    def tenant(cls, sql):
        return tenant_psql("127.0.0.1", cls.target["port"], cls.target["db_name"], cls.target["db_user"], cls.password, sql)

    def run_steps(self, *steps, inputs=None):
        app = self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/apps", {"name": f"d{time.time_ns()}"}, self.key, status=201)
        self.ok("POST", f"/api/v1/apps/{app['id']}/versions", {"version": "1.0.0", "workflow": chain(*steps)}, self.key, status=201)
        return self.ok("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": inputs or {}}, self.key)

    def failure_of(self, execution):
        self.assertEqual(execution["status"], "failed", execution)
        return execution["error"]

    def test_a_workflow_inserts_then_selects(self):
        execution = self.run_steps(
            {"id": "add", "type": "db_insert", "config": {"table": "notes", "values": {"body": "{{body}}", "score": "{{score}}"}}},
            {"id": "find", "type": "db_select", "config": {"table": "notes", "columns": ["body", "score"],
                                                           "where": {"column": "body", "op": "eq", "value": "{{body}}"},
                                                           "order_by": [{"column": "id", "direction": "desc"}], "limit": 5}},
            inputs={"body": "hello", "score": 7})
        self.assertEqual(execution["status"], "completed", execution)
        self.assertEqual(execution["outputs"]["out"], {"count": 1, "rows": [{"body": "hello", "score": 7}]})
        self.assertEqual(self.tenant("select score from notes where body = 'hello'").stdout.strip(), "7")
        event = json.loads(psql(CONTROL_DB, f"select details::text from flowgres.runtime_events where execution_id = '{execution['id']}' "
                                            f"and event_type = 'data_written'"))
        self.assertEqual(event, {"table": "notes", "rows": 1, "node": "add", "trigger": "trial"})

    def test_a_public_app_reads_the_workspace_database_for_visitors(self):
        self.tenant("insert into notes (body, score) values ('public', 42)")
        slug = f"lookup{time.time_ns() % 100000}"
        app = self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/apps", {"name": slug, "slug": slug}, self.key, status=201)
        version = self.ok("POST", f"/api/v1/apps/{app['id']}/versions", {"version": "1.0.0", "workflow": chain(
            {"id": "find", "type": "db_select", "config": {"table": "notes", "columns": ["score"], "where": {"body": "{{q}}"}}})},
                          self.key, status=201)
        self.ok("POST", f"/api/v1/apps/{app['id']}/publish",
                {"version_id": version["id"], "access_policy": {"access_mode": "public_anonymous"}}, self.key)
        workspace_slug = psql(CONTROL_DB, f"select slug from flowgres.workspaces where id = '{self.workspace['id']}'")
        code, _, run = self.daemon.request("POST", f"/runtime/{workspace_slug}/{slug}", body={"inputs": {"q": "public"}})
        self.assertEqual(code, 200, run)
        self.assertEqual(run["data"]["outputs"]["out"]["rows"], [{"score": 42}])

    def test_a_visitors_run_that_writes_is_reported_with_its_execution(self):
        # A visitor's run is admitted without its row; the write it makes is still reported,
        # naming its execution (stored first), and the run is recorded once, completed.
        slug = f"writer{time.time_ns() % 100000}"
        app = self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/apps", {"name": slug, "slug": slug}, self.key, status=201)
        version = self.ok("POST", f"/api/v1/apps/{app['id']}/versions", {"version": "1.0.0", "workflow": chain(
            {"id": "add", "type": "db_insert", "config": {"table": "notes", "values": {"body": "{{q}}", "score": 5}}})},
                          self.key, status=201)
        self.ok("POST", f"/api/v1/apps/{app['id']}/publish",
                {"version_id": version["id"], "access_policy": {"access_mode": "public_anonymous"}}, self.key)
        workspace_slug = psql(CONTROL_DB, f"select slug from flowgres.workspaces where id = '{self.workspace['id']}'")
        code, _, run = self.daemon.request("POST", f"/runtime/{workspace_slug}/{slug}", body={"inputs": {"q": "visitor"}})
        self.assertEqual((code, run["data"]["status"]), (200, "completed"), run)
        execution_id = run["data"]["execution_id"]
        self.assertEqual(psql(CONTROL_DB, f"select status || '/' || trigger from flowgres.executions where id = '{execution_id}'"),
                         "completed/runtime")
        event = json.loads(psql(CONTROL_DB, f"select details::text from flowgres.runtime_events where execution_id = '{execution_id}' "
                                            f"and event_type = 'data_written'"))
        self.assertEqual(event, {"table": "notes", "rows": 1, "node": "add", "trigger": "runtime"})
        self.assertEqual(self.tenant("select score from notes where body = 'visitor'").stdout.strip(), "5")

    def test_update_delete_and_query(self):
        self.tenant("insert into notes (body, score) values ('u1', 1), ('u2', 2), ('u3', 3)")
        execution = self.run_steps(
            {"id": "bump", "type": "db_update", "config": {"table": "notes", "values": {"score": 10},
                                                           "where": {"column": "body", "op": "in", "value": ["u1", "u2"]}}},
            {"id": "drop", "type": "db_delete", "config": {"table": "notes", "where": {"body": "u3"}, "returning": ["body"]}},
            {"id": "sum", "type": "db_query", "config": {"sql": "select sum(score)::int as total from notes where body like :prefix",
                                                         "params": {"prefix": "u%"}}})
        self.assertEqual(execution["status"], "completed", execution)
        self.assertEqual(execution["outputs"]["out"]["rows"], [{"total": 20}])
        logs = {log["node_id"]: log for log in execution["node_logs"]}
        self.assertEqual(logs["bump"]["output"]["count"], 2)
        self.assertEqual(logs["drop"]["output"], {"count": 1, "rows": [{"body": "u3"}]})

    def test_sql_injection_through_every_field(self):
        hostile = "x'); drop table notes; --"
        stored = self.run_steps({"id": "add", "type": "db_insert", "config": {"table": "notes", "values": {"body": "{{body}}"}}},
                                inputs={"body": hostile})
        self.assertEqual(stored["status"], "completed", stored)
        self.assertEqual(self.tenant("select count(*) from notes where body = $$x'); drop table notes; --$$").stdout.strip(), "1",
                         "a value carrying SQL is stored as text")
        attempts = [
            {"table": 'notes"; drop table notes; --'},
            {"table": "notes", "columns": ['body", (select value from secrets) as "x']},
            {"table": "notes", "where": {"column": "secrets.value", "op": "eq", "value": 1}},
            {"table": "notes", "where": {"body = body or 1=1 --": "x"}},
            {"table": "notes", "order_by": ["(select 1)"]},
            {"table": "pg_authid"},
            {"table": "../flowgres/workspaces"},
        ]
        for config in attempts:
            error = self.failure_of(self.run_steps({"id": "sel", "type": "db_select", "config": config}))
            self.assertEqual(error["error_code"], "NODE_FAILED", config)
            self.assertRegex(error["message"], "has no (table|column)", config)
        for sql in ("select * from flowgres.workspaces", "select * from pg_authid",
                    "select dblink_connect('dbname=postgres')", "copy notes to '/tmp/leak'"):
            error = self.failure_of(self.run_steps({"id": "q", "type": "db_query", "config": {"sql": sql}}))
            self.assertEqual(error["error_code"], "NODE_FAILED", sql)
        # The query parameter stays a value even when it looks like SQL.
        looked_up = self.run_steps({"id": "q", "type": "db_query", "config": {"sql": "select count(*)::int as n from notes where body = :b",
                                                                               "params": {"b": "{{q}}"}}}, inputs={"q": "' or '1'='1"})
        self.assertEqual(looked_up["outputs"]["out"]["rows"], [{"n": 0}])
        self.assertEqual(self.tenant("select count(*) from secrets").stdout.strip(), "1", "nothing was dropped")

    def test_a_table_the_role_may_not_use_is_not_there_and_only_granted_columns_are(self):
        # A step sees what information_schema.columns would show the workspace's role: a table
        # of the schema that someone else owns and never granted is missing; granted columns
        # of it are there, the others are not.
        server = SERVERS[self.target["server"]]
        database = self.target["db_name"]
        server.psql("create table data.vault (id int, code text, note text); insert into data.vault values (1, 'k', 'n')",
                    database=database)
        try:
            missing = self.failure_of(self.run_steps({"id": "s", "type": "db_select", "config": {"table": "vault"}}))
            self.assertRegex(missing["message"], "has no table")
            server.psql(f'grant select (id, note) on data.vault to "{self.target["db_user"]}"', database=database)
            shown = self.run_steps({"id": "s", "type": "db_select", "config": {"table": "vault", "columns": ["id", "note"]}})
            self.assertEqual(shown["outputs"]["out"]["rows"], [{"id": 1, "note": "n"}], shown)
            hidden = self.failure_of(self.run_steps({"id": "s", "type": "db_select",
                                                     "config": {"table": "vault", "columns": ["code"]}}))
            self.assertRegex(hidden["message"], "has no column")
        finally:
            server.psql("drop table data.vault", database=database)

    def test_a_change_to_a_table_counts_from_the_next_run_though_columns_are_kept(self):
        # Each worker keeps a table's columns across runs; a run that names a column added
        # since, or one dropped, looks at the catalog again before it answers.
        self.tenant("create table evolving (id int primary key, a text); insert into evolving values (1, 'x')")
        select = lambda *columns: {"id": "s", "type": "db_select", "config": {"table": "evolving", "columns": list(columns)}}
        for _ in range(6):  # every worker's runs have looked
            self.assertEqual(self.run_steps(select("a"))["outputs"]["out"]["rows"], [{"a": "x"}])
        self.tenant("alter table evolving add column b text default 'new'")
        for _ in range(4):
            added = self.run_steps(select("a", "b"))
            self.assertEqual(added["outputs"]["out"]["rows"], [{"a": "x", "b": "new"}], added)
        self.tenant("alter table evolving drop column b")
        for _ in range(4):
            dropped = self.failure_of(self.run_steps(select("b")))
            self.assertRegex(dropped["message"], "has no column")
            written = self.failure_of(self.run_steps(
                {"id": "w", "type": "db_insert", "config": {"table": "evolving", "values": {"id": 2, "b": "lost"}}}))
            self.assertRegex(written["message"], "has no column")
        self.assertEqual(self.tenant("select count(*) from evolving").stdout.strip(), "1", "nothing was written")
        # A statement the server cannot prepare says why, not that its prepared statement is missing.
        for _ in range(2):
            broken = self.failure_of(self.run_steps({"id": "q", "type": "db_query", "config": {"sql": "selec 1"}}))
            self.assertRegex(broken["message"], "syntax error")
        self.tenant("alter table evolving rename to evolved")
        for _ in range(4):
            self.assertRegex(self.failure_of(self.run_steps(select("a")))["message"], "has no table")

    def test_table_names_rendered_from_hostile_inputs_are_refused_and_never_kept(self):
        # A step's table may be a template: huge and ever-new names from visitors, many at once,
        # are "has no table", and the daemon serves on (that they are never kept is a unit test).
        slug = f"hostiletable{time.time_ns() % 100000}"
        app = self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/apps", {"name": slug, "slug": slug}, self.key, status=201)
        version = self.ok("POST", f"/api/v1/apps/{app['id']}/versions", {"version": "1.0.0", "workflow": chain(
            {"id": "find", "type": "db_select", "config": {"table": "{{t}}"}}, inputs=("t",))}, self.key, status=201)
        self.ok("POST", f"/api/v1/apps/{app['id']}/publish",
                {"version_id": version["id"], "access_policy": {"access_mode": "public_anonymous",
                                                                "rate_limit": {"per_ip": {"max_requests": 100000, "window_seconds": 60}}}},
                self.key)
        workspace_slug = psql(CONTROL_DB, f"select slug from flowgres.workspaces where id = '{self.workspace['id']}'")

        def visit(i):
            name = f"{i:06d}" + "x" * 400_000 + "'; drop table notes; --"
            code, _, run = self.daemon.request("POST", f"/runtime/{workspace_slug}/{slug}", body={"inputs": {"t": name}})
            return code, run["data"].get("status"), (run["data"].get("error") or {}).get("message", "")

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(visit, range(1, 65)))
        for code, status, message in answers:
            self.assertEqual((code, status), (200, "failed"))
            self.assertIn("has no table", message)
        self.assertEqual(self.tenant("select count(*) from notes").returncode, 0, "nothing was dropped")
        found = self.run_steps({"id": "s", "type": "db_select", "config": {"table": "notes", "limit": 1}})
        self.assertEqual(found["status"], "completed", found)

    def test_timeouts_and_row_limits(self):
        slow = self.failure_of(self.run_steps({"id": "q", "type": "db_query", "config": {"sql": "select pg_sleep(5)"}}))
        self.assertEqual(slow["error_code"], "NODE_TIMEOUT")
        many = self.run_steps({"id": "q", "type": "db_query", "config": {"sql": "select g from generate_series(1, 100000) g"}})
        self.assertEqual(many["outputs"]["out"]["count"], 100000)
        self.assertEqual(len(many["outputs"]["out"]["rows"]), 50, "rows are capped by db_step_max_rows")
        self.assertEqual(self.run_steps({"id": "s", "type": "db_select", "config": {"table": "notes", "limit": 100000}})
                         ["outputs"]["out"]["count"] <= 50, True)

    def test_a_workspace_without_a_database(self):
        _, other, key = self.new_user("dbless")
        psql(CONTROL_DB, f"update flowgres.workspaces set plan = 'enterprise' where id = '{other['id']}'")
        app = self.ok("POST", f"/api/v1/workspaces/{other['id']}/apps", {"name": "dbless"}, key, status=201)
        self.ok("POST", f"/api/v1/apps/{app['id']}/versions",
                {"version": "1.0.0", "workflow": chain({"id": "s", "type": "db_select", "config": {"table": "notes"}})}, key, status=201)
        execution = self.ok("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": {}}, key)
        self.assertEqual(self.failure_of(execution)["error_code"], "WORKSPACE_DATABASE_NOT_FOUND")

    def test_bad_step_configs_are_refused_at_version_creation(self):
        app = self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/apps", {"name": f"bad{time.time_ns()}"}, self.key, status=201)
        refused = self.fails("POST", f"/api/v1/apps/{app['id']}/versions",
                             422, "VALIDATION_FAILED", key=self.key,
                             body={"version": "1.0.0", "workflow": chain(
                                 {"id": "a", "type": "db_delete", "config": {"table": "notes"}},
                                 {"id": "b", "type": "db_query", "config": {"sql": "select 1; drop table notes"}})})
        fields = sorted(problem["field"] for problem in refused["data"]["details"])
        self.assertEqual(fields, ["workflow.nodes[1].config.where", "workflow.nodes[2].config.sql"])

    def test_a_busy_workspace_does_not_starve_another(self):
        _, other, other_key = self.new_user("dbneighbour")
        psql(CONTROL_DB, f"update flowgres.workspaces set plan = 'enterprise' where id = '{other['id']}'")
        self.ok("POST", f"/api/v1/workspaces/{other['id']}/database", key=other_key)
        one_worker = Daemon(CONTROL_DB, master_keys=KEYS, workers=1, workspace_pool_size=2, workspace_pool_global_cap=4,
                            db_step_timeout_ms=10000).start()
        try:
            def app_of(workspace, key, step):
                app = self.ok("POST", f"/api/v1/workspaces/{workspace['id']}/apps", {"name": f"f{time.time_ns()}"}, key, status=201)
                self.ok("POST", f"/api/v1/apps/{app['id']}/versions", {"version": "1.0.0", "workflow": chain(step)}, key, status=201)
                return app
            busy = app_of(self.workspace, self.key, {"id": "q", "type": "db_query", "config": {"sql": "select pg_sleep(1.5) is null as slept"}})
            quick = app_of(other, other_key, {"id": "q", "type": "db_query", "config": {"sql": "select 1 as one"}})
            # Six slow runs of the busy workspace at once (synchronous, so this daemon runs them,
            # not another one watching the same control database), then one of the other.
            from concurrent.futures import ThreadPoolExecutor
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=6) as threads:
                flood = [threads.submit(one_worker.request, "POST", f"/api/v1/apps/{busy['id']}/runs", {"inputs": {}},
                                        key=self.key, timeout=30) for _ in range(6)]
                time.sleep(0.3)
                code, _, document = one_worker.request("POST", f"/api/v1/apps/{quick['id']}/runs", {"inputs": {}}, key=other_key)
                quick_seconds = time.monotonic() - started
                statuses = [future.result()[2]["data"]["status"] for future in flood]
            self.assertEqual((code, document["data"]["status"]), (200, "completed"), document)
            self.assertLess(quick_seconds, 1.4, "the other workspace ran at once, beside the busy one's queue")
            self.assertEqual(statuses, ["completed"] * 6, "the busy workspace's runs queued behind its own two connections")
            self.assertGreater(time.monotonic() - started, 4, "six 1.5 s queries on two connections take three rounds")
        finally:
            one_worker.stop()

    def test_a_notification_is_a_hint_rechecked_not_an_order(self):
        first = self.run_steps({"id": "s", "type": "db_select", "config": {"table": "secrets"}})
        self.assertEqual(first["status"], "completed", first)
        server = SERVERS[self.target["server"]]
        pool = lambda: server.psql(f"select string_agg(pid::text, ',' order by pid) from pg_stat_activity "
                                   f"where datname = '{self.target['db_name']}' and application_name = 'flowgresd-workspace'")
        before = pool()
        self.assertTrue(before)
        # Any role that can connect to the control database can send this, naming any workspace.
        for _ in range(20):
            psql(CONTROL_DB, f"notify flowgres_workspace_databases, '{self.workspace['id']}'")
        time.sleep(1.0)
        again = self.run_steps({"id": "s", "type": "db_select", "config": {"table": "secrets"}})
        self.assertEqual(again["status"], "completed", again)
        # (Two workers, a pool each: the second run may have opened the other worker's.)
        self.assertLessEqual(set(before.split(",")), set(pool().split(",")), "nothing changed, so the pool's connections stayed")

    def test_a_rotated_password_drops_the_pool(self):
        first = self.run_steps({"id": "s", "type": "db_select", "config": {"table": "secrets"}})
        self.assertEqual(first["status"], "completed", first)
        self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/database/rotate-secret", key=self.key)
        type(self).password = tenant_password(self.workspace["id"])
        deadline = time.monotonic() + 10
        execution = None
        while time.monotonic() < deadline:
            execution = self.run_steps({"id": "s", "type": "db_select", "config": {"table": "secrets"}})
            if execution["status"] == "completed":
                break
            time.sleep(0.2)
        self.assertEqual(execution["status"], "completed", execution)


class AppDatabaseRolesTest(ProvisionedWorkspaceCase):
    """Per-app database roles (seed §113): read, write and admin rights, revoking, expiry."""

    daemon_settings = {"master_keys": KEYS, "app_role_sweep_ms": 300}
    user_name = "approles"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        helper = cls()
        made = cls.as_role(cls.target["db_user"], cls.password, "create table notes (id serial primary key, body text);"
                                                                "insert into notes (body) values ('first')")
        assert made.returncode == 0, made.stderr
        cls.app = helper.ok("POST", f"/api/v1/workspaces/{cls.workspace['id']}/apps", {"name": "roles"}, cls.key, status=201)

    @classmethod
    def as_role(cls, user, password, sql):
        return tenant_psql("127.0.0.1", cls.target["port"], cls.target["db_name"], user, password, sql)

    def new_role(self, role_type, **extra):
        role = self.ok("POST", f"/api/v1/apps/{self.app['id']}/database-roles", {"role_type": role_type, **extra}, self.key, status=201)
        sealed = psql(CONTROL_DB, f"select secret_ref from flowgres.app_database_roles where id = '{role['id']}'")
        return role, open_sealed(KEYS, sealed, f"app_database_role:{role['id']}")

    def test_read_write_and_admin_rights(self):
        reader, reader_password = self.new_role("read")
        self.assertEqual((reader["status"], reader["role_type"]), ("active", "read"))
        self.assertNotIn(reader_password, json.dumps(reader))
        self.assertEqual(self.as_role(reader["role_name"], reader_password, "select body from notes order by id limit 1").stdout.strip(), "first")
        self.assertIn("permission denied", self.as_role(reader["role_name"], reader_password, "insert into notes (body) values ('x')").stderr)
        self.assertIn("permission denied", self.as_role(reader["role_name"], reader_password, "create table mine (x int)").stderr)

        writer, writer_password = self.new_role("write")
        self.assertEqual(self.as_role(writer["role_name"], writer_password, "insert into notes (body) values ('w')").returncode, 0)
        self.assertIn("permission denied", self.as_role(writer["role_name"], writer_password, "create table mine (x int)").stderr)
        # Tables the workspace role makes later come with the same rights.
        self.as_role(self.target["db_user"], self.password, "create table later (x int)")
        self.assertEqual(self.as_role(writer["role_name"], writer_password, "insert into later values (1)").returncode, 0)
        self.assertEqual(self.as_role(reader["role_name"], reader_password, "select count(*) from later").stdout.strip(), "1")

        admin, admin_password = self.new_role("admin")
        self.assertEqual(self.as_role(admin["role_name"], admin_password, "create table made_by_admin (x int)").returncode, 0)
        # None of them reaches another database on the server.
        self.assertNotEqual(tenant_psql("127.0.0.1", self.target["port"], "postgres", admin["role_name"], admin_password, "select 1").returncode, 0)

        listed = self.ok("GET", f"/api/v1/apps/{self.app['id']}/database-roles", key=self.key)
        self.assertTrue({reader["id"], writer["id"], admin["id"]} <= {role["id"] for role in listed})
        self.assertNotIn("enc:v1", json.dumps(listed))

        revoked = self.ok("POST", f"/api/v1/database-roles/{admin['id']}/revoke", {"reason": "done"}, self.key)
        self.assertEqual((revoked["status"], revoked["revoked_reason"]), ("revoked", "done"))
        self.assertNotEqual(self.as_role(admin["role_name"], admin_password, "select 1").returncode, 0)
        server = SERVERS[self.target["server"]]
        self.assertEqual(server.psql(f"select count(*) from pg_roles where rolname = '{admin['role_name']}'"), "0")
        self.assertEqual(server.psql("select pg_get_userbyid(relowner) from pg_class where relname = 'made_by_admin'",
                                     database=self.target["db_name"]), self.target["db_user"], "what it made stays, owned by the workspace")
        self.fails("POST", f"/api/v1/database-roles/{admin['id']}/revoke", 409, "STATE_CONFLICT", key=self.key)

    def test_an_expired_role_is_refused_then_revoked(self):
        expires = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)).isoformat()
        role, password = self.new_role("read", expires_at=expires)
        self.assertEqual(self.as_role(role["role_name"], password, "select 1").returncode, 0)
        deadline = time.monotonic() + 20
        status = role["status"]
        while time.monotonic() < deadline and status != "revoked":
            time.sleep(0.3)
            status = next(item["status"] for item in self.ok("GET", f"/api/v1/apps/{self.app['id']}/database-roles", key=self.key)
                          if item["id"] == role["id"])
        self.assertEqual(status, "revoked")
        self.assertNotEqual(self.as_role(role["role_name"], password, "select 1").returncode, 0)

    def test_bad_input_and_permissions(self):
        path = f"/api/v1/apps/{self.app['id']}/database-roles"
        self.fails("POST", path, 422, "VALIDATION_FAILED", {"role_type": "owner"}, self.key)
        self.fails("POST", path, 422, "VALIDATION_FAILED", {"role_type": "read", "expires_at": "2001-01-01T00:00:00Z"}, self.key)
        self.fails("POST", path, 422, "VALIDATION_FAILED", {}, self.key)
        _, _, stranger = self.new_user("rolestranger")
        self.fails("POST", path, 404, "APP_NOT_FOUND", {"role_type": "read"}, stranger)
        self.fails("GET", path, 404, "APP_NOT_FOUND", key=stranger)
        self.fails("POST", "/api/v1/database-roles/00000000-0000-0000-0000-000000000007/revoke", 404, "DATABASE_ROLE_NOT_FOUND", key=self.key)


NOTES_SCHEMA = {"tables": [
    {"name": "people", "columns": [{"name": "id", "type": "bigint", "identity": True, "primary_key": True},
                                   {"name": "email", "type": "varchar(200)", "nullable": False, "unique": True}]},
    {"name": "notes", "columns": [{"name": "id", "type": "bigint", "identity": True, "primary_key": True},
                                  {"name": "author", "type": "bigint",
                                   "references": {"table": "people", "column": "id", "on_delete": "cascade"}},
                                  {"name": "body", "type": "text", "nullable": False, "default": "it's"},
                                  {"name": "score", "type": "integer", "default": -5},
                                  {"name": "price", "type": "numeric(10,2)", "default": 1.50},
                                  {"name": "meta", "type": "jsonb", "default": {"a": [1, "x"]}},
                                  {"name": "token", "type": "uuid", "default": {"expression": "gen_random_uuid()"}},
                                  {"name": "created_at", "type": "timestamptz", "nullable": False,
                                   "default": {"expression": "now()"}}],
     "indexes": [{"columns": ["author", "created_at"]}, {"name": "notes_token_unique", "columns": ["token"], "unique": True}]}]}


class SchemaChangesTest(ProvisionedWorkspaceCase):
    """An app version's db_schema applied to the workspace database through review (seed §70,
    §114): the plan against the real catalog, destructive changes held for explicit approval,
    a backup before and a check after each apply, stale plans and failing statements rolled
    back whole."""

    user_name = "schemas"

    @classmethod
    def setUpClass(cls):
        cls.daemon_settings = {"master_keys": KEYS, "backup_dir": os.path.join(SERVERS["root"], "schema-backups")}
        super().setUpClass()
        cls.versions = 0

    def tenant(self, sql):
        return tenant_psql("127.0.0.1", self.target["port"], self.target["db_name"], self.target["db_user"], self.password, sql)

    def app_with_schema(self, db_schema):
        app = self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/apps", {"name": f"s{time.time_ns()}"}, self.key, status=201)
        return app, self.version(app, db_schema)

    def version(self, app, db_schema):
        SchemaChangesTest.versions += 1
        return self.ok("POST", f"/api/v1/apps/{app['id']}/versions",
                       {"version": f"1.{self.versions}.0", "workflow": chain(inputs=()), "db_schema": db_schema}, self.key, status=201)

    def submit(self, app, version, key=None):
        return self.ok("POST", f"/api/v1/apps/{app['id']}/schema-changes", {"version_id": version["id"]}, key or self.key, status=201)

    def approve_and_apply(self, change, **approval):
        self.assertEqual(self.ok("POST", f"/api/v1/schema-changes/{change['id']}/approve", approval, self.key)["status"], "approved")
        return self.ok("POST", f"/api/v1/schema-changes/{change['id']}/apply", key=self.key)

    def columns(self, table):
        return self.tenant(f"select string_agg(column_name, ',' order by ordinal_position) from information_schema.columns "
                           f"where table_schema = 'data' and table_name = '{table}'").stdout.strip()

    def test_submit_review_apply_and_verify(self):
        app, version = self.app_with_schema(NOTES_SCHEMA)
        change = self.submit(app, version)
        self.assertEqual((change["status"], change["destructive"]), ("planned", False), change)
        self.assertEqual([step["action"] for step in change["plan"]["steps"]],
                         ["create_table", "create_table", "create_index", "create_index", "add_foreign_key"])
        self.assertEqual(self.columns("notes"), "", "nothing is applied before the review")
        applied = self.approve_and_apply(change, comment="looks right")
        self.assertEqual(applied["status"], "applied", applied)
        self.assertEqual(applied["review_comment"], "looks right")

        # What was applied works as declared, and belongs to the workspace's role.
        made = self.tenant("insert into people (email) values ('a@example.com') returning id;"
                           "insert into notes (author) select id from people returning body || '|' || score || '|' || price || '|' || "
                           "(meta->>'a') || '|' || (token is not null) || '|' || (created_at is not null)")
        self.assertEqual(made.returncode, 0, made.stderr)
        self.assertIn("it's|-5|1.50|[1, \"x\"]|true|true", made.stdout)
        self.assertIn("duplicate key", self.tenant("insert into people (email) values ('a@example.com')").stderr)
        owners = self.tenant("select string_agg(distinct tableowner, ',') from pg_tables where schemaname = 'data' "
                             "and tablename in ('people', 'notes')").stdout.strip()
        self.assertEqual(owners, self.target["db_user"])
        recorded = self.tenant(f"select array_length(statements, 1) from flowgres_meta.schema_changes where change_id = '{change['id']}'")
        self.assertEqual(recorded.stdout.strip(), "5")

        # A backup was taken first, and the same schema again has nothing to change: the
        # planner reads PostgreSQL's catalog the way it writes DDL.
        backup = self.ok("GET", f"/api/v1/workspaces/{self.workspace['id']}/database/backups", key=self.key)[0]
        self.assertEqual((backup["id"], backup["reason"], backup["status"]), (applied["backup_id"], "pre_change", "completed"))
        again = self.submit(app, version)
        self.assertEqual((again["status"], again["plan"]["steps"]), ("unchanged", []), again)
        self.fails("POST", f"/api/v1/schema-changes/{again['id']}/approve", 409, "STATE_CONFLICT", key=self.key)
        listed = self.ok("GET", f"/api/v1/apps/{app['id']}/schema-changes", key=self.key)
        self.assertEqual([entry["id"] for entry in listed], [again["id"], change["id"]])
        self.assertEqual(self.ok("GET", f"/api/v1/schema-changes/{change['id']}", key=self.key)["db_schema"], NOTES_SCHEMA)
        self.assertEqual(int(psql(CONTROL_DB, f"select count(*) from flowgres.runtime_events where event_type = 'db.schema.applied' "
                                              f"and details->>'change_id' = '{change['id']}'")), 1)

    def test_destructive_changes_wait_for_explicit_approval_and_going_back_is_a_change(self):
        first = {"tables": [{"name": "orders", "columns": [{"name": "id", "type": "integer", "primary_key": True},
                                                           {"name": "code", "type": "text"}, {"name": "legacy", "type": "text"}]}]}
        app, v1 = self.app_with_schema(first)
        self.approve_and_apply(self.submit(app, v1))
        self.tenant("insert into orders values (1, 'abc', 'old data')")
        second = {"tables": [{"name": "orders", "columns": [{"name": "id", "type": "bigint", "primary_key": True},
                                                            {"name": "code", "type": "varchar(10)"}]}]}
        v2 = self.version(app, second)
        change = self.submit(app, v2)
        self.assertTrue(change["destructive"])
        self.assertEqual(set(change["plan"]["risks"]), {"table_rewrite", "type_narrowing", "drop_column"})
        refused = self.fails("POST", f"/api/v1/schema-changes/{change['id']}/approve", 409, "SCHEMA_CHANGE_DESTRUCTIVE", key=self.key)
        self.assertIn("drop_column", refused["data"]["details"]["risks"])
        self.assertEqual(self.ok("GET", f"/api/v1/schema-changes/{change['id']}", key=self.key)["status"], "planned")
        self.fails("POST", f"/api/v1/schema-changes/{change['id']}/apply", 409, "STATE_CONFLICT", key=self.key)
        self.fails("POST", f"/api/v1/schema-changes/{change['id']}/approve", 422, "VALIDATION_FAILED",
                   body={"allow_destructive": "yes"}, key=self.key)
        applied = self.approve_and_apply(change, allow_destructive=True)
        self.assertEqual((applied["status"], applied["allow_destructive"]), ("applied", True))
        self.assertEqual(self.columns("orders"), "id,code")
        self.assertEqual(self.tenant("select format_type(atttypid, atttypmod) from pg_attribute "
                                     "where attrelid = 'data.orders'::regclass and attname = 'id'").stdout.strip(), "bigint")
        # Back to the first version: a new change that adds the column again (its data went
        # with the drop; the pre_change backup holds it).
        back = self.submit(app, v1)
        self.assertEqual([step["action"] for step in back["plan"]["steps"]], ["alter_type", "alter_type", "add_column"])
        self.approve_and_apply(back, allow_destructive=True)
        self.assertEqual(self.columns("orders"), "id,code,legacy")
        self.assertEqual(self.tenant("select code from orders").stdout.strip(), "abc")

    def test_a_plan_made_against_another_schema_is_stale(self):
        app, version = self.app_with_schema({"tables": [{"name": "stale_t", "columns": [{"name": "a", "type": "integer"}]}]})
        change = self.submit(app, version)
        self.assertEqual(self.ok("POST", f"/api/v1/schema-changes/{change['id']}/approve", key=self.key)["status"], "approved")
        self.assertEqual(self.tenant("create table sneaked_in (x int)").returncode, 0)
        self.fails("POST", f"/api/v1/schema-changes/{change['id']}/apply", 409, "SCHEMA_CHANGE_STALE", key=self.key)
        failed = self.ok("GET", f"/api/v1/schema-changes/{change['id']}", key=self.key)
        self.assertEqual((failed["status"], failed["error_code"]), ("failed", "stale"))
        self.assertEqual(self.columns("stale_t"), "")
        self.fails("POST", f"/api/v1/schema-changes/{change['id']}/apply", 409, "STATE_CONFLICT", key=self.key)
        self.assertEqual(self.ok("GET", f"/api/v1/workspaces/{self.workspace['id']}/database", key=self.key)["operation_in_progress"],
                         None)
        # Submitted again, it plans against what is there now.
        self.assertEqual(self.approve_and_apply(self.submit(app, version))["status"], "applied")
        self.assertEqual(self.columns("stale_t"), "a")

    def test_a_failing_statement_rolls_the_whole_change_back(self):
        app, v1 = self.app_with_schema({"tables": [{"name": "loose", "columns": [{"name": "a", "type": "integer"},
                                                                                 {"name": "b", "type": "text"}]}]})
        self.approve_and_apply(self.submit(app, v1))
        self.tenant("insert into loose values (1, null)")
        v2 = self.version(app, {"tables": [{"name": "loose", "columns": [{"name": "a", "type": "integer"},
                                                                         {"name": "b", "type": "text", "nullable": False},
                                                                         {"name": "c", "type": "text"}],
                                            "indexes": [{"columns": ["a"]}]}]})
        change = self.submit(app, v2)
        self.assertIn("set_not_null", change["plan"]["risks"])
        self.ok("POST", f"/api/v1/schema-changes/{change['id']}/approve", key=self.key)
        failed = self.fails("POST", f"/api/v1/schema-changes/{change['id']}/apply", 409, "SCHEMA_CHANGE_FAILED", key=self.key)
        self.assertIn("null", failed["message"].lower())
        self.assertEqual(self.columns("loose"), "a,b", "nothing of the change stayed")
        self.assertEqual(self.tenant("select count(*) from pg_indexes where schemaname = 'data' and tablename = 'loose'").stdout.strip(), "0")
        after = self.ok("GET", f"/api/v1/schema-changes/{change['id']}", key=self.key)
        self.assertEqual((after["status"], after["error_code"]), ("failed", "apply_failed"))
        self.assertIsNotNone(after["backup_id"], "the backup taken before stays named")
        self.assertEqual(self.ok("GET", f"/api/v1/workspaces/{self.workspace['id']}/database", key=self.key)["status"], "ready")
        self.assertGreaterEqual(int(psql(CONTROL_DB, f"select count(*) from flowgres.runtime_events where event_type = "
                                                     f"'db.schema.apply_failed' and details->>'change_id' = '{change['id']}'")), 1)

    def test_an_apply_is_taken_up_again_after_its_daemon_died(self):
        workspace_id = self.workspace["id"]
        lapse = (f"update flowgres.workspace_databases set claimed_until = now() - interval '1 second' "
                 f"where workspace_id = '{workspace_id}'")
        app, version = self.app_with_schema({"tables": [{"name": "resumed", "columns": [{"name": "a", "type": "text"}]}]})
        change = self.submit(app, version)
        apply = f"/api/v1/schema-changes/{change['id']}/apply"
        self.ok("POST", f"/api/v1/schema-changes/{change['id']}/approve", key=self.key)
        # A daemon claimed it and died before doing anything: while its lease runs, others wait;
        # after it, the next apply does the work.
        psql(CONTROL_DB, f"select flowgres.schema_change_apply_begin('{change['id']}', 'dead-daemon')")
        self.fails("POST", apply, 409, "PROVISION_IN_PROGRESS", key=self.key)
        psql(CONTROL_DB, lapse)
        self.assertEqual(self.ok("POST", apply, key=self.key)["status"], "applied")
        self.assertEqual(self.columns("resumed"), "a")

        # One that committed before its daemon died is reported applied, not run twice.
        version2 = self.version(app, {"tables": [{"name": "resumed", "columns": [{"name": "a", "type": "text"},
                                                                                 {"name": "b", "type": "text"}]}]})
        change2 = self.submit(app, version2)
        self.ok("POST", f"/api/v1/schema-changes/{change2['id']}/approve", key=self.key)
        psql(CONTROL_DB, f"select flowgres.schema_change_apply_begin('{change2['id']}', 'dead-daemon')")
        server = SERVERS[self.target["server"]]
        server.psql(f"begin; set local role {self.target['db_user']}; alter table data.resumed add column b text; reset role; "
                    f"insert into flowgres_meta.schema_changes (change_id, statements) values ('{change2['id']}', "
                    f"'{{alter table data.resumed add column b text}}'); commit", database=self.target["db_name"])
        psql(CONTROL_DB, lapse)
        done = self.ok("POST", f"/api/v1/schema-changes/{change2['id']}/apply", key=self.key)
        self.assertEqual((done["status"], done["backup_id"]), ("applied", None))
        self.assertEqual(self.columns("resumed"), "a,b")

    def test_async_apply_answers_202_then_finishes(self):
        app, version = self.app_with_schema({"tables": [{"name": "later", "columns": [{"name": "a", "type": "text"}]}]})
        change = self.submit(app, version)
        self.ok("POST", f"/api/v1/schema-changes/{change['id']}/approve", key=self.key)
        queued = self.ok("POST", f"/api/v1/schema-changes/{change['id']}/apply?async=true", key=self.key, status=202)
        self.assertEqual(queued["status"], "applying")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.ok("GET", f"/api/v1/schema-changes/{change['id']}", key=self.key)["status"] == "applying":
            time.sleep(0.1)
        self.assertEqual(self.ok("GET", f"/api/v1/schema-changes/{change['id']}", key=self.key)["status"], "applied")
        self.assertEqual(self.columns("later"), "a")

    def test_who_may_do_what_and_bad_input(self):
        app, version = self.app_with_schema({"tables": [{"name": "guarded", "columns": [{"name": "a", "type": "text"}]}]})
        member, _, member_key = self.new_user("schemamember")
        self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/members", {"email": member["email"], "role": "member"}, self.key,
                status=201)
        self.ok("POST", f"/api/v1/workspaces/{self.workspace['id']}/members/accept", key=member_key)
        change = self.submit(app, version, key=member_key)  # members edit apps
        self.fails("POST", f"/api/v1/schema-changes/{change['id']}/approve", 403, "PERMISSION_DENIED", key=member_key)
        self.fails("POST", f"/api/v1/schema-changes/{change['id']}/reject", 403, "PERMISSION_DENIED", key=member_key)
        _, _, stranger_key = self.new_user("schemastranger")
        self.fails("GET", f"/api/v1/schema-changes/{change['id']}", 404, "SCHEMA_CHANGE_NOT_FOUND", key=stranger_key)
        self.fails("POST", f"/api/v1/schema-changes/{change['id']}/apply", 404, "SCHEMA_CHANGE_NOT_FOUND", key=stranger_key)
        self.fails("POST", f"/api/v1/apps/{app['id']}/schema-changes", 404, "APP_NOT_FOUND", body={"version_id": version["id"]},
                   key=stranger_key)
        rejected = self.ok("POST", f"/api/v1/schema-changes/{change['id']}/reject", {"comment": "<b>not now</b>"}, self.key)
        self.assertEqual((rejected["status"], rejected["review_comment"]), ("rejected", "<b>not now</b>"))
        self.fails("POST", f"/api/v1/schema-changes/{change['id']}/apply", 409, "STATE_CONFLICT", key=self.key)
        self.assertEqual(self.columns("guarded"), "")

        path = f"/api/v1/apps/{app['id']}/schema-changes"
        self.fails("POST", path, 422, "VALIDATION_FAILED", body={}, key=self.key)
        self.fails("POST", path, 422, "VALIDATION_FAILED", body={"version_id": "'; drop table x; --"}, key=self.key)
        self.fails("POST", path, 404, "VERSION_NOT_FOUND", body={"version_id": "00000000-0000-0000-0000-000000000001"}, key=self.key)
        self.fails("GET", "/api/v1/schema-changes/00000000-0000-0000-0000-000000000002", 404, "SCHEMA_CHANGE_NOT_FOUND", key=self.key)
        self.fails("POST", f"/api/v1/schema-changes/{change['id']}/reject", 422, "VALIDATION_FAILED", body={"comment": "x" * 2001},
                   key=self.key)
        bad = self.fails("POST", f"/api/v1/apps/{app['id']}/versions", 422, "VALIDATION_FAILED", key=self.key, body={
            "version": "9.0.0", "workflow": chain(inputs=()),
            "db_schema": {"tables": [{"name": "ok", "columns": [{"name": "a\"; drop table data.guarded; --", "type": "text"},
                                                                 {"name": "b", "type": "text", "default": {"expression": "pg_sleep(60)"}}]}],
                          "drop_tables": ["../../etc/passwd"]}})
        self.assertEqual([entry["field"] for entry in bad["data"]["details"]],
                         ["db_schema.tables[0].columns[0].name", "db_schema.tables[0].columns[1].default.expression",
                          "db_schema.drop_tables[0]"])
        # Another app's version is not this app's.
        other, other_version = self.app_with_schema({})
        self.fails("POST", path, 404, "VERSION_NOT_FOUND", body={"version_id": other_version["id"]}, key=self.key)

    def test_the_command_line_does_the_same(self):
        app, version = self.app_with_schema({"tables": [{"name": "from_cli", "columns": [{"name": "a", "type": "text"}]}]})
        cli = WorkspaceDatabaseTest.cli
        backups = ("--backup-dir", os.path.join(SERVERS["root"], "cli-schema-backups"))
        change = json.loads(cli("schema", "submit", app["id"], version["id"], check=True).stdout)
        self.assertEqual(change["status"], "planned")
        shown = json.loads(cli("schema", "show", change["id"], check=True).stdout)
        self.assertEqual(shown["plan"]["steps"][0]["sql"], 'create table "data"."from_cli" ("a" text)')
        self.assertEqual(json.loads(cli("schema", "approve", change["id"], "--comment", "dba", check=True).stdout)["status"], "approved")
        applied = json.loads(cli("schema", "apply", change["id"], *backups, check=True).stdout)
        self.assertEqual(applied["status"], "applied")
        self.assertEqual(self.columns("from_cli"), "a")
        unknown = cli("schema", "apply", "00000000-0000-0000-0000-000000000003", *backups)
        self.assertEqual(unknown.returncode, 1)
        self.assertIn("SCHEMA_CHANGE_NOT_FOUND", unknown.stderr)

        # Tenant migrations rolled back below the one that keeps applied changes: there is
        # nowhere to record a change, so none is applied until the database is migrated again.
        cli("rollback", self.workspace["id"], "--to", "1", check=True)
        try:
            app2, version2 = self.app_with_schema({"tables": [{"name": "unrecorded", "columns": [{"name": "a", "type": "text"}]}]})
            change2 = self.submit(app2, version2)
            self.ok("POST", f"/api/v1/schema-changes/{change2['id']}/approve", key=self.key)
            failed = self.fails("POST", f"/api/v1/schema-changes/{change2['id']}/apply", 409, "SCHEMA_CHANGE_FAILED", key=self.key)
            self.assertIn("migrate it first", failed["message"])
            self.assertEqual(self.columns("unrecorded"), "")
        finally:
            cli("migrate", self.workspace["id"], check=True)


if __name__ == "__main__":
    main()
