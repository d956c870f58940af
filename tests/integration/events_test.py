#!/usr/bin/env python3
"""GET /api/v1/executions/{id}/events through the real daemon: the live stream in order, the
same stream replayed to a late subscriber, resuming with Last-Event-ID, heartbeat comments,
streams on another daemon than the one running the execution, cancel, refusals, and clients
that leave mid-stream."""

import http.client
import json
import threading
import time

from harness import ApiTestCase, Daemon, main, psql, statuses
from runs_test import graph

STEPS = graph([{"id": "s", "type": "start", "data": {"inputs": [{"name": "name"}]}},
               {"id": "wait", "type": "delay", "config": {"duration_ms": 1000}},
               {"id": "t", "type": "transform", "config": {"template": {"greeting": "hi {{name}}"}}},
               {"id": "o", "type": "output", "config": {"value": "{{t.greeting}}"}}],
              [("s", "wait", None), ("wait", "t", None), ("t", "o", None)])

EXPECTED = ["node_started s", "node_finished s", "node_started wait", "node_finished wait", "node_started t",
            "node_finished t", "node_started o", "node_finished o", "execution_finished"]


class EventStream:
    """A text/event-stream response read event by event (http.client undoes the chunking)."""

    def __init__(self, daemon, execution_id, key, headers=None, query="", timeout=10):
        self.connection = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=timeout)
        all_headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream", **(headers or {})}
        self.connection.request("GET", f"/api/v1/executions/{execution_id}/events{query}", headers=all_headers)
        self.response = self.connection.getresponse()
        self.comments = []
        self.retry = None

    def next(self):
        """The next event as {"id", "event", "data"}; None at the end of the stream."""
        import json
        event = {}
        while True:
            line = self.response.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line == "":
                if "event" in event:
                    event["data"] = json.loads(event["data"])
                    return event
                continue
            if line.startswith(":"):
                self.comments.append(line)
                continue
            name, _, value = line.partition(": ")
            if name == "id":
                event["id"] = int(value)
            elif name in ("event", "data"):
                event[name] = value
            elif name == "retry":
                self.retry = int(value)

    def all(self):
        events = []
        while (event := self.next()) is not None:
            events.append(event)
        return events


def labels(events):
    return [f"{e['event']} {e['data']['node_id']}" if "node_id" in e["data"] else e["event"] for e in events]


