"""Every OpenTelemetry client sends the same trace and finds it stored identically.

The trace is ``tests/node/trace.json`` (fixed names, times, statuses, attributes of every OTLP
type, events, OpenInference kinds with PROMPT). Each exporter sends it, as an application
would, to EvalHub's production servers (gunicorn with ``evalhub/gunicorn_conf.py``; the
OTLP/gRPC receiver); the spans stored are compared, without their random ids, with the same
trace stored straight through ``spans_ingest``.

Python: the OTLP/HTTP protobuf exporter, the OTLP/gRPC exporter, and ``phoenix.otel.register()``
configured only by environment variables (then it sends over gRPC) and with arguments over
HTTP. Python has no
OTLP/HTTP JSON exporter that installs beside the others (``opentelemetry-exporter-otlp-json-http``
0.66b1 pins ``opentelemetry-exporter-otlp-common`` 0.66b1, the 1.45 exporters 0.66b2); JSON comes
from Node. Node.js (``tests/node``): ``@opentelemetry/exporter-trace-otlp-http`` (JSON),
``-proto`` (protobuf) and ``@arizeai/phoenix-otel``, all of which send chunked bodies. Each with
gzip and without.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from tests import factories
from tracing.models import Span, Trace
from tracing.store.records import SpanRecord
from tracing.store.services import spans_ingest

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
DEFINITION: dict[str, Any] = json.loads((NODE_DIR / "trace.json").read_text())
BASE_NS = int(DEFINITION["start_unix_nano"])

pytestmark = pytest.mark.usefixtures("transactional_db")


# --- Node.js ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def node_exporters() -> Path:
    """``tests/node`` with its packages installed (``npm ci`` when the lock file changed since
    the last install). A failed install fails the tests; CI installs them in ``.ci/run``."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are needed for the Node exporters")
    lock = hashlib.sha256((NODE_DIR / "package-lock.json").read_bytes()).hexdigest()
    stamp = NODE_DIR / "node_modules" / ".evalhub-lock"
    if not stamp.exists() or stamp.read_text() != lock:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=900
        )
        stamp.write_text(lock)
    return NODE_DIR


def send_with_node(
    node_dir: Path, exporter: str, *, url: str, api_key: str, project: str, gzip: bool
) -> None:
    env = {
        **os.environ,
        "EXPORTER": exporter,
        "ENDPOINT": url,
        "API_KEY": api_key,
        "PROJECT": project,
        "GZIP": "1" if gzip else "0",
    }
    done = subprocess.run(
        [shutil.which("node") or "node", "send_trace.mjs"],
        cwd=node_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- Python -----------------------------------------------------------------------------------


def build_trace(provider: TracerProvider) -> None:
    """The trace of ``trace.json`` through the OpenTelemetry SDK, as an instrumented app makes
    it; children end before their parent."""
    tracer = provider.get_tracer("evalhub-python-matrix")
    spans: dict[str, Any] = {}
    for item in DEFINITION["spans"]:
        parent = item["parent"]
        spans[item["name"]] = tracer.start_span(
            item["name"],
            context=otel_trace.set_span_in_context(spans[parent]) if parent else None,
            start_time=BASE_NS + item["start"],
            attributes=item["attributes"],
        )
    for item in reversed(DEFINITION["spans"]):
        span = spans[item["name"]]
        for event in item["events"]:
            span.add_event(event["name"], event["attributes"], timestamp=BASE_NS + event["time"])
        status = item["status"]
        if status["code"] != "UNSET":
            span.set_status(Status(StatusCode[status["code"]], status.get("message")))
        span.end(end_time=BASE_NS + item["end"])


def send_with_sdk(exporter: Any, project: str) -> None:
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "python-matrix", "openinference.project.name": project}
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    build_trace(provider)
    provider.shutdown()


