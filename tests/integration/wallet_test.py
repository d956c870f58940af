#!/usr/bin/env python3
"""Wallets through the real daemon and database: the operator's grants and refunds over HTTP,
the service's holds and settlements over SQL from sessions that stay open (a hold belongs to
the backend that took it), the invariants after many parallel sessions (never more held than
there is, frozen = the open holds, refunds never above their capture, a replayed billing_ref_id
moving nothing), holds released by their backend's end and by expiry, and the balance coming
back from the rows after the database crashes."""

import os
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from harness import ApiTestCase, PG_PORT, ROOT, SOCKET_DIR, main, psql

CLUSTER = os.path.join(ROOT, "scripts", "cluster.sh")
CLUSTER_DIR = os.path.dirname(SOCKET_DIR)


class Session:
    """One psql backend kept open: statements run one at a time, each its own transaction."""

    def __init__(self, database):
        self.process = subprocess.Popen(
            ["psql", "-h", SOCKET_DIR, "-p", PG_PORT, "-U", "postgres", "-d", database, "-AtXq"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)

    def run(self, sql):
        self.process.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo __done__\n")
        self.process.stdin.flush()
        lines = []
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if line == "" or line.rstrip("\n") == "__done__":
                break
            lines.append(line.rstrip("\n"))
        return "\n".join(lines)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)


def hold_sql(workspace, hold_id, amount, ttl=600):
    return f"select flowgres.wallet_hold('{workspace}', '{hold_id}', {amount}, {ttl})"


def settle_sql(workspace, hold_id, captured, trace=None):
    trace_member = f', "trace_id": "{trace}"' if trace else ""
    return (f"""select flowgres.wallet_settle('[{{"workspace_id": "{workspace}", "hold_id": "{hold_id}", """
            f""""captured": {captured}{trace_member}}}]')""")


def assert_wallet_invariants(case, workspace_id, key, wait_seconds=0):
    """Once nothing is frozen (waiting up to wait_seconds for holds to end): the balance is the
    rows' grants and refunds less their captures, and not below 0; no hold is open; every hold
    row has exactly one capture or release, a capture never above its hold. Returns the wallet."""
    deadline = time.time() + wait_seconds
    while True:
        wallet = case.ok("GET", f"/api/v1/workspaces/{workspace_id}/wallet", key=key)
        if wallet["frozen"] == 0 or time.time() >= deadline:
            break
        time.sleep(0.1)
    from_rows = int(psql(case.database, f"""
        select coalesce(sum(case kind when 'capture' then -amount when 'grant' then amount
                                      when 'refund' then amount else 0 end), 0)
        from flowgres.wallet_transactions where workspace_id = '{workspace_id}'"""))
    case.assertEqual(wallet["balance"], from_rows)
    case.assertGreaterEqual(wallet["balance"], 0)
    case.assertEqual(wallet["frozen"], 0, wallet)
    case.assertEqual(case.ok("GET", f"/api/v1/workspaces/{workspace_id}/wallet/holds", key=key), [])
    bad_holds = psql(case.database, f"""
        select count(*) from flowgres.wallet_transactions h
        where h.workspace_id = '{workspace_id}' and h.kind = 'hold'
          and (select count(*) from flowgres.wallet_transactions s
               where s.workspace_id = h.workspace_id and s.billing_ref_id = h.billing_ref_id
                 and (s.kind = 'release' and s.amount = h.amount or s.kind = 'capture' and s.amount <= h.amount)) <> 1""")
    case.assertEqual(bad_holds, "0")
    return wallet


