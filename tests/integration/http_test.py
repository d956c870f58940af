#!/usr/bin/env python3
"""The HTTP/1.1 layer over raw sockets: keep-alive, pipelining order, chunked bodies,
Expect: 100-continue, every limit with its status, malformed framing, slow and vanishing
clients, many idle connections, and the connection limit. After each abuse the daemon must
still answer an ordinary request."""

import json
import socket
import threading
import time

from harness import ApiTestCase, Daemon, fresh_database, hold_workspaces_lock, main, read_all, statuses


def get(path, extra=""):
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


class Protocol(ApiTestCase):
    daemon_settings = {"header_timeout_ms": 1000, "body_timeout_ms": 1000, "idle_timeout_ms": 2000, "max_body_bytes": 4096}

    def assert_still_serving(self):
        code, _, document = self.call("GET", "/health")
        self.assertEqual(code, 200)

    def test_keep_alive_serves_many_requests_on_one_connection(self):
        with socket.create_connection(("127.0.0.1", self.daemon.port)) as connection:
            for _ in range(3):
                connection.sendall(get("/health"))
                answer = read_all(connection, 2, until_close=False)
                self.assertIn(b"HTTP/1.1 200", answer)
                self.assertNotIn(b"Connection: close", answer)

    def test_pipelined_requests_are_answered_in_order(self):
        # A slow database call first, then fast built-ins: answers must still come in order.
        request_ids = [f"pipe-{i}" for i in range(4)]
        data = (f"GET /ready HTTP/1.1\r\nHost: t\r\nX-Request-Id: {request_ids[0]}\r\n\r\n"
                f"GET /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: {request_ids[1]}\r\n\r\n"
                f"GET /nowhere HTTP/1.1\r\nHost: t\r\nX-Request-Id: {request_ids[2]}\r\n\r\n"
                f"GET /health HTTP/1.1\r\nHost: t\r\nX-Request-Id: {request_ids[3]}\r\nConnection: close\r\n\r\n").encode()
        answer = self.daemon.raw(data)
        self.assertEqual(statuses(answer), [200, 200, 404, 200])
        positions = [answer.index(f"X-Request-Id: {rid}".encode()) for rid in request_ids]
        self.assertEqual(positions, sorted(positions))

    def test_chunked_request_body(self):
        _, _, key = self.new_user()
        body = b'{"name": "Chunked team"}'
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:])) + b"0\r\n\r\n"
        data = (f"POST /api/v1/workspaces HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode() + chunks
        answer = self.daemon.raw(data)
        self.assertEqual(statuses(answer), [201])
        self.assertIn(b"Chunked team", answer)

    def test_expect_100_continue(self):
        _, _, key = self.new_user()
        body = b'{"name": "Patient team"}'
        head = (f"POST /api/v1/workspaces HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n"
                "Connection: close\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=3) as connection:
            connection.sendall(head)
            interim = read_all(connection, 2, until_close=False)
            self.assertTrue(interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim)
            connection.sendall(body)
            final = interim + read_all(connection, 3)
        self.assertEqual(statuses(final), [100, 201])

    def test_expect_100_continue_with_too_large_body_is_413_before_the_body(self):
        head = (b"POST /api/v1/workspaces HTTP/1.1\r\nHost: t\r\nContent-Length: 999999\r\n"
                b"Expect: 100-continue\r\n\r\n")
        answer = self.daemon.raw(head)
        self.assertEqual(statuses(answer), [413])

    def test_limits(self):
        cases = [
            (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
            (b"GET /health HTTP/1.1\r\nHost: t\r\n" + b"X-Big: " + b"b" * 17000 + b"\r\n\r\n", 431),
            (b"GET /health HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(3000)) + b"\r\n", 431),
            (b"POST /api/v1/workspaces HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n", 413),
            (b"POST /api/v1/workspaces HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             + b"1000\r\n" + b"x" * 4096 + b"\r\n" + b"1\r\nx\r\n0\r\n\r\n", 413),
        ]
        for data, expected in cases:
            answer = self.daemon.raw(data)
            self.assertEqual(statuses(answer), [expected], data[:60])
            self.assertIn(b"Connection: close", answer)
        self.assert_still_serving()

    def test_malformed_framing_is_400_and_closed(self):
        cases = [
            b"GARBAGE\r\n\r\n",
            b"GET /health HTTP/9.9\r\nHost: t\r\n\r\n",
            b"GET /health HTTP/1.1\r\nBad Header\r\n\r\n",
            b"POST /api/v1/workspaces HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
            b"POST /api/v1/workspaces HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
            b"POST /api/v1/workspaces HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST /api/v1/workspaces HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
            b"GET /health HTTP/1.1\r\nHost: t\r\n\x00\x01\r\n\r\n",
        ]
        for data in cases:
            answer = self.daemon.raw(data)
            codes = statuses(answer)
            self.assertTrue(codes and codes[-1] in (400, 505), (data, answer[:200]))
        self.assert_still_serving()

    def test_body_longer_than_declared_is_not_a_second_request(self):
        data = b"GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nabGARBAGE\r\n\r\n"
        self.assertEqual(statuses(self.daemon.raw(data)), [200, 400])

    def test_body_shorter_than_declared_times_out_with_408(self):
        started = time.time()
        answer = self.daemon.raw(b"POST /api/v1/workspaces HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\n{}", read_timeout=5)
        self.assertEqual(statuses(answer), [408])
        self.assertLess(time.time() - started, 4)

    def test_a_slow_body_that_keeps_coming_is_not_cut_off(self):
        _, _, key = self.new_user()
        body = json.dumps({"name": "Uploaded slowly", "icon": "x" * 10}).encode()
        with socket.create_connection(("127.0.0.1", self.daemon.port)) as connection:
            connection.sendall((f"POST /api/v1/workspaces HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n"
                                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode())
            started = time.time()
            for i in range(0, len(body), 4):  # 2.5 s in all, well past header_timeout_ms, never 1 s silent
                connection.sendall(body[i:i + 4])
                time.sleep(0.25)
            self.assertGreater(time.time() - started, 2)
            answer = read_all(connection, 5)
        self.assertNotEqual(statuses(answer), [408], "progress keeps a body alive")
        self.assertIn(statuses(answer)[0], (201, 422), answer[:300])

    def test_slowloris_is_cut_off_while_others_are_served(self):
        connection = socket.create_connection(("127.0.0.1", self.daemon.port))
        connection.sendall(b"GET /health HTTP/1.1\r\n")
        started = time.time()
        closed = False
        for _ in range(30):  # one header byte every 100 ms: never finishes on its own
            try:
                connection.sendall(b"X")
            except OSError:
                closed = True
                break
            self.assert_still_serving()
            time.sleep(0.1)
            if connection.recv(65536, socket.MSG_DONTWAIT) if self._readable(connection) else False:
                closed = True
                break
        connection.close()
        self.assertTrue(closed, "a slow client was never cut off")
        self.assertLess(time.time() - started, 2.9)

    @staticmethod
    def _readable(connection):
        import select
        return bool(select.select([connection], [], [], 0)[0])

    def test_idle_connection_is_closed(self):
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=5) as connection:
            started = time.time()
            self.assertEqual(connection.recv(10), b"")
            self.assertGreater(time.time() - started, 1.5)

    def test_client_vanishing_mid_request_loses_nothing(self):
        _, _, key = self.new_user()
        for _ in range(20):
            connection = socket.create_connection(("127.0.0.1", self.daemon.port))
            connection.sendall((f"POST /api/v1/workspaces HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n"
                                "Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"name\"").encode())
            connection.close()
            # A complete request whose client leaves before the answer.
            connection = socket.create_connection(("127.0.0.1", self.daemon.port))
            connection.sendall(get("/api/v1/workspaces", f"Authorization: Bearer {key}\r\n"))
            connection.close()
        workspaces = self.ok("GET", "/api/v1/workspaces", key=key)
        self.assertEqual(len(workspaces), 1)

    def test_a_thousand_idle_connections_do_not_stop_service(self):
        sockets = []
        try:
            for _ in range(1000):
                sockets.append(socket.create_connection(("127.0.0.1", self.daemon.port)))
            self.assert_still_serving()
            _, _, key = self.new_user()
            self.ok("GET", "/api/v1/workspaces", key=key)
        finally:
            for connection in sockets:
                connection.close()
        self.assert_still_serving()

    def test_head_has_no_body(self):
        answer = self.daemon.raw(b"HEAD /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        self.assertEqual(statuses(answer), [200])
        self.assertTrue(answer.endswith(b"\r\n\r\n"))

    def test_http_1_0_closes_after_the_answer(self):
        answer = self.daemon.raw(b"GET /health HTTP/1.0\r\n\r\n")
        self.assertEqual(statuses(answer), [200])
        self.assertIn(b"Connection: close", answer)


class PipelineLimit(ApiTestCase):
    """max_pipelined bounds what one connection has in the server at once, however many
    requests one read brings: the rest wait, parsed, and the socket is not read meanwhile."""

    daemon_settings = {"workers": 1, "db_pool_size": 1, "db_pipeline_depth": 1}  # max_pipelined is 64

    def test_one_read_of_many_requests_dispatches_at_most_max_pipelined(self):
        count = 300
        data = b"".join(f"GET /runtime/nobody-{i}/app HTTP/1.1\r\nHost: t\r\n\r\n".encode() for i in range(count - 1))
        data += b"GET /runtime/nobody-last/app HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        self.assertLess(len(data), 65536, "one read's worth")
        lock = hold_workspaces_lock(self.database, 2)
        try:
            connection = socket.create_connection(("127.0.0.1", self.daemon.port))
            connection.sendall(data)
            time.sleep(0.7)
            _, _, metrics = self.daemon.request("GET", "/metrics")
            held = sum(int(line.split()[-1]) for line in metrics.splitlines()
                       if line.startswith(("flowgres_db_pool_waiting ", "flowgres_db_pool_in_use ")))
            self.assertGreater(held, 0)
            # 64 of the connection's, and perhaps one of the daemon's own background calls.
            self.assertLessEqual(held, 66, "only max_pipelined requests of the connection reached the database")
        finally:
            lock.wait(timeout=30)
        answer = read_all(connection, 20)
        connection.close()
        self.assertEqual(statuses(answer), [404] * count, "every request is still answered, in order")


class ConnectionLimit(ApiTestCase):
    daemon_settings = {"max_connections": 5, "workers": 1}

    def test_connections_past_the_limit_get_503_and_others_keep_working(self):
        held = [socket.create_connection(("127.0.0.1", self.daemon.port)) for _ in range(5)]
        try:
            time.sleep(0.2)
            refused = self.daemon.raw(get("/health"))
            self.assertEqual(statuses(refused), [503])
            self.assertIn(b"Connection: close", refused)
        finally:
            for connection in held:
                connection.close()
        time.sleep(0.2)
        code, _, _ = self.call("GET", "/health")
        self.assertEqual(code, 200)


if __name__ == "__main__":
    main()