def send_with_phoenix_register(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, **arguments: Any
) -> None:
    from phoenix.otel import register

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_COMPRESSION", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    provider = register(set_global_tracer_provider=False, verbose=False, **arguments)
    build_trace(provider)
    provider.force_flush()
    provider.shutdown()


# --- What is stored ---------------------------------------------------------------------------


def reference_records(project: str) -> list[SpanRecord]:
    """The trace of ``trace.json`` as records, stored straight through ``spans_ingest``."""
    from datetime import UTC, datetime, timedelta

    def time(offset: int) -> datetime:
        nanos = BASE_NS + offset
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=nanos // 1000)

    trace_id = factories.next_hex(32)
    ids = {item["name"]: factories.next_hex(16) for item in DEFINITION["spans"]}
    return [
        SpanRecord(
            trace_id=trace_id,
            span_id=ids[item["name"]],
            parent_id=ids[item["parent"]] if item["parent"] else None,
            name=item["name"],
            start_time=time(item["start"]),
            end_time=time(item["end"]),
            status_code=item["status"]["code"],
            status_message=item["status"].get("message", ""),
            attributes=dict(item["attributes"]),
            events=[
                {
                    "name": event["name"],
                    "timestamp": time(event["time"]).isoformat(),
                    "attributes": event["attributes"],
                }
                for event in item["events"]
            ],
            project_name=project,
        )
        for item in DEFINITION["spans"]
    ]


def stored(project: str) -> dict[str, Any]:
    """What a user finds of the project's one trace, without ids and project names."""
    spans = list(Span.objects.filter(project__name=project).select_related("session"))
    names = {span.span_id: span.name for span in spans}
    [trace] = Trace.objects.filter(project__name=project).select_related("session")
    return {
        "trace": {
            "root": trace.root_span_name,
            "has_root": trace.root_span_id == next(s.span_id for s in spans if not s.parent_id),
            "times": (trace.start_time, trace.end_time, trace.latency_ms),
            "counts": (trace.span_count, trace.error_count),
            "tokens": (trace.prompt_tokens, trace.completion_tokens, trace.total_tokens),
            "cost": trace.cost,
            "session": trace.session.session_id if trace.session else None,
        },
        "spans": {
            span.name: {
                "parent": names.get(span.parent_id or ""),
                "kind": span.span_kind,
                "status": (span.status_code, span.status_message),
                "times": (span.start_time, span.end_time, span.latency_ms),
                "attributes": span.attributes,
                "events": span.events,
                "input": (span.input_value, span.input_mime_type),
                "output": (span.output_value, span.output_mime_type),
                "llm": (span.model_name, span.prompt_tokens, span.completion_tokens),
                "total_tokens": span.total_tokens,
                "cost": span.cost,
                "session": (span.session_key, span.session.session_id if span.session else None),
                "user": span.user_id,
                "metadata": span.metadata,
                "tags": span.tags,
            }
            for span in spans
        },
    }


def assert_stored_as_sent(project: str) -> None:
    spans_ingest(records=reference_records("reference"), default_project="reference")
    expected = stored("reference")
    # The reference itself is the trace of trace.json: a check that the comparison has teeth.
    assert expected["trace"]["root"] == "support_agent" and expected["trace"]["has_root"]
    assert expected["trace"]["counts"] == (4, 1)
    assert expected["trace"]["tokens"] == (120, 30, 150)
    assert expected["spans"]["ChatPromptTemplate"]["kind"] == "PROMPT"
    assert expected["spans"]["ChatCompletion"]["attributes"]["llm"]["input_messages"][1] == {
        "message": {"role": "user", "content": "Where is my order #1234? ünïcødé ✓"}
    }
    assert expected["spans"]["support_agent"]["metadata"] == {"region": "eu-west", "tier": 2}
    actual = stored(project)
    assert actual == expected, "\n".join(differences(actual, expected))


def differences(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Where two dumps differ, one line a leaf, for a readable failure."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        return [
            line
            for key in sorted(set(actual) | set(expected), key=str)
            for line in differences(actual.get(key), expected.get(key), f"{path}.{key}")
        ]
    return [] if actual == expected else [f"{path}: {actual!r} != {expected!r}"]


