"""A fake OpenAI-compatible server for tests: a threaded ``http.server`` on 127.0.0.1.

It answers ``POST /v1/chat/completions`` (and Azure's
``/openai/deployments/<name>/chat/completions``) with token usage, as a tool call when the
request has tools, else as message content. What it answers is set with ``answer(...)`` or
``reply_with(...)``; scripted failures are queued with ``enqueue(...)`` and used one per
request, in order:

    fake.enqueue(Behavior.status(429, retry_after="0"), Behavior.status(500))
    fake.enqueue(Behavior.slow(2.0), Behavior.empty(), Behavior.garbage())

``requests`` keeps every request body and headers; ``max_in_flight`` the most requests served
at once. Use the ``fake_openai`` fixture: ``fake_openai.base_url`` goes in a provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

VALID_KEY = "sk-test-fake-0123456789abcdef"
KNOWN_MODELS = {"judge-small", "judge-large", "gpt-4o-mini"}


@dataclass(frozen=True)
class Behavior:
    kind: str  # "status" / "slow" / "empty" / "garbage" / "no_choices"
    code: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @classmethod
    def status(cls, code: int, *, retry_after: str | None = None) -> Behavior:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls("status", code=code, headers=headers)

    @classmethod
    def slow(cls, seconds: float) -> Behavior:
        return cls("slow", seconds=seconds)

    @classmethod
    def empty(cls) -> Behavior:
        """A completion whose message has no content and no tool calls."""
        return cls("empty")

    @classmethod
    def garbage(cls) -> Behavior:
        """A 200 with a body that is not JSON."""
        return cls("garbage")

    @classmethod
    def no_choices(cls) -> Behavior:
        return cls("no_choices")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a benchmark opens a connection per concurrent request


class FakeOpenAI:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Behavior] = deque()
        self.requests: list[dict[str, Any]] = []
        self.answered = 0  # completions the standalone (asyncio) judge answered
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0  # seconds every answer takes (to observe concurrency)
        self.label = "correct"
        self.explanation: str | None = "The answer matches the context."
        self.content: str | None = None  # raw content override
        self.tool_arguments: str | None = None  # raw tool-call arguments override
        self.reply: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.check_key = True
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- configuration ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def root_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, label: str, explanation: str | None = None) -> None:
        """The verdict, rendered per output mode (tool call, JSON or text)."""
        self.label, self.explanation = label, explanation
        self.content = self.tool_arguments = None

    def reply_with(self, *, content: str | None = None, tool_arguments: str | None = None) -> None:
        """Answer exactly this content / these tool-call arguments."""
        self.content, self.tool_arguments = content, tool_arguments

    def enqueue(self, *behaviors: Behavior) -> None:
        with self._lock:
            self._queue.extend(behaviors)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.max_in_flight = 0

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests]

    # --- serving ---------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self) -> Behavior | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.reply is not None:
            return self.reply(body)
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if body.get("tools"):
            arguments = self.tool_arguments
            if arguments is None:
                data: dict[str, Any] = {"label": self.label}
                if self.explanation is not None:
                    data["explanation"] = self.explanation
                arguments = json.dumps(data)
            name = body["tools"][0]["function"]["name"]
            message["tool_calls"] = [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ]
            finish = "tool_calls"
        else:
            finish = "stop"
            if self.content is not None:
                message["content"] = self.content
            elif body.get("response_format"):
                data = {"label": self.label}
                if self.explanation is not None:
                    data["explanation"] = self.explanation
                message["content"] = json.dumps(data)
            elif self.explanation is not None:
                message["content"] = f"EXPLANATION: {self.explanation}\nLABEL: {self.label}"
            else:
                message["content"] = self.label
        prompt_text = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        prompt_tokens = len(prompt_text.split())
        completion_tokens = len(json.dumps(message).split())
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # silence
                pass

            def _send(
                self,
                status: int,
                payload: bytes,
                headers: dict[str, str] | None = None,
                content_type: str = "application/json",
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def _error(
                self,
                status: int,
                message: str,
                headers: dict[str, str] | None = None,
                code: str | None = None,
            ) -> None:
                body = {"error": {"message": message, "type": "fake_error", "code": code}}
                self._send(status, json.dumps(body).encode(), headers)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                with fake._lock:
                    fake.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    self._serve(body)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

            def _serve(self, body: dict[str, Any]) -> None:
                route = urlsplit(self.path).path
                if not route.endswith("/chat/completions"):
                    self._error(404, f"no route {route}")
                    return
                key = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                key = key or self.headers.get("api-key", "")
                if fake.check_key and key != VALID_KEY:
                    # Like OpenAI: the message repeats part of the key it was given.
                    self._error(
                        401,
                        f"Incorrect API key provided: {key}. You can find your API key at "
                        "the provider's dashboard.",
                        code="invalid_api_key",
                    )
                    return
                model = body.get("model") or ""
                if "/deployments/" in route:
                    model = route.split("/deployments/", 1)[1].split("/", 1)[0]
                if model not in KNOWN_MODELS:
                    self._error(404, f"The model `{model}` does not exist", code="model_not_found")
                    return
                behavior = fake._next()
                if fake.delay:
                    time.sleep(fake.delay)
                if behavior is not None and behavior.kind == "status":
                    self._error(behavior.code, f"scripted {behavior.code}", behavior.headers)
                    return
                if behavior is not None and behavior.kind == "slow":
                    time.sleep(behavior.seconds)
                if behavior is not None and behavior.kind == "garbage":
                    self._send(200, b"<html>upstream proxy error</html>", content_type="text/html")
                    return
                completion = fake._completion(body)
                if behavior is not None and behavior.kind == "empty":
                    completion["choices"][0]["message"] = {"role": "assistant", "content": ""}
                if behavior is not None and behavior.kind == "no_choices":
                    completion["choices"] = []
                # The client may have given up (a timeout test).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._send(200, json.dumps(completion).encode())

        return Handler


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A running fake OpenAI-compatible server; ``.base_url`` ends in ``/v1``."""
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()


