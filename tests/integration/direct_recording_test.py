#!/usr/bin/env python3
"""A visitor's runs are recorded without a statement (README "Recording", table_rows.cpp). The
most hostile inputs a visitor can send, echoed into the run's outputs, go through that way
together with ordinary runs, all at once: every answer is a documented one, and every run
answered 200 left exactly what it was answered with (its row, its inputs as sent, its outputs,
one request billed, its output bytes billed, its trail), nothing more."""

import json
from concurrent.futures import ThreadPoolExecutor

from harness import main, psql
from runtime_test import RuntimeCase

RATE = {"rate_limit": {"per_ip": {"max_requests": 100000, "window_seconds": 60},
                       "per_session": {"max_requests": 100000, "window_seconds": 60}}}
ECHO = {"nodes": [{"id": "start", "type": "start", "data": {"inputs": [{"name": "text", "required": True}]}},
                  {"id": "out", "type": "output", "config": {"value": {"said": "{{text}}", "also": None}}}],
        "edges": [{"source": "start", "target": "out"}]}
UI = {"schema_version": "1.0.0", "blocks": [{"type": "form", "children": [
    {"type": "input", "id": "text", "input_key": "text", "label": "Text"}]}]}

HOSTILE = {
    "sql": "'); drop table flowgres.executions; --",
    "html": "<script>alert(1)</script><img src=x onerror=alert(2)>",
    "quotes": "\"\\'\\\\\"\t\r\n\b\f",
    "scripts": "héllo wörld ✓ 🙂 Привет مرحبا 日本語 \u200b\u202e",
    "path": "../../../../etc/passwd%00",
    "template": "{{secrets.KEY}} {{text}} {{",
    "near_limit": "x" * 900_000,
    "nested": "[" * 40 + "]" * 40,
    "huge_number": "1" * 400,
}
# Refused before any run: a NUL (jsonb cannot store it), a lone surrogate (not text), a body
# over the limit, nesting deeper than JSON readers take.
REFUSED = {
    "nul": ('{"inputs": {"text": "a\\u0000b"}}', (400, 422)),
    "lone_surrogate": ('{"inputs": {"text": "\\ud800"}}', (400, 422)),
    "too_large": (json.dumps({"inputs": {"text": "y" * 1_100_000}}), (413,)),
    "too_deep": ('{"inputs": {"text": ' + "[" * 5000 + "]" * 5000 + "}}", (400, 422)),
}


class DirectRecording(RuntimeCase):

    def test_hostile_inputs_recorded_together_leave_exactly_what_was_answered(self):
        app = self.published("echo", policy=RATE, workflow=ECHO, ui=UI)
        path = f"/runtime/{self.ws_slug}/echo"
        requests = [(name, json.dumps({"inputs": {"text": value}})) for name, value in HOSTILE.items()]
        requests += [(f"plain{i}", json.dumps({"inputs": {"text": f"plain {i}"}})) for i in range(60)]
        requests += [(name, body) for name, (body, _) in REFUSED.items()]

        def send(request):
            name, body = request
            code, _, answer = self.daemon.request("POST", path, raw_body=body.encode(),
                                                  headers={"Content-Type": "application/json"}, timeout=30)
            return name, code, answer
        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            answers = list(pool.map(send, requests))

        ran = {}
        for name, code, answer in answers:
            if name in REFUSED:
                self.assertIn(code, REFUSED[name][1], (name, code, answer))
                continue
            self.assertEqual(code, 200, (name, answer if len(str(answer)) < 2000 else str(answer)[:2000]))
            data = answer["data"]
            sent = HOSTILE.get(name, name.replace("plain", "plain "))
            self.assertEqual(data["outputs"]["out"]["said"], sent, name)
            ran[data["execution_id"]] = (name, sent, data)
        self.assertEqual(len(ran), len(HOSTILE) + 60)
        rows = json.loads(psql(self.database, f"""
            select json_object_agg(e.id, json_build_object(
                'status', e.status, 'inputs', e.inputs, 'outputs', e.outputs,
                'requests', (select coalesce(sum(quantity), 0) from flowgres.usage_events u
                             where u.execution_id = e.id and u.dimension = 'requests'),
                'egress', (select coalesce(sum(quantity), 0) from flowgres.usage_events u
                           where u.execution_id = e.id and u.dimension = 'egress'),
                'output_bytes', octet_length(e.outputs::text),
                'trails', (select count(*) from flowgres.execution_trails t where t.execution_id = e.id),
                'finished', (select t.finished_data ->> 'status' from flowgres.execution_trails t
                             where t.execution_id = e.id)))
            from flowgres.executions e where e.app_id = '{app['id']}'"""))
        self.assertEqual(sorted(rows), sorted(ran), "a row for every run answered 200, and no other")
        for id, (name, sent, data) in ran.items():
            row = rows[id]
            self.assertEqual((row["status"], row["inputs"], row["outputs"]), ("completed", {"text": sent}, data["outputs"]), name)
            self.assertEqual((row["requests"], row["egress"], row["trails"], row["finished"]),
                             (1, row["output_bytes"], 1, "completed"), name)
        # What was stored reads back through the API (no value stored that its readers
        # refuse): each run, with the node logs of its trail.
        for id, (name, sent, data) in ran.items():
            execution = self.ok("GET", f"/api/v1/executions/{id}", key=self.key)
            self.assertEqual((execution["status"], execution["outputs"]), ("completed", data["outputs"]), name)


if __name__ == "__main__":
    main()
