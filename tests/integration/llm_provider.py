#!/usr/bin/env python3
"""A model provider for tests, the demo and the benchmarks, speaking OpenAI's chat-completions
wire protocol (POST /v1/chat/completions, plain or streamed as Server-Sent Events with the
usage chunk of stream_options.include_usage; POST /v1/embeddings; GET /v1/models). It is not a model: it answers
what a test scripted, or by default echoes the prompt (as JSON that fits the requested
response_format schema when one is given).

Scripting, per model, first in first out (in process: provider.script(model, *steps); over
HTTP: POST /_script {"model", "steps": [...]}); a request for a model with nothing scripted
gets the default step. A step is a dict:
    reply: "text"            the answer (split into one token per word when streamed)
    json: {...}              the answer is this value as JSON text
    status: 429 | 500 | …    an OpenAI-style error with this status (retry_after: seconds → Retry-After)
    first_token_delay_ms     wait before the first token (or before a plain answer)
    token_delay_ms           wait between tokens
    cut_after_tokens: n      drop the connection after n tokens, mid-stream, without [DONE]
    drop_after: true         answer in full, then drop the (keep-alive) connection unannounced
    usage: {prompt_tokens, completion_tokens}   the usage to report instead of the counted one
Every request is recorded (GET /_requests, or provider.requests): path, headers, body, and the
client's port (one per connection: how keep-alive shows).

    python3 llm_provider.py --port 8090 [--host 127.0.0.1] [--latency-ms 50] [--api-key KEY]
"""

import argparse
import asyncio
import collections
import hashlib
import json
import logging
import re
import threading
import time

DEFAULT_MODEL = "flowgres-local-echo"

# A client that hangs up mid-answer is part of the tests; asyncio's warning about the write
# that followed is noise.
logging.getLogger("asyncio").setLevel(logging.ERROR)