class Wallets(ApiTestCase):

    def setUp(self):
        self.owner, self.workspace, self.key = self.new_user()
        self.ws = self.workspace["id"]

    def wallet(self):
        return self.ok("GET", f"/api/v1/workspaces/{self.ws}/wallet", key=self.key)

    def grant(self, amount, ref=None, reason="top-up"):
        body = {"amount": amount, "reason": reason}
        if ref:
            body["billing_ref_id"] = ref
        return self.ok("POST", f"/api/v1/workspaces/{self.ws}/wallet/grants", body, self.admin, status=201)

    def rows(self, where="true"):
        return psql(self.database, f"select kind || ':' || amount from flowgres.wallet_transactions "
                                   f"where workspace_id = '{self.ws}' and {where} order by id").split()

    def assert_invariants(self):
        return assert_wallet_invariants(self, self.ws, self.key)

    def test_grants_holds_captures_and_refunds(self):
        self.fails("POST", f"/api/v1/workspaces/{self.ws}/wallet/grants", 403, "PERMISSION_DENIED",
                   {"amount": 5, "reason": "mine"}, self.key)
        first = self.grant(1_000_000, "topup-1", "first <b>top-up</b>")
        self.assertEqual((first["replayed"], first["movement"]["kind"], first["movement"]["amount"]),
                         (False, "grant", 1_000_000))
        again = self.grant(1_000_000, "topup-1")
        self.assertEqual((again["replayed"], again["movement"]["id"]), (True, first["movement"]["id"]))
        self.fails("POST", f"/api/v1/workspaces/{self.ws}/wallet/grants", 409, "BILLING_REF_CONFLICT",
                   {"amount": 2, "reason": "x", "billing_ref_id": "topup-1"}, self.admin)
        self.assertEqual(self.wallet(), {"workspace_id": self.ws, "balance": 1_000_000, "frozen": 0, "available": 1_000_000})

        session = Session(self.database)
        try:
            hold = str(uuid.uuid4())
            self.assertIn('"held": true', session.run(hold_sql(self.ws, hold, 300_000)))
            self.assertEqual(self.wallet(), {"workspace_id": self.ws, "balance": 1_000_000, "frozen": 300_000,
                                             "available": 700_000})
            holds = self.ok("GET", f"/api/v1/workspaces/{self.ws}/wallet/holds", key=self.key)
            self.assertEqual([(h["hold_id"], h["amount"], h["settling"]) for h in holds], [(hold, 300_000, False)])
            self.assertIn('"outcome": "captured"', session.run(settle_sql(self.ws, hold, 120_000, "trace-abc")))
            self.assertIn('"outcome": "settled_before"', session.run(settle_sql(self.ws, hold, 120_000)))
            refused = str(uuid.uuid4())
            self.assertIn('"refused": "insufficient"', session.run(hold_sql(self.ws, refused, 880_001)))
            over = str(uuid.uuid4())  # a capture above its hold takes the hold: it was the worst case
            session.run(hold_sql(self.ws, over, 10))
            self.assertIn('"captured": 10', session.run(settle_sql(self.ws, over, 99)))
        finally:
            session.close()
        self.assertEqual(self.wallet()["balance"], 1_000_000 - 120_000 - 10)
        self.assertEqual(self.rows(f"billing_ref_id = '{hold}'"), ["hold:300000", "capture:120000"])
        self.assertEqual(psql(self.database, f"select trace_id from flowgres.wallet_transactions "
                                             f"where billing_ref_id = '{hold}' and kind = 'capture'"), "trace-abc")

        refunds = f"/api/v1/workspaces/{self.ws}/wallet/refunds"
        self.fails("POST", refunds, 403, "PERMISSION_DENIED",
                   {"capture_ref_id": hold, "amount": 1, "reason": "mine"}, self.key)
        self.fails("POST", refunds, 404, "CAPTURE_NOT_FOUND", {"capture_ref_id": "topup-1", "amount": 1, "reason": "x"},
                   self.admin)
        self.ok("POST", refunds, {"capture_ref_id": hold, "amount": 50_000, "reason": "bad answer"}, self.admin, status=201)
        document = self.fails("POST", refunds, 409, "REFUND_EXCEEDS_CAPTURE",
                              {"capture_ref_id": hold, "amount": 70_001, "reason": "more"}, self.admin)
        self.assertIn("at most 70000 more", document["message"])
        self.ok("POST", refunds, {"capture_ref_id": hold, "amount": 70_000, "reason": "the rest", "billing_ref_id": "r-2"},
                self.admin, status=201)
        self.assertEqual(self.wallet()["balance"], 1_000_000 - 10)

        listed = self.ok("GET", f"/api/v1/workspaces/{self.ws}/wallet/transactions?page_size=2", key=self.key)
        self.assertEqual(listed["meta"]["total"], 7)  # a grant, two holds and captures, two refunds
        self.assertEqual([item["kind"] for item in listed["items"]], ["refund", "refund"])
        self.assertEqual(listed["items"][0]["refers_to"], hold)
        captures = self.ok("GET", f"/api/v1/workspaces/{self.ws}/wallet/transactions?kind=capture", key=self.key)
        self.assertEqual(sorted(item["amount"] for item in captures["items"]), [10, 120_000])
        self.assertEqual(psql(self.database, f"select count(*) from flowgres.audit_logs where workspace_id = '{self.ws}' "
                                             "and action in ('wallet.grant', 'wallet.refund')"), "3")
        self.assert_invariants()

    def test_amounts_past_a_32_bit_integer(self):
        # Five thousand currency units are 5,000,000,000 micro-units: money is a bigint all the way.
        self.grant(5_000_000_000, "big")
        self.assertEqual(self.wallet()["balance"], 5_000_000_000)
        self.fails("POST", f"/api/v1/workspaces/{self.ws}/wallet/grants", 422, "VALIDATION_FAILED",
                   {"amount": 10**15 + 1, "reason": "too much"}, self.admin)
        self.fails("POST", f"/api/v1/workspaces/{self.ws}/wallet/grants", 400, "BAD_REQUEST",
                   {"amount": 2**63, "reason": "overflow"}, self.admin)  # past JSON's integers here
        self.assertEqual(self.wallet()["balance"], 5_000_000_000)

    def test_bad_input_is_refused_and_moves_nothing(self):
        self.grant(100, "base")
        grants = f"/api/v1/workspaces/{self.ws}/wallet/grants"
        for body in ({"amount": "ten", "reason": "x"}, {"reason": "x"}, {"amount": 10}, {"amount": -5, "reason": "x"},
                     {"amount": 10**16, "reason": "x"}, {"amount": 1.5, "reason": "x"}, {"amount": 10, "reason": "x" * 501},
                     {"amount": 10, "reason": "x", "billing_ref_id": "'; drop table flowgres.wallet_transactions; --"},
                     {"amount": 10, "reason": "x", "billing_ref_id": "../../etc/passwd"},
                     {"amount": 10, "reason": "x", "billing_ref_id": "r" * 201}):
            code, _, document = self.call("POST", grants, body, self.admin)
            self.assertIn(code, (400, 422), (body, document))
            self.assertIn(document["error_code"], ("VALIDATION_FAILED", "BAD_REQUEST"), (body, document))
        self.fails("GET", f"/api/v1/workspaces/{self.ws}/wallet/transactions?kind=steal", 422, "VALIDATION_FAILED",
                   key=self.key)
        self.fails("GET", f"/api/v1/workspaces/{uuid.uuid4()}/wallet", 404, "WORKSPACE_NOT_FOUND", key=self.key)
        _, _, other_key = self.new_user()
        self.fails("GET", f"/api/v1/workspaces/{self.ws}/wallet", 404, "WORKSPACE_NOT_FOUND", key=other_key)
        self.assertEqual(self.rows(), ["grant:100"])
        self.assertEqual(self.assert_invariants()["balance"], 100)

    def test_parallel_holds_never_hold_more_than_there_is(self):
        self.grant(1_000)
        sessions = [Session(self.database) for _ in range(60)]
        holds = [str(uuid.uuid4()) for _ in sessions]
        try:
            with ThreadPoolExecutor(60) as pool:
                answers = list(pool.map(lambda i: sessions[i].run(hold_sql(self.ws, holds[i], 50)), range(60)))
            held = [i for i, answer in enumerate(answers) if '"held": true' in answer]
            self.assertEqual(len(held), 20, answers)
            self.assertEqual(sum('"refused": "insufficient"' in answer for answer in answers), 40, answers)
            self.assertEqual(self.wallet(), {"workspace_id": self.ws, "balance": 1_000, "frozen": 1_000, "available": 0})
            self.assertEqual(len(self.ok("GET", f"/api/v1/workspaces/{self.ws}/wallet/holds", key=self.key)), 20)
            # Ten capture 30 each at once; the other ten sessions end with their holds open.
            with ThreadPoolExecutor(10) as pool:
                settled = list(pool.map(lambda i: sessions[i].run(settle_sql(self.ws, holds[i], 30)), held[:10]))
            self.assertTrue(all('"outcome": "captured"' in answer for answer in settled), settled)
        finally:
            for session in sessions:
                session.close()
        wallet = self.assert_invariants()
        self.assertEqual(wallet["balance"], 1_000 - 10 * 30)
        self.assertEqual(len(self.rows("kind = 'hold'")), 10)  # the released ten left no rows: nothing moved

    def test_parallel_refunds_and_replays(self):
        self.grant(10_000)
        session = Session(self.database)
        hold = str(uuid.uuid4())
        try:
            session.run(hold_sql(self.ws, hold, 5_000))
            session.run(settle_sql(self.ws, hold, 100))
        finally:
            session.close()
        refunds = f"/api/v1/workspaces/{self.ws}/wallet/refunds"

        def refund(i):
            return self.call("POST", refunds, {"capture_ref_id": hold, "amount": 10, "reason": f"refund {i}",
                                               "billing_ref_id": f"refund-{i}"}, self.admin)[0]
        with ThreadPoolExecutor(24) as pool:
            codes = list(pool.map(refund, range(24)))
        self.assertEqual((codes.count(201), codes.count(409)), (10, 14), codes)

        def replay(_):
            code, _, document = self.call("POST", f"/api/v1/workspaces/{self.ws}/wallet/grants",
                                          {"amount": 7, "reason": "promo", "billing_ref_id": "promo-1"}, self.admin)
            return code, document["data"]["replayed"]
        with ThreadPoolExecutor(20) as pool:
            replays = list(pool.map(replay, range(20)))
        self.assertEqual(sorted(replays), [(201, False)] + [(201, True)] * 19)
        self.assertEqual(len(self.rows("billing_ref_id = 'promo-1'")), 1)
        self.assertEqual(self.assert_invariants()["balance"], 10_000 - 100 + 100 + 7)

    def test_a_hold_expires(self):
        self.grant(500)
        session = Session(self.database)
        hold = str(uuid.uuid4())
        try:
            self.assertIn('"held": true', session.run(hold_sql(self.ws, hold, 400, ttl=1)))
            self.assertEqual(self.wallet()["frozen"], 400)
            deadline = time.time() + 15
            while time.time() < deadline and self.wallet()["frozen"] != 0:
                time.sleep(0.2)
            self.assertEqual(self.wallet()["frozen"], 0)  # the maintenance worker released it
            self.assertIn('"outcome": "not_held"', session.run(settle_sql(self.ws, hold, 400)))
        finally:
            session.close()
        self.assertEqual(self.assert_invariants()["balance"], 500)

    def test_the_balance_comes_back_after_a_crash(self):
        self.grant(9_000)
        session = Session(self.database)
        captured, open_hold = str(uuid.uuid4()), str(uuid.uuid4())
        session.run(hold_sql(self.ws, captured, 4_000))
        session.run(settle_sql(self.ws, captured, 1_500))
        session.run(hold_sql(self.ws, open_hold, 2_000))
        self.assertEqual(self.wallet()["frozen"], 2_000)
        subprocess.run([CLUSTER, "crash", CLUSTER_DIR], check=True, timeout=60)
        session.close()  # its backend went with the crash
        subprocess.run([CLUSTER, "up", CLUSTER_DIR, PG_PORT], check=True, timeout=60)
        deadline = time.time() + 30
        code, document = 0, None
        while time.time() < deadline:
            code, _, document = self.call("GET", f"/api/v1/workspaces/{self.ws}/wallet", key=self.key)
            if code == 200:
                break
            time.sleep(0.2)
        self.assertEqual(code, 200, document)
        # Loaded again from the rows; the hold open at the crash was released with it.
        self.assertEqual(document["data"], {"workspace_id": self.ws, "balance": 7_500, "frozen": 0, "available": 7_500})
        self.assert_invariants()


if __name__ == "__main__":
    main()