# --- The matrix -------------------------------------------------------------------------------

Sender = Callable[..., None]


def python_http(gunicorn_server: Any, api_key: str, project: str, gzip: bool, **_: Any) -> None:
    exporter = HttpExporter(
        endpoint=f"{gunicorn_server.url}/v1/traces",
        headers={"api_key": api_key},
        compression=Compression.Gzip if gzip else Compression.NoCompression,
        timeout=15,
    )
    send_with_sdk(exporter, project)


def python_grpc(grpc_endpoint: str, api_key: str, project: str, gzip: bool, **_: Any) -> None:
    exporter = GrpcExporter(
        endpoint=grpc_endpoint,
        insecure=True,
        headers={"authorization": f"Bearer {api_key}"},
        compression=grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression,
        timeout=15,
    )
    send_with_sdk(exporter, project)


def phoenix_grpc(
    grpc_endpoint: str, api_key: str, project: str, gzip: bool, monkeypatch: Any, **_: Any
) -> None:
    """Environment variables only: an endpoint without a path means gRPC, on
    PHOENIX_GRPC_PORT."""
    host, port = grpc_endpoint.split(":")
    env = {
        "PHOENIX_COLLECTOR_ENDPOINT": f"http://{host}:{port}",
        "PHOENIX_GRPC_PORT": port,
        "PHOENIX_API_KEY": api_key,
        "PHOENIX_PROJECT_NAME": project,
    }
    if gzip:
        env["OTEL_EXPORTER_OTLP_COMPRESSION"] = "gzip"
    send_with_phoenix_register(env, monkeypatch)


def phoenix_http(
    gunicorn_server: Any, api_key: str, project: str, gzip: bool, monkeypatch: Any, **_: Any
) -> None:
    """As the README shows it. (By environment variables alone, Phoenix sends OTLP/HTTP to
    PHOENIX_GRPC_PORT, whatever port PHOENIX_COLLECTOR_ENDPOINT names.)"""
    env = {"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"} if gzip else {}
    send_with_phoenix_register(
        env,
        monkeypatch,
        endpoint=f"{gunicorn_server.url}/v1/traces",
        headers={"api_key": api_key},
        project_name=project,
        protocol="http/protobuf",
    )


def node(exporter: str) -> Sender:
    def send(
        gunicorn_server: Any, node_exporters: Path, api_key: str, project: str, gzip: bool, **_: Any
    ) -> None:
        send_with_node(
            node_exporters,
            exporter,
            url=gunicorn_server.url,
            api_key=api_key,
            project=project,
            gzip=gzip,
        )

    return send


SENDERS: dict[str, tuple[Sender, tuple[str, ...]]] = {
    "python-http-protobuf": (python_http, ("gunicorn_server",)),
    "python-grpc": (python_grpc, ("grpc_endpoint",)),
    "phoenix-register-env-grpc": (phoenix_grpc, ("grpc_endpoint",)),
    "phoenix-register-http": (phoenix_http, ("gunicorn_server",)),
    "node-http-json": (node("http-json"), ("gunicorn_server", "node_exporters")),
    "node-http-protobuf": (node("http-proto"), ("gunicorn_server", "node_exporters")),
    "node-phoenix-otel": (node("phoenix"), ("gunicorn_server", "node_exporters")),
}


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("client", list(SENDERS))
def test_every_exporter_stores_the_same_trace(request, client, gzip, api_key, monkeypatch):
    send, servers = SENDERS[client]
    fixtures = {name: request.getfixturevalue(name) for name in servers}
    project = f"matrix-{client}-{'gzip' if gzip else 'plain'}"

    send(api_key=api_key, project=project, gzip=gzip, monkeypatch=monkeypatch, **fixtures)

    assert_stored_as_sent(project)