async def _serve_connection(
    fake: FakeOpenAI, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """One keep-alive connection of the standalone judge: each ``POST …/chat/completions``
    is answered like the threaded server does for the default behaviour, after ``fake.delay``."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1] if lines[0].count(" ") >= 2 else "/"
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            raw = await reader.readexactly(int(headers.get("content-length") or 0))
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            key = headers.get("authorization", "").removeprefix("Bearer ").strip()
            if path.endswith("/stats"):  # benchmarks count the requests answered
                status, answer = 200, {"requests": fake.answered}
            elif not path.endswith("/chat/completions"):
                status, answer = 404, {"error": {"message": f"no route {path}"}}
            elif key != VALID_KEY:
                status, answer = 401, {"error": {"message": "Incorrect API key provided"}}
            elif body.get("model") not in KNOWN_MODELS:
                status, answer = 404, {"error": {"message": "The model does not exist"}}
            else:
                await asyncio.sleep(fake.delay)
                status, answer = 200, fake._completion(body)
                fake.answered += 1
            payload = json.dumps(answer).encode()
            writer.write(
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def main() -> None:
    """Serve the fake judge on its own (benchmarks): ``python -m tests.evalhub.fake_openai
    --port 8765 --delay 0.2``. Every request is answered after ``--delay`` seconds.

    Standalone, it runs on asyncio rather than a thread per connection: a benchmark shares the
    machine with it, and the judge should take as little of the CPU as it can (about a tenth
    of what the threaded test server takes per request)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.2)
    args = parser.parse_args()
    fake = FakeOpenAI()
    fake._server.server_close()
    fake.delay = args.delay

    async def serve() -> None:
        server = await asyncio.start_server(
            lambda reader, writer: _serve_connection(fake, reader, writer),
            "127.0.0.1",
            args.port,
            backlog=1024,
        )
        host, port = server.sockets[0].getsockname()[:2]
        print(f"http://{host}:{port}/v1", flush=True)
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