class ExecutionEvents(ApiTestCase):
    daemon_settings = {"execution_heartbeat_interval_ms": 200, "run_wait_ms": 5000, "sse_heartbeat_ms": 250,
                       "event_flush_ms": 50}

    def start_async(self, key, app, inputs=None):
        code, _, document = self.call("POST", f"/api/v1/apps/{app['id']}/runs?async=true", {"inputs": inputs or {"name": "Cy"}}, key)
        self.assertEqual(code, 202, document)
        return document["data"]["id"]

    def test_live_stream_in_order_then_replayed_and_resumed(self):
        _, workspace, key = self.new_user()
        app = self.app_with(key, workspace, STEPS)
        execution_id = self.start_async(key, app, {"name": "Ada"})
        stream = EventStream(self.daemon, execution_id, key)
        self.assertEqual(stream.response.status, 200)
        self.assertTrue(stream.response.getheader("Content-Type").startswith("text/event-stream"))
        self.assertEqual(stream.response.getheader("Cache-Control"), "no-store")
        live = stream.all()
        self.assertEqual(labels(live), EXPECTED)
        self.assertEqual([event["id"] for event in live], list(range(1, 10)), "ids count up from 1 without gaps")
        self.assertEqual(stream.retry, 2000)
        self.assertIn(": heartbeat", stream.comments, "a one-second node leaves room for heartbeat comments")
        finished = live[-1]["data"]
        self.assertEqual(finished["status"], "completed")
        self.assertEqual(finished["outputs"], {"o": "hi Ada"})
        self.assertEqual(live[3]["data"]["status"], "completed")
        self.assertGreaterEqual(live[3]["data"]["duration_ms"], 990)  # libuv timers round to the millisecond
        self.assertEqual(live[5]["data"]["output"], {"greeting": "hi Ada"})
        # The same connection serves the next request once the stream has ended.
        stream.connection.request("GET", "/health")
        self.assertEqual(stream.connection.getresponse().status, 200)

        # A late subscriber gets exactly what a live one got.
        replay = EventStream(self.daemon, execution_id, key).all()
        self.assertEqual(replay, live)
        # Resuming: after Last-Event-ID, or ?after= (the same, for clients that cannot set headers).
        self.assertEqual(EventStream(self.daemon, execution_id, key, {"Last-Event-ID": "4"}).all(), live[4:])
        self.assertEqual(EventStream(self.daemon, execution_id, key, query="?after=7").all(), live[7:])
        self.assertEqual(EventStream(self.daemon, execution_id, key, {"Last-Event-ID": "9"}).all(), [])
        # Pipelined behind a stream, a request is answered after the stream's last chunk.
        raw = self.daemon.raw((f"GET /api/v1/executions/{execution_id}/events HTTP/1.1\r\nHost: x\r\n"
                               f"Authorization: Bearer {key}\r\n\r\n"
                               "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").encode())
        self.assertEqual(statuses(raw), [200, 200])
        self.assertLess(raw.index(b"event: execution_finished"), raw.index(b"0\r\n\r\nHTTP/1.1 200"))
        stored = psql(self.database, f"select count(*) from flowgres.execution_events where execution_id = '{execution_id}'")
        self.assertEqual(stored, "9")

    def test_a_stream_on_another_daemon_follows_the_run_live(self):
        other = Daemon(self.database, sse_heartbeat_ms=250, admin_key=self.admin).start()
        try:
            _, workspace, key = self.new_user()
            app = self.app_with(key, workspace, STEPS)
            # A synchronous run on this daemon; its stream is read on the other one.
            answer = {}
            runner = threading.Thread(target=lambda: answer.update(
                result=self.call("POST", f"/api/v1/apps/{app['id']}/runs", {"inputs": {"name": "Bo"}}, key)))
            runner.start()
            execution_id = None
            deadline = time.time() + 5
            while time.time() < deadline and not execution_id:
                _, _, listed = other.request("GET", f"/api/v1/apps/{app['id']}/executions?status=running", key=key)
                items = listed["data"]["items"]
                execution_id = items[0]["id"] if items else None
                time.sleep(0.02)
            self.assertIsNotNone(execution_id, "the run never showed up as running")
            stream = EventStream(other, execution_id, key)
            seen = []
            while (event := stream.next()) is not None:
                seen.append(event)
                if labels([event]) == ["node_started wait"]:
                    self.assertTrue(runner.is_alive(), "node_started arrived only after the run had ended")
            runner.join()
            self.assertEqual(answer["result"][0], 200)
            self.assertEqual(labels(seen), EXPECTED)
            self.assertEqual([event["id"] for event in seen], list(range(1, 10)))
        finally:
            other.stop()

    def test_cancel_ends_the_stream(self):
        _, workspace, key = self.new_user()
        app = self.app_with(key, workspace, STEPS)
        execution_id = self.start_async(key, app)
        stream = EventStream(self.daemon, execution_id, key)
        while (event := stream.next()) is not None and labels([event]) != ["node_started wait"]:
            pass
        self.ok("POST", f"/api/v1/executions/{execution_id}/cancel", {}, key)
        rest = stream.all()
        self.assertEqual(rest[-1]["event"], "execution_finished")
        self.assertEqual(rest[-1]["data"]["status"], "cancelled")
        # Events the canceled run still had are not written after its last event.
        time.sleep(0.5)
        last = psql(self.database, f"select event from flowgres.execution_events where execution_id = '{execution_id}' "
                                   "order by sequence desc limit 1")
        self.assertEqual(last, "execution_finished")

    def test_refusals(self):
        _, workspace, key = self.new_user()
        _, _, stranger = self.new_user()
        app = self.app_with(key, workspace, STEPS)
        execution_id = self.start_async(key, app)
        path = f"/api/v1/executions/{execution_id}/events"
        self.fails("GET", path, 404, "EXECUTION_NOT_FOUND", key=stranger)
        self.fails("GET", "/api/v1/executions/00000000-0000-4000-8000-000000000000/events", 404, "EXECUTION_NOT_FOUND", key=key)
        self.fails("GET", "/api/v1/executions/not-a-uuid/events", 404, "EXECUTION_NOT_FOUND", key=key)
        self.fails("GET", path, 401, "UNAUTHENTICATED")
        self.fails("GET", path, 422, "VALIDATION_FAILED", key=key, headers={"Last-Event-ID": "abc"})
        self.fails("GET", path, 422, "VALIDATION_FAILED", key=key, headers={"Last-Event-ID": "99999999999"})
        self.fails("GET", path + "?after=-1", 422, "VALIDATION_FAILED", key=key)
        self.fails("GET", path + "?after=1%27%3B%20drop%20table%20flowgres.executions%3B--", 422, "VALIDATION_FAILED", key=key)
        code, headers, _ = self.call("POST", path, {}, key)
        self.assertEqual(code, 405)
        self.assertEqual(headers["allow"], "GET")
        self.assertEqual(psql(self.database, "select count(*) > 0 from flowgres.executions"), "t")

    def test_clients_that_leave_mid_stream_cost_nothing(self):
        _, workspace, key = self.new_user()
        app = self.app_with(key, workspace, STEPS)
        execution_id = self.start_async(key, app)
        for _ in range(20):
            stream = EventStream(self.daemon, execution_id, key)
            stream.next()
            stream.connection.sock.close()  # gone without a word
        code, _, _ = self.call("GET", "/health")
        self.assertEqual(code, 200)
        # The run is unaffected, and a stream opened now still sees it to the end.
        self.assertEqual(labels(EventStream(self.daemon, execution_id, key).all()), EXPECTED)
        # Within a few heartbeats the departed streams are found and dropped.
        deadline = time.time() + 5
        while time.time() < deadline:
            _, _, metrics = self.call("GET", "/metrics")
            if "flowgres_event_streams_open 0" in metrics:
                break
            time.sleep(0.1)
        self.assertIn("flowgres_event_streams_open 0", metrics)
        self.assertIn("flowgres_runs_active 0", metrics)


