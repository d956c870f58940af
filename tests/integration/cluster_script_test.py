#!/usr/bin/env python3
"""scripts/cluster.sh, which `make run` and `make test` stand on: a cluster made on one port
moves to another when asked (running or not); a pool server refuses to, and says what to do."""

import os
import shutil
import socket
import subprocess
import tempfile
import unittest

from harness import ROOT, main

CLUSTER = os.path.join(ROOT, "scripts", "cluster.sh")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(directory, port):
    result = subprocess.run(["psql", "-h", os.path.join(directory, "sock"), "-p", str(port), "-U", "postgres",
                             "-d", "postgres", "-AtXc", "select current_setting('port')"],
                            capture_output=True, text=True, timeout=30)
    return result.stdout.strip() == str(port)


class ClusterPorts(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="flowgres-cluster-")
        os.chmod(self.directory, 0o755)

    def tearDown(self):
        for name in ("main", "pool"):
            subprocess.run([CLUSTER, "down", os.path.join(self.directory, name)], capture_output=True, timeout=60)
        shutil.rmtree(self.directory, ignore_errors=True)

    def test_a_cluster_moves_to_the_port_it_is_asked_for(self):
        directory = os.path.join(self.directory, "main")
        first, second, third = free_port(), free_port(), free_port()
        env = {**os.environ, "FLOWGRES_CLUSTER_SETTINGS": "shared_preload_libraries = ''"}
        subprocess.run([CLUSTER, "up", directory, str(first)], check=True, timeout=120, env=env)
        self.assertTrue(answers(directory, first))
        moved = subprocess.run([CLUSTER, "up", directory, str(second)], capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(moved.returncode, 0, moved.stderr)
        self.assertIn(f"moving from port {first} to {second}", moved.stderr)
        self.assertTrue(answers(directory, second), "a running cluster is restarted on the new port")
        subprocess.run([CLUSTER, "down", directory], check=True, timeout=60)
        subprocess.run([CLUSTER, "up", directory, str(third)], check=True, timeout=120, env=env)
        self.assertTrue(answers(directory, third), "and a stopped one starts on it")

    def test_a_pool_server_keeps_its_port_and_says_why(self):
        directory = os.path.join(self.directory, "pool")
        first, second = free_port(), free_port()
        subprocess.run([CLUSTER, "pool", directory, str(first)], check=True, timeout=120)
        refused = subprocess.run([CLUSTER, "pool", directory, str(second)], capture_output=True, text=True, timeout=60)
        self.assertEqual(refused.returncode, 1)
        self.assertIn(f"FLOWGRES_POOL_PORT={first}", refused.stderr)
        self.assertTrue(answers(directory, first), "still serving where it was")


if __name__ == "__main__":
    main()
