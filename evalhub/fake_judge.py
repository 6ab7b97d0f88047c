"""A fake OpenAI-compatible LLM judge: try EvalHub's evaluators, tasks and labeling queues
without an LLM account, and test against it.

Run it::

    python -m evalhub.fake_judge --port 8765

then add an AI provider in EvalHub (Settings → AI providers): kind "OpenAI-compatible endpoint",
base URL ``http://127.0.0.1:8765/v1``, any API key, any model name. It answers
``POST /v1/chat/completions`` (and Azure's ``/openai/deployments/<name>/chat/completions``) in
every output mode an evaluator uses — a tool call, JSON structured output, or text — with token
usage. The label is one of the choices the request offers (the tool's or the JSON schema's
``label`` enum, else the quoted choices in the prompt's instructions), picked from a hash of the
prompt: varied across items, and the same answer for the same prompt every time. ``--label``
pins one answer; ``--key`` and ``--model`` make it refuse other keys and models (401 / 404, as
OpenAI does); ``--delay`` makes every answer take that long.

In tests (``tests/evalhub/fake_openai.py``) the threaded ``FakeJudge`` also scripts failures,
queued with ``enqueue(...)`` and used one per request, in order::

    fake.enqueue(Behavior.status(429, retry_after="0"), Behavior.status(500))
    fake.enqueue(Behavior.slow(2.0), Behavior.empty(), Behavior.garbage())

``requests`` keeps every request body and headers; ``max_in_flight`` the most requests served
at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# Labels offered as quoted choices in a text-mode prompt: 'one of "a", "b"' / 'from: "a", "b"'.
_QUOTED_CHOICES = re.compile(r'(?:one of|from:)\s+((?:"[^"\n]{1,200}"(?:,\s*)?)+)')
_QUOTED = re.compile(r'"([^"\n]{1,200})"')
# Without choices in the request (e.g. a provider's connection test), the answer is one of these.
DEFAULT_LABELS = ("correct", "incorrect")
EXPLANATIONS = (
    "The answer addresses what was asked.",
    "The answer leaves out part of the question.",
    "The answer follows from the context given.",
    "The answer is not supported by the context.",
)


def offered_labels(body: dict[str, Any]) -> list[str]:
    """The labels a chat-completion request offers: the ``label`` enum of its tool or JSON
    schema, else the quoted choices in its last user message."""
    schemas = [tool.get("function", {}).get("parameters") for tool in body.get("tools") or []]
    response_format = body.get("response_format") or {}
    schemas.append((response_format.get("json_schema") or {}).get("schema"))
    for schema in schemas:
        if isinstance(schema, dict):
            label = (schema.get("properties") or {}).get("label") or {}
            choices = [c for c in label.get("enum") or [] if isinstance(c, str)]
            if choices:
                return choices
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            found = _QUOTED_CHOICES.findall(str(message.get("content") or ""))
            if found:
                return _QUOTED.findall(found[-1])
            break
    return []


def varied_label(body: dict[str, Any]) -> tuple[str, str]:
    """(label, explanation) for ``body``: one of its offered labels, chosen by a hash of its
    messages — the same prompt always gets the same answer."""
    choices = offered_labels(body) or list(DEFAULT_LABELS)
    prompt = json.dumps(body.get("messages") or [], sort_keys=True, default=str)
    digest = hashlib.sha256(prompt.encode()).digest()
    return choices[digest[0] % len(choices)], EXPLANATIONS[digest[1] % len(EXPLANATIONS)]


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


class FakeJudge:
    """The judge as a threaded HTTP server on 127.0.0.1 (tests); ``main`` serves it on asyncio.

    ``keys`` / ``models``: the only API keys and model names accepted (None: any).
    ``label``: the answer, pinned (None: a varied label per prompt, ``varied_label``)."""

    def __init__(
        self,
        *,
        keys: Collection[str] | None = None,
        models: Collection[str] | None = None,
        label: str | None = None,
        explanation: str | None = None,
        port: int = 0,
    ) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Behavior] = deque()
        self.requests: list[dict[str, Any]] = []
        self.answered = 0  # completions the standalone (asyncio) judge answered
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0  # seconds every answer takes (to observe concurrency)
        self.keys = frozenset(keys) if keys is not None else None
        self.models = frozenset(models) if models is not None else None
        self.label: str | None = label
        self.explanation: str | None = explanation
        self.content: str | None = None  # raw content override
        self.tool_arguments: str | None = None  # raw tool-call arguments override
        self.reply: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.check_key = True  # False: accept any key even when ``keys`` is set
        self._server = _Server(("127.0.0.1", port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- configuration ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def root_url(self) -> str:
        host, port = self._server.socket.getsockname()[:2]  # the bound (host, port)
        return f"http://{host}:{port}"

    def answer(self, label: str | None, explanation: str | None = None) -> None:
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

    def start(self) -> FakeJudge:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self) -> Behavior | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def verdict(self, body: dict[str, Any]) -> tuple[str, str | None]:
        """(label, explanation) for a request: pinned by ``answer``, else varied."""
        if self.label is not None:
            return self.label, self.explanation
        label, explanation = varied_label(body)
        return label, self.explanation if self.explanation is not None else explanation

    def refusal(self, *, key: str, model: str) -> tuple[int, str, str] | None:
        """(status, message, code) when ``key`` or ``model`` is not accepted, like OpenAI."""
        if self.check_key and self.keys is not None and key not in self.keys:
            # Like OpenAI: the message repeats part of the key it was given.
            message = (
                f"Incorrect API key provided: {key}. You can find your API key at the "
                "provider's dashboard."
            )
            return 401, message, "invalid_api_key"
        if self.models is not None and model not in self.models:
            return 404, f"The model `{model}` does not exist", "model_not_found"
        return None

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.reply is not None:
            return self.reply(body)
        label, explanation = self.verdict(body)
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if body.get("tools"):
            arguments = self.tool_arguments
            if arguments is None:
                data: dict[str, Any] = {"label": label}
                if explanation is not None:
                    data["explanation"] = explanation
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
                data = {"label": label}
                if explanation is not None:
                    data["explanation"] = explanation
                message["content"] = json.dumps(data)
            elif explanation is not None:
                message["content"] = f"EXPLANATION: {explanation}\nLABEL: {label}"
            else:
                message["content"] = label
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
                self._done()  # answered: no longer in flight (before the client can see it)
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
                self._counted = True
                try:
                    self._serve(body)
                finally:
                    self._done()

            def _done(self) -> None:
                """The request leaves ``in_flight`` once, before its answer is written: a
                client that has its answer (and gave its slot back) is never still counted,
                however late this thread runs on a busy machine."""
                if getattr(self, "_counted", False):
                    self._counted = False
                    with fake._lock:
                        fake.in_flight -= 1

            def _serve(self, body: dict[str, Any]) -> None:
                route = urlsplit(self.path).path
                if not route.endswith("/chat/completions"):
                    self._error(404, f"no route {route}")
                    return
                key = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                key = key or self.headers.get("api-key", "")
                model = body.get("model") or ""
                if "/deployments/" in route:
                    model = route.split("/deployments/", 1)[1].split("/", 1)[0]
                refused = fake.refusal(key=key, model=model)
                if refused is not None:
                    self._error(refused[0], refused[1], code=refused[2])
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


async def _serve_connection(
    fake: FakeJudge, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
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
            key = key or headers.get("api-key", "")
            model = str(body.get("model") or "")
            if "/deployments/" in path:
                model = path.split("/deployments/", 1)[1].split("/", 1)[0]
            refused = fake.refusal(key=key, model=model)
            answer: dict[str, Any]
            if urlsplit(path).path.endswith("/stats"):  # benchmarks count the answers
                status, answer = 200, {"requests": fake.answered}
            elif not urlsplit(path).path.endswith("/chat/completions"):
                status, answer = 404, {"error": {"message": f"no route {path}"}}
            elif refused is not None:
                status = refused[0]
                answer = {
                    "error": {"message": refused[1], "type": "fake_error", "code": refused[2]}
                }
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


def main(argv: list[str] | None = None) -> None:
    """Serve the fake judge until Ctrl-C: ``python -m evalhub.fake_judge --port 8765``.

    Standalone, it runs on asyncio rather than a thread per connection: a benchmark shares the
    machine with it, and the judge should take as little of the CPU as it can."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m evalhub.fake_judge",
        description="A fake OpenAI-compatible LLM judge: deterministic, varied labels, no account.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0: any free port (printed)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds each answer takes")
    parser.add_argument("--label", help="always answer this label (default: varied)")
    parser.add_argument("--key", action="append", help="accept only this API key (repeatable)")
    parser.add_argument("--model", action="append", help="accept only this model (repeatable)")
    args = parser.parse_args(argv)
    fake = FakeJudge(keys=args.key, models=args.model, label=args.label)
    fake._server.server_close()
    fake.delay = args.delay

    async def serve() -> None:
        server = await asyncio.start_server(
            lambda reader, writer: _serve_connection(fake, reader, writer),
            args.host,
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