QUICK = graph([{"id": "s", "type": "start", "data": {"inputs": [{"name": "name"}]}},
               {"id": "o", "type": "output", "config": {"value": "hi {{s.name}}"}}],
              [("s", "o", None)])


class StreamsOpenedAsARunEnds(ApiTestCase):
    """A stream opened while a quick run ends must not wait for the heartbeat's safety net: the
    notification of the run's last events can arrive between the stream's first read and its
    subscription. The heartbeat here is ten minutes, so only the subscription itself can end
    these streams."""
    daemon_settings = {"sse_heartbeat_ms": 600000, "event_flush_ms": 10}

    def test_each_stream_ends_with_the_run(self):
        _, workspace, key = self.new_user()
        app = self.app_with(key, workspace, QUICK)
        for attempt in range(60):
            code, _, document = self.call("POST", f"/api/v1/apps/{app['id']}/runs?async=true", {"inputs": {"name": "Ed"}}, key)
            self.assertEqual(code, 202, document)
            stream = EventStream(self.daemon, document["data"]["id"], key, timeout=5)
            events = stream.all()
            self.assertEqual(events[-1]["event"], "execution_finished", f"attempt {attempt}")
            self.assertEqual(events[-1]["data"]["outputs"], {"o": "hi Ed"})


class FoldedTrails(ApiTestCase):
    """A run that ends before its first event flush stores its events and node logs as one
    execution_trails row (README "Performance"); every reader shows them as if they were rows:
    the execution's node logs, the events page and stream with resumption, the node_type
    filter, retention. A run that outlives a flush keeps the rows."""
    daemon_settings = {"event_flush_ms": 400, "run_wait_ms": 5000}

    def test_a_quick_run_reads_the_same_from_its_trail(self):
        _, workspace, key = self.new_user()
        quick = graph([{"id": "s", "type": "start", "data": {"inputs": [{"name": "name"}]}},
                       {"id": "t", "type": "transform", "config": {"template": {"greeting": "hi {{name}}"}}},
                       {"id": "o", "type": "output", "config": {"value": "{{t.greeting}}"}}],
                      [("s", "t", None), ("t", "o", None)])
        folded = self.ok("POST", f"/api/v1/apps/{self.app_with(key, workspace, quick)['id']}/runs",
                         {"inputs": {"name": "Fay"}}, key)
        slow_app = self.app_with(key, workspace, graph(
            [{"id": "s", "type": "start", "data": {"inputs": [{"name": "name"}]}},
             {"id": "wait", "type": "delay", "config": {"duration_ms": 900}},
             {"id": "t", "type": "transform", "config": {"template": {"greeting": "hi {{name}}"}}},
             {"id": "o", "type": "output", "config": {"value": "{{t.greeting}}"}}],
            [("s", "wait", None), ("wait", "t", None), ("t", "o", None)]))
        rows = self.ok("POST", f"/api/v1/apps/{slow_app['id']}/runs", {"inputs": {"name": "Fay"}}, key)

        def count(table, execution):
            return int(psql(self.database, f"select count(*) from flowgres.{table} where execution_id = '{execution['id']}'"))
        self.assertEqual((count("execution_trails", folded), count("node_logs", folded), count("execution_events", folded)),
                         (1, 0, 0), "one trail row, execution_finished its last entry: no event rows")
        self.assertEqual((count("execution_trails", rows), count("node_logs", rows)), (0, 4), "flushed once: rows")

        # The node logs read back alike, whichever way they were stored.
        shown = self.ok("GET", f"/api/v1/executions/{folded['id']}", None, key)
        self.assertEqual(shown["node_logs"], folded["node_logs"])
        self.assertEqual([log["node_id"] for log in shown["node_logs"]], ["s", "t", "o"])
        self.assertEqual([log["sequence"] for log in shown["node_logs"]], [0, 1, 2])
        self.assertEqual(set(shown["node_logs"][0]), set(rows["node_logs"][0]), "the same members as a node_logs row")
        self.assertEqual(shown["node_logs"][1]["output"], {"greeting": "hi Fay"})
        self.assertEqual(shown["node_logs"][1]["attempt"], 1)

        # Events: the page, the stream, resumption.
        events = EventStream(self.daemon, folded["id"], key).all()
        self.assertEqual(labels(events), ["node_started s", "node_finished s", "node_started t", "node_finished t",
                                          "node_started o", "node_finished o", "execution_finished"])
        self.assertEqual([event["id"] for event in events], list(range(1, 8)))
        self.assertEqual(EventStream(self.daemon, folded["id"], key, {"Last-Event-ID": "3"}).all(), events[3:])
        page = json.loads(psql(self.database, "set flowgres.actor = 'operator'; "
                                              f"select flowgres.execution_events('{folded['id']}', 2, 3)").splitlines()[-1])
        self.assertEqual(([event["id"] for event in page["events"]], page["complete"]), ([3, 4, 5], False))
        page = json.loads(psql(self.database, "set flowgres.actor = 'operator'; "
                                              f"select flowgres.execution_events('{folded['id']}', 5, 3)").splitlines()[-1])
        self.assertEqual(([event["id"] for event in page["events"]], page["complete"]), ([6, 7], True))

        # Filtering by node type finds runs by their trails too.
        for app_id, node_type, expected in ((folded["app_id"], "transform", [folded["id"]]),
                                            (folded["app_id"], "delay", []),
                                            (slow_app["id"], "delay", [rows["id"]])):
            listed = self.ok("GET", f"/api/v1/apps/{app_id}/executions?node_type={node_type}", None, key)
            self.assertEqual([item["id"] for item in listed["items"]], expected, node_type)

        # Retention empties a trail's events as it deletes event rows; execution_finished stays.
        psql(self.database, "update flowgres.executions set finished_at = now() - interval '40 days' "
                            f"where id in ('{folded['id']}', '{rows['id']}')")
        psql(self.database, "update flowgres.execution_events set created_at = now() - interval '40 days' "
                            f"where execution_id = '{rows['id']}'")
        # A trail is as old as its run's end; a younger one is left alone.
        self.assertEqual(psql(self.database, "select flowgres.execution_events_prune(30, 100)"), "8")
        psql(self.database, "update flowgres.execution_trails set created_at = now() - interval '40 days' "
                            f"where execution_id = '{folded['id']}'")
        self.assertEqual(psql(self.database, "select flowgres.execution_events_prune(30, 100)"), "1")
        for execution in (folded, rows):
            page = json.loads(psql(self.database, "set flowgres.actor = 'operator'; "
                                                  f"select flowgres.execution_events('{execution['id']}', 0, 30)").splitlines()[-1])
            self.assertEqual(([event["event"] for event in page["events"]], page["complete"]), (["execution_finished"], True))
            # The stream shows what is left: execution_finished, its id past the gap.
            streamed = EventStream(self.daemon, execution["id"], key).all()
            self.assertEqual(labels(streamed), ["execution_finished"])
            self.assertEqual(streamed[0]["id"], page["events"][0]["id"])
        self.assertEqual(len(self.ok("GET", f"/api/v1/executions/{folded['id']}", None, key)["node_logs"]), 3)


if __name__ == "__main__":
    main()