def count_tokens(text):
    """About four characters per token, as OpenAI's rule of thumb; at least one."""
    return max(1, (len(text) + 3) // 4)


def split_tokens(text):
    return re.findall(r"\s*\S+", text) or [text]


def value_for(schema, text, depth=0):
    """A value that fits a (simple) JSON Schema, built from the prompt's text."""
    if depth > 8 or not isinstance(schema, dict):
        return text
    kind = schema.get("type")
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: value_for(sub, text, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        return [value_for(schema.get("items") or {}, text, depth + 1)]
    if kind in ("number", "integer"):
        return len(text)
    if kind == "boolean":
        return True
    return text[:500]


class Provider:
    def __init__(self, host="127.0.0.1", port=0, latency_ms=0, api_key=None):
        self.host, self.port = host, port
        self.latency_ms = latency_ms
        self.api_key = api_key
        self.scripts = collections.defaultdict(collections.deque)
        self.requests = []
        self.lock = threading.Lock()
        self.loop = None
        self.server = None
        self.thread = None

    # ---- scripting ----

    def script(self, model, *steps):
        with self.lock:
            self.scripts[model].extend(steps)

    def reset(self):
        with self.lock:
            self.scripts.clear()
            self.requests.clear()

    def next_step(self, model):
        with self.lock:
            queue = self.scripts.get(model)
            return queue.popleft() if queue else {}

    @property
    def base_url(self):
        return f"http://{self.host}:{self.port}/v1"

    # ---- running ----

    def start(self):
        """In a thread of its own (tests): returns once it listens."""
        ready = threading.Event()

        def run():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(
                asyncio.start_server(self.serve, self.host, self.port, backlog=4096, reuse_address=True))
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)
        return self

    def stop(self):
        if not self.loop:
            return

        async def shutdown():  # connections still open end here, not as "destroyed pending" tasks
            self.server.close()
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(5)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    async def serve_forever(self):
        self.server = await asyncio.start_server(self.serve, self.host, self.port, backlog=4096, reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]
        print(f"llm_provider listening on {self.base_url}", flush=True)
        async with self.server:
            await self.server.serve_forever()

    # ---- HTTP/1.1, keep-alive ----

    async def serve(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = b""
                if "content-length" in headers:
                    body = await reader.readexactly(int(headers["content-length"]))
                keep = await self.answer(method, path, headers, body, writer)
                if not keep or headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    def send(self, writer, status, document, extra_headers=()):
        if writer.is_closing():
            return
        body = json.dumps(document).encode()
        head = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}", "Content-Type: application/json",
                f"Content-Length: {len(body)}"] + list(extra_headers)
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    async def answer(self, method, path, headers, body, writer):
        if path == "/_script" and method == "POST":
            order = json.loads(body or b"{}")
            self.script(order.get("model", DEFAULT_MODEL), *order.get("steps", []))
            self.send(writer, 200, {"ok": True})
            return True
        if path == "/_requests":
            with self.lock:
                self.send(writer, 200, {"requests": list(self.requests)})
            return True
        if path == "/_reset" and method == "POST":
            self.reset()
            self.send(writer, 200, {"ok": True})
            return True
        try:
            document = json.loads(body) if body else {}
        except ValueError:
            document = None
        with self.lock:
            peer = writer.get_extra_info("peername")
            self.requests.append({"method": method, "path": path, "headers": headers, "body": document,
                                  "client_port": peer[1] if peer else None})
        if self.api_key and headers.get("authorization") != f"Bearer {self.api_key}":
            self.send(writer, 401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                              "code": "invalid_api_key"}})
            return True
        if path.rstrip("/") == "/v1/models" and method == "GET":
            with self.lock:
                models = sorted(set(self.scripts) | {DEFAULT_MODEL})
            self.send(writer, 200, {"object": "list", "data": [{"id": m, "object": "model", "created": 0,
                                                                 "owned_by": "flowgres-test"} for m in models]})
            return True
        if path.rstrip("/") == "/v1/embeddings" and method == "POST":
            return await self.embed(document, writer)
        if path.rstrip("/") != "/v1/chat/completions" or method != "POST":
            self.send(writer, 404, {"error": {"message": f"no route {method} {path}", "type": "invalid_request_error"}})
            return True
        if not isinstance(document, dict) or not isinstance(document.get("messages"), list):
            self.send(writer, 400, {"error": {"message": "messages is required", "type": "invalid_request_error"}})
            return True
        return await self.complete(document, writer)

    async def embed(self, request, writer):
        """POST /v1/embeddings: one vector of 8 numbers per input, the same for the same text (a
        scripted status fails it, as for completions)."""
        inputs = request.get("input") if isinstance(request, dict) else None
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(text, str) for text in inputs):
            self.send(writer, 400, {"error": {"message": "input must be a string or an array of strings",
                                              "type": "invalid_request_error"}})
            return True
        model = request.get("model") or DEFAULT_MODEL
        step = self.next_step(model)
        await asyncio.sleep((step.get("first_token_delay_ms", 0) + self.latency_ms) / 1000)
        if "status" in step:
            self.send(writer, step["status"], {"error": {"message": f"scripted {step['status']}", "type": "server_error"}})
            return True
        def vector(text):
            digest = hashlib.sha256(text.encode()).digest()
            return [round(byte / 255 - 0.5, 4) for byte in digest[:8]]
        tokens = sum(count_tokens(text) for text in inputs)
        self.send(writer, 200, {"object": "list", "model": model,
                                "data": [{"object": "embedding", "index": i, "embedding": vector(text)}
                                         for i, text in enumerate(inputs)],
                                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
        return True

    async def complete(self, request, writer):
        model = request.get("model") or DEFAULT_MODEL
        step = self.next_step(model)
        prompt = "\n".join(str(m.get("content", "")) for m in request["messages"] if isinstance(m, dict))
        await asyncio.sleep((step.get("first_token_delay_ms", 0) + self.latency_ms) / 1000)
        if "status" in step:
            extra = [f"Retry-After: {step['retry_after']}"] if "retry_after" in step else []
            kind = "rate_limit_exceeded" if step["status"] == 429 else "server_error"
            self.send(writer, step["status"], {"error": {"message": step.get("message", f"scripted {step['status']}"),
                                                          "type": kind, "code": kind}}, extra)
            return True
        text = self.reply_text(step, request, prompt)
        tokens = split_tokens(text)
        usage = {"prompt_tokens": count_tokens(prompt), "completion_tokens": len(tokens)}
        usage.update(step.get("usage") or {})
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        ident, created = f"chatcmpl-{time.time_ns()}", int(time.time())
        if not request.get("stream"):
            self.send(writer, 200, {"id": ident, "object": "chat.completion", "created": created, "model": model,
                                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                                 "finish_reason": "stop"}], "usage": usage})
            return True
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")

        def event(data):
            payload = f"data: {data}\n\n".encode()
            writer.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")

        def chunk(delta, finish=None):
            return json.dumps({"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        event(chunk({"role": "assistant", "content": ""}))
        for index, token in enumerate(tokens):
            if "cut_after_tokens" in step and index >= step["cut_after_tokens"]:
                await writer.drain()
                writer.transport.abort()
                return False
            if index and step.get("token_delay_ms"):
                await writer.drain()
                await asyncio.sleep(step["token_delay_ms"] / 1000)
            event(chunk({"content": token}))
        event(chunk({}, "stop"))
        if (request.get("stream_options") or {}).get("include_usage"):
            event(json.dumps({"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                              "choices": [], "usage": usage}))
        event("[DONE]")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        if step.get("drop_after"):
            writer.transport.abort()
            return False
        return True

    def reply_text(self, step, request, prompt):
        if "reply" in step:
            return step["reply"]
        if "json" in step:
            return json.dumps(step["json"])
        # The default: the last user message echoed, as JSON fitting the schema when asked for one.
        last = next((str(m.get("content", "")) for m in reversed(request["messages"])
                     if isinstance(m, dict) and m.get("role") == "user"), prompt)
        response_format = request.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema") or {}
            return json.dumps(value_for(schema, last))
        if response_format.get("type") == "json_object":
            return json.dumps({"text": last})
        return "Echo: " + last


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--latency-ms", type=int, default=0, help="simulated model latency before the first token")
    parser.add_argument("--api-key", default=None, help="require this Bearer key")
    arguments = parser.parse_args()
    provider = Provider(arguments.host, arguments.port, arguments.latency_ms, arguments.api_key)
    try:
        asyncio.run(provider.serve_forever())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
