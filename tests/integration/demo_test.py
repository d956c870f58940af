"""make run's demo with its workspace database (scripts/demo.sql, scripts/demo_database.sh):
the pool server it starts, the demo workspace's database provisioned there, the guestbook app's
db_schema taken through the schema-change review and applied, the app published and writing
to that database for anonymous visitors, and a second run that changes nothing."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import PG_PORT, PROVISION, ROOT, SOCKET_DIR, Daemon, free_port, fresh_database, main, psql

DATABASE = "flowgres_demo"
CONTROL = f"host={SOCKET_DIR} port={PG_PORT} user=postgres dbname={DATABASE}"


class DemoDatabaseTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        fresh_database(DATABASE)
        subprocess.run(["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", DATABASE, "-qX", "-v", "ON_ERROR_STOP=1",
                        "-f", os.path.join(ROOT, "scripts", "demo.sql")], check=True, capture_output=True, timeout=60)
        cls.root = tempfile.mkdtemp(prefix="flowgres-demo-")
        os.chmod(cls.root, 0o755)
        cls.pool = os.path.join(cls.root, "pool")
        cls.keys = subprocess.run([PROVISION, "keygen", "--id", "demo1"], capture_output=True, text=True, check=True).stdout.strip()
        cls.environment = dict(os.environ, FLOWGRES_MASTER_KEYS=cls.keys, FLOWGRES_BACKUP_DIR=os.path.join(cls.root, "backups"))
        cls.port = free_port()
        cls.first = cls.set_up_database()

    @classmethod
    def tearDownClass(cls):
        subprocess.run([os.path.join(ROOT, "scripts", "cluster.sh"), "down", cls.pool], capture_output=True, timeout=120)
        shutil.rmtree(cls.root, ignore_errors=True)

    @classmethod
    def set_up_database(cls):
        return subprocess.run([os.path.join(ROOT, "scripts", "demo_database.sh"), CONTROL, cls.pool, str(cls.port)],
                              capture_output=True, text=True, timeout=300, env=cls.environment)

    def test_the_guestbook_writes_to_the_demo_workspace_database(self):
        self.assertEqual(self.first.returncode, 0, self.first.stderr)
        self.assertIn("demo workspace database provisioned", self.first.stdout)
        self.assertIn("its table reviewed and applied", self.first.stdout)
        change = json.loads(psql(DATABASE, "select to_jsonb(c)::text from flowgres.schema_changes c"))
        self.assertEqual((change["status"], change["review_comment"]), ("applied", "the demo's table"))
        self.assertIsNotNone(change["backup_id"], "a backup was taken before the change")

        daemon = Daemon(DATABASE, master_keys=self.keys).start()
        try:
            for name, message in (("Ada", "first"), ("Bobby", "'); drop table entries; --")):
                code, _, document = daemon.request("POST", "/runtime/demo/guestbook", {"inputs": {"name": name, "message": message}})
                self.assertEqual((code, document["data"]["status"]), (200, "completed"), document)
            rows = document["data"]["outputs"]["output"]
            self.assertEqual([(row["name"], row["message"]) for row in rows],
                             [("Bobby", "'); drop table entries; --"), ("Ada", "first")])
            self.assertTrue(all(row["signed_at"] for row in rows))
            code, _, document = daemon.request("POST", "/runtime/demo/guestbook", {"inputs": {"name": "x" * 101, "message": "m"}})
            self.assertEqual((code, document["error_code"]), (422, "VALIDATION_FAILED"), document)
        finally:
            daemon.stop()

    def test_running_it_again_changes_nothing(self):
        again = self.set_up_database()
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(again.stdout, "")
        self.assertEqual(psql(DATABASE, "select count(*) from flowgres.schema_changes"), "1")
        self.assertEqual(psql(DATABASE, "select count(*) from flowgres.workspace_databases"), "1")


if __name__ == "__main__":
    main()
