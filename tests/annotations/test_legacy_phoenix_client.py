"""The legacy ``px.Client`` (arize-phoenix ≤ 13, still in many notebooks) against a live
server: ``log_evaluations`` of span, trace and document evaluations, ``get_evaluations``,
``query_spans`` with several queries, ``get_qa_with_reference``, ``get_retrieved_documents``
and ``get_trace_dataset``.

The legacy package ships a whole Phoenix server under the ``phoenix`` package, which the
current ``arize-phoenix-client`` shares, so it lives in a virtualenv of its own
(``var/legacy-phoenix``, made on first use from the ``legacy-phoenix`` extra of
``pyproject.toml``, again whenever those pins change): the client code runs there as a user's
notebook would (``legacy_phoenix/flow.py``), and the test checks what it got and what EvalHub
stored. ``test_legacy_evaluations.py`` checks the same wire format with pyarrow."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from annotations.models import Annotation
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
FLOW = Path(__file__).with_name("legacy_phoenix") / "flow.py"
VENV = ROOT / "var" / "legacy-phoenix"

pytestmark = pytest.mark.django_db(transaction=True)


def _pins() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return project["project"]["optional-dependencies"]["legacy-phoenix"]


@pytest.fixture(scope="session")
def legacy_python() -> Path:
    """The legacy client's interpreter: ``var/legacy-phoenix`` with the extra's pins
    installed (a failed install fails the tests; nothing is skipped)."""
    pins = _pins()
    stamp = VENV / ".evalhub-pins"
    wanted = hashlib.sha256("\n".join(pins).encode()).hexdigest()
    python = VENV / "bin" / "python"
    if not stamp.exists() or stamp.read_text() != wanted or not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins],
            check=True,
            timeout=1200,
        )
        stamp.write_text(wanted)
    return python


@pytest.fixture
def run(legacy_python, live_server, api_key):  # type: ignore[no-untyped-def]
    def step(name: str, ids: dict[str, Any]) -> dict[str, Any]:
        done = subprocess.run(
            [str(legacy_python), str(FLOW), name, live_server.url, api_key, json.dumps(ids)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    return step


@pytest.fixture
def rag():  # type: ignore[no-untyped-def]
    first = factories.rag_trace(project="legacy", question="Refunds?")
    second = factories.rag_trace(project="legacy", question="Shipping?")
    return first, second


def _ids(spans) -> dict[str, str]:  # type: ignore[no-untyped-def]
    root, retriever, llm = spans
    return {
        "root": root.span_id,
        "retriever": retriever.span_id,
        "llm": llm.span_id,
        "trace": root.trace.trace_id,
    }


def test_log_and_get_evaluations(run, rag):  # type: ignore[no-untyped-def]
    ids = _ids(rag[0])
    got = run("log_evaluations", ids)
    assert Annotation.objects.filter(target_kind="DOCUMENT", name="relevance").count() == 2
    assert Annotation.objects.get(target_kind="TRACE").label == "good"
    assert got["names"] == ["Correctness", "Quality", "relevance"]
    assert got["kinds"] == {
        "Correctness": "SpanEvaluations",
        "Quality": "TraceEvaluations",
        "relevance": "DocumentEvaluations",
    }
    assert got["document_index"] == ["context.span_id", "document_position"]
    assert got["document_1_label"] == "irrelevant"
    assert got["correctness_score"] == 1.0
    assert got["default_project"] == 0


def test_query_spans_with_several_queries_and_aliases(run, rag):  # type: ignore[no-untyped-def]
    ids = _ids(rag[0])
    got = run("query_spans", ids)
    assert got["roots"] == sorted([ids["root"], rag[1][0].span_id])
    assert got["root_columns"] == ["question", "answer"]
    assert got["question"] == "Refunds?"
    assert ids["retriever"] in got["retrievers"]
    assert got["llms"] == sorted([ids["llm"], rag[1][2].span_id])


def test_rag_helpers(run, rag):  # type: ignore[no-untyped-def]
    ids = _ids(rag[0])
    got = run("rag_helpers", ids)
    assert got["document_index"] == ["context.span_id", "document_position"]
    assert got["reference_0"] == "Refunds within 30 days."
    assert got["input"] == "Refunds?"
    assert "Refunds within 30 days." in got["reference"]


def test_get_trace_dataset(run, rag):  # type: ignore[no-untyped-def]
    ids = _ids(rag[0])
    llm = rag[0][2]
    Annotation.objects.create(
        project=llm.project,
        target_kind="SPAN",
        span=llm,
        name="Correctness",
        annotator_kind="LLM",
        label="correct",
    )
    got = run("trace_dataset", ids)
    assert got["is_trace_dataset"] is True
    assert got["rows"] == 6
    assert ids["root"] in got["span_ids"]
    assert got["evaluations"] == ["Correctness"]
    assert got["llm_label"] == "correct"
