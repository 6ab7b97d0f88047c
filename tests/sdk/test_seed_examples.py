"""Every code block of the Arize spans SDK page, run as a reader would copy it.

The page is the product's seed document, kept verbatim in ``tests/sdk/seeds/``; its blocks are
found by ``tests/sdk/seed_page.py`` (the saved text has no fences and no indentation). A block
runs against a live EvalHub with only its ``arize`` imports renamed to ``evalhub_client`` (the
page never builds a client: ``client`` is given, as the page assumes), with the projects, spans,
DataFrames and ids the page assumes exist, and each test asserts what the page says the block
does: rows written, annotations stored, metadata changed, spans deleted, the output printed.

Blocks that run nothing are listed in ``NOT_RUN`` with the reason; ``test_every_block_of_the_
page_is_run_or_explained`` fails when the page has a block that no test claims.
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openai
import pandas as pd
import pyarrow.parquet as pq
import pytest
from evalhub_client import Client

from annotations.models import Annotation
from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories
from tests.evalhub.fake_openai import VALID_KEY, FakeOpenAI, fake_openai  # noqa: F401
from tests.sdk import seed_page
from tracing.models import Span

SEED = Path(__file__).parent / "seeds" / "003_6ac77984829c93c9.txt"
BLOCKS = seed_page.page(SEED)

# The project names the page uses.
PROJECT = "your-project-name-or-id"
APP = "my-llm-app"

BlockKey = tuple[str, str]  # (the block's section heading, a line of the block)
RUN_BY: dict[BlockKey, str] = {}
NOT_RUN: dict[BlockKey, str] = {
    ("Type Handling", "| Python type | Stored as |"): (
        "a table, not code: how update_metadata stores each Python type; every row is asserted "
        "by tests/sdk/test_metadata.py::test_update_metadata_types_and_patch_document"
    ),
    ("Response Structure", "| Key | Description |"): (
        "a table, not code: the keys of update_metadata's result; the block after it prints "
        "every key (test_response_structure)"
    ),
}


def block(key: BlockKey) -> seed_page.Block:
    heading, line = key
    found = [b for b in BLOCKS if b.heading == heading and line in [x.strip() for x in b.lines]]
    assert len(found) == 1, f"{key}: {len(found)} blocks of the page match"
    return found[0]


def runs(heading: str, line: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Marks the test that runs the block under ``heading`` that has ``line``."""

    def register(test: Callable[..., None]) -> Callable[..., None]:
        RUN_BY[(heading, line)] = test.__name__
        return test

    return register


def _statements(key: BlockKey) -> tuple[str, list[ast.stmt]]:
    found = block(key)
    code = seed_page.rewrite_imports(found.code)
    for before, after in zip(found.lines, code.splitlines(), strict=True):
        if before != after:  # only the imports are rewritten
            assert after.lstrip().startswith(("from evalhub_client", "import evalhub_client"))
    tree = ast.parse(code)
    ast.increment_lineno(tree, found.first_line - 1)  # tracebacks give the page's line
    return code, tree.body


def _exec(statement: ast.stmt, namespace: dict[str, Any]) -> None:
    module = ast.Module(body=[statement], type_ignores=[])
    exec(compile(module, str(SEED), "exec"), namespace)


def run(
    key: BlockKey,
    namespace: dict[str, Any],
    *,
    skip_elided_call: bool = False,
    after_each: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the block's statements in ``namespace``, one at a time (``after_each`` sees each).
    With ``skip_elided_call`` the first statement, a call whose arguments the page elides
    (``f(...)``, which stands for the calls shown before it), is not run."""
    statements = _statements(key)[1]
    if skip_elided_call:
        calls = [node for node in ast.walk(statements[0]) if isinstance(node, ast.Call)]
        assert [ast.unparse(arg) for call in calls for arg in call.args] == ["..."]
        statements = statements[1:]
    for statement in statements:
        _exec(statement, namespace)
        if after_each is not None:
            after_each(ast.unparse(statement), namespace)
    return namespace


def given(key: BlockKey, *names: str) -> dict[str, Any]:
    """What a block of the page defines for the blocks after it (its imports and the
    assignments to ``names``), run alone: the variables a later block assumes exist. ``pd`` is
    there, as the page imports it once for all blocks."""
    namespace: dict[str, Any] = {"pd": pd}
    for statement in _statements(key)[1]:
        targets = getattr(statement, "targets", [])
        if isinstance(statement, ast.Import | ast.ImportFrom) or any(
            isinstance(t, ast.Name) and t.id in names for t in targets
        ):
            _exec(statement, namespace)
    assert set(names) <= set(namespace), f"{key} defines {sorted(namespace)}"
    return {name: namespace[name] for name in names}


def store(project: str, *span_ids: str, start: datetime, **fields: Any) -> list[Span]:
    """Spans with the page's ids (one trace each), started a minute apart from ``start``."""
    records = [
        factories.span_record(
            span_id=span_id, name=f"call {span_id}", start=start + timedelta(minutes=i), **fields
        )
        for i, span_id in enumerate(span_ids)
    ]
    return factories.ingest(records, project=project)


def results(span_id: str) -> dict[str, tuple[Any, ...]]:
    return {
        a.name: (a.label, a.score, a.explanation, a.annotator_kind)
        for a in Annotation.objects.filter(span__span_id=span_id)
    }


def metadata(span_id: str) -> dict[str, Any]:
    return Span.objects.get(span_id=span_id).metadata


@pytest.fixture
def page_client(client: Client) -> Iterator[dict[str, Any]]:
    """The namespace a block starts with: the page's ``client``."""
    yield {"client": client}


# --- the blocks --------------------------------------------------------------------------------


def test_every_block_of_the_page_is_run_or_explained():
    claimed = {**{k: f"run by {v}" for k, v in RUN_BY.items()}, **NOT_RUN}
    assert len(BLOCKS) == 18
    # The page never builds a client (its blocks use ``client``), so only imports are rewritten.
    assert not any("ArizeClient" in b.code or "Client(" in b.code for b in BLOCKS)
    by_block = {id(block(key)): key for key in claimed}
    assert [b for b in BLOCKS if id(b) not in by_block] == []
    assert len(by_block) == len(claimed)  # one key per block
    assert [b.kind for b in BLOCKS].count("table") == len(NOT_RUN)
    # Every test named here exists in this module.
    assert set(RUN_BY.values()) <= set(globals())


@runs("List Spans", "print(span.span_id, span.name)")
def test_list_spans(page_client, capsys):
    january = store(PROJECT, "jan-10", "jan-20", start=datetime(2024, 1, 10, tzinfo=UTC))
    last = store(PROJECT, "jan-31", start=datetime(2024, 1, 31, 23, 59, tzinfo=UTC))
    store(PROJECT, "feb-1", start=datetime(2024, 2, 1, tzinfo=UTC))  # end_time is exclusive
    store(PROJECT, "dec-31", start=datetime(2023, 12, 31, 23, 59, tzinfo=UTC))
    namespace = run(("List Spans", "print(span.span_id, span.name)"), page_client)

    newest_first = [*last, *reversed(january)]
    assert capsys.readouterr().out.splitlines() == [f"{s.span_id} {s.name}" for s in newest_first]
    resp = namespace["resp"]
    assert resp.pagination.has_more is False
    assert [span.context.trace_id for span in resp.spans] == [
        s.trace.trace_id for s in newest_first
    ]


@runs("Filter Spans", "# Combine filters with AND / OR")
def test_filter_spans(page_client):
    start = datetime(2024, 3, 1, tzinfo=UTC)
    (a,) = store(PROJECT, "a-error-slow", start=start, status_code="ERROR", latency_ms=1500)
    (b,) = store(PROJECT, "b-error", start=start, status_code="ERROR", latency_ms=200)
    (c,) = store(PROJECT, "c-ok-slow", start=start, latency_ms=2000)
    (d,) = store(PROJECT, "d-ok", start=start, latency_ms=100)

    def result(span: Span, name: str, label: str) -> AnnotationInput:
        kind = "LLM" if name == "Correctness" else "HUMAN"  # an evaluation, an annotation
        return AnnotationInput(
            target_kind="SPAN", target_id=span.span_id, name=name, annotator_kind=kind, label=label
        )

    annotations_upsert(
        items=[
            result(a, "Correctness", "correct"),
            result(b, "Correctness", "incorrect"),
            result(d, "Correctness", "correct"),
            result(a, "Quality", "good"),
            result(c, "Quality", "bad"),
            result(d, "Quality", "good"),
        ]
    )
    seen: list[tuple[str, set[str]]] = []

    def after(statement: str, namespace: dict[str, Any]) -> None:
        seen.append((statement, {span.span_id for span in namespace["resp"].spans}))

    run(("Filter Spans", "# Combine filters with AND / OR"), page_client, after_each=after)
    assert [ids for _, ids in seen] == [
        {a.span_id, b.span_id},  # status_code = 'ERROR'
        {a.span_id, d.span_id},  # eval.Correctness.label = 'correct'
        {a.span_id, d.span_id},  # annotation.Quality.label = 'good'
        {a.span_id, c.span_id},  # latency_ms > 1000
        {a.span_id},  # status_code = 'ERROR' AND eval.Correctness.label = 'correct'
    ]
    assert "AND eval.Correctness.label" in seen[-1][0]


@runs("Log Spans", 'print(f"Logged spans successfully: {response.status_code}")')
def test_log_spans(page_client, capsys):
    run(("Log Spans", 'print(f"Logged spans successfully: {response.status_code}")'), page_client)

    assert capsys.readouterr().out == "Logged spans successfully: 200\n"
    span = Span.objects.select_related("project", "trace").get(span_id="span-1")
    assert (span.project.name, span.trace.trace_id, span.name) == (APP, "trace-1", "llm_call")
    assert (span.span_kind, span.model_name, span.latency_ms) == ("LLM", "gpt-4", 2000)
    assert span.start_time == datetime(2024, 1, 15, 10, tzinfo=UTC)
    # The page's placeholders ([...]) stand for messages it does not show: nothing is stored.
    assert span.attributes == {"llm": {"model_name": "gpt-4"}}
    assert results("span-1") == {
        "Correctness": ("correct", 1.0, "The model's response was accurate.", "LLM")
    }


@runs("Log Spans Only", "dataframe=spans_df,")
def test_log_spans_only(page_client):
    spans_df = given(("Log Spans", "spans_df = pd.DataFrame(["), "spans_df")["spans_df"]
    run(("Log Spans Only", "dataframe=spans_df,"), {**page_client, "spans_df": spans_df})

    span = Span.objects.get(span_id="span-1")
    assert (span.project.name, span.name, span.model_name) == (APP, "llm_call", "gpt-4")
    assert not Annotation.objects.exists()


@runs("Update Evaluations", 'print("Updated evaluations successfully")')
def test_update_evaluations(page_client, capsys):
    store(APP, "span-1", "span-2", start=datetime(2024, 1, 15, tzinfo=UTC))
    namespace = run(
        ("Update Evaluations", 'print("Updated evaluations successfully")'), page_client
    )

    assert capsys.readouterr().out == "Updated evaluations successfully\n"
    assert results("span-1") == {
        "Relevance": ("relevant", 0.95, "The response directly answers the question.", "LLM")
    }
    assert results("span-2") == {
        "Relevance": ("not_relevant", 0.2, "The model's response was not relevant.", "LLM")
    }
    assert namespace["response"]["spans_updated"] == 2


class Judge:
    """An LLM-as-judge, as the page assumes one (``llm_judge``): asks an OpenAI-compatible
    model whether a span's answer is correct and scores it 1 or 0."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def evaluate(self, span: Any) -> float:
        async with openai.AsyncOpenAI(base_url=self.base_url, api_key=VALID_KEY) as llm:
            completion = await llm.chat.completions.create(
                model="judge-small",
                messages=[
                    {
                        "role": "user",
                        "content": f"Is this answer correct? {span.attributes['output.value']}",
                    }
                ],
            )
        return 1.0 if completion.choices[0].message.content == "correct" else 0.0


@runs("Batch Evaluation Pattern", "async def evaluate_traces():")
def test_batch_evaluation_pattern(page_client, fake_openai: FakeOpenAI):  # noqa: F811
    store(APP, "span-1", "span-2", start=datetime(2024, 1, 15, tzinfo=UTC), output_value="42")
    store(APP, "span-3", start=datetime(2024, 1, 16, tzinfo=UTC), output_value="43")
    fake_openai.answer("correct")
    client = page_client["client"]
    namespace = {
        **page_client,
        "pd": pd,
        # What the page leaves to the reader: recent spans, and a judge.
        "fetch_recent_traces": lambda: client.spans.list(project=APP).spans,
        "llm_judge": Judge(fake_openai.base_url),
    }
    run(("Batch Evaluation Pattern", "async def evaluate_traces():"), namespace)
    # The page defines the coroutine; a reader runs it with asyncio.run (in a thread of its own
    # here, as Playwright's tests may leave an event loop running in this one).
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, namespace["evaluate_traces"]()).result()

    assert len(fake_openai.requests) == 3
    for span_id in ("span-1", "span-2", "span-3"):
        assert results(span_id) == {"Quality": (None, 1.0, None, "LLM")}


@runs("Annotate Spans", "client.spans.annotate_spans(")
def test_annotate_spans(page_client):
    store(PROJECT, "your-span-id", start=datetime(2026, 4, 15, tzinfo=UTC))
    run(("Annotate Spans", "client.spans.annotate_spans("), page_client)

    assert results("your-span-id") == {
        "accuracy": ("correct", 1.0, None, "HUMAN"),
        "notes": (None, None, "Verified by reviewer", "HUMAN"),
    }


@runs("Update Annotations", 'print("Updated annotations successfully")')
def test_update_annotations(page_client, capsys):
    store(APP, "span-1", start=datetime(2024, 1, 15, tzinfo=UTC))
    run(("Update Annotations", 'print("Updated annotations successfully")'), page_client)

    assert capsys.readouterr().out == "Updated annotations successfully\n"
    assert results("span-1") == {"Quality": ("correct", 1.0, "Verified by human reviewer", "HUMAN")}


METHOD_1 = ("Method 1: Direct Field Columns", "import pandas as pd")
METHOD_2 = ("Method 2: Patch Document Column", "metadata_df = pd.DataFrame([")
METHOD_2_COLUMN = ("Method 2: Patch Document Column", 'patch_document_column_name="my_patch_col",')
METHOD_3 = ("Method 3: Combined Approach", "metadata_df = pd.DataFrame([")


@pytest.fixture
def two_spans(page_client) -> None:
    store(APP, "span-1", "span-2", start=datetime(2024, 1, 15, tzinfo=UTC), metadata={"keep": 1})


@runs(*METHOD_1)
def test_update_metadata_from_field_columns(page_client, two_spans, capsys):
    run(METHOD_1, page_client)

    assert capsys.readouterr().out == "Updated: 2, Failed: 0\n"
    assert metadata("span-1") == {
        "keep": 1,
        "customer_id": "cust-456",
        "experiment_version": "v2",
        "region": "us-west",
    }
    # The frame has an experiment_version column; span-2's cell is null (pandas fills NaN where
    # a row has no such key), and a null cell stores JSON null, as the page's type table says.
    assert metadata("span-2") == {
        "keep": 1,
        "customer_id": "cust-789",
        "experiment_version": None,
        "region": "eu-central",
    }


@runs(*METHOD_2)
def test_update_metadata_from_a_patch_document(page_client, two_spans):
    namespace = run(METHOD_2, {**page_client, "pd": pd})

    assert metadata("span-1") == {"keep": 1, "tag": "important", "priority": "high"}
    assert metadata("span-2") == {"keep": 1, "tag": "standard"}
    assert namespace["response"]["spans_updated"] == 2


@runs(*METHOD_2_COLUMN)
def test_update_metadata_from_a_named_patch_column(page_client, two_spans):
    # The page's frame, with its patch documents in the column the call names.
    frame = given(METHOD_2, "metadata_df")["metadata_df"]
    metadata_df = frame.rename(columns={"patch_document": "my_patch_col"})
    namespace = run(METHOD_2_COLUMN, {**page_client, "metadata_df": metadata_df})

    assert metadata("span-1") == {"keep": 1, "tag": "important", "priority": "high"}
    assert metadata("span-2") == {"keep": 1, "tag": "standard"}
    assert namespace["response"]["errors"] == []


@runs(*METHOD_3)
def test_update_metadata_from_columns_and_a_patch_document(page_client, two_spans):
    run(METHOD_3, {**page_client, "pd": pd})

    assert metadata("span-1") == {"keep": 1, "tag": "important", "priority": "high"}
    assert metadata("span-2") == {"keep": 1}


RESPONSE = ("Response Structure", 'for err in response.get("errors", []):')


@runs(*RESPONSE)
def test_response_structure(page_client, two_spans, capsys):
    # The block's first line, ``response = client.spans.update_metadata(...)``, elides the
    # call's arguments: it stands for any of the calls above. Here, the page's Method 1 frame
    # with a span that does not exist, so that every key has something to print.
    frame = given(METHOD_1, "metadata_df")["metadata_df"]
    frame.loc[1, "context.span_id"] = "span-9"
    response = page_client["client"].spans.update_metadata(project_name=APP, dataframe=frame)
    run(RESPONSE, {**page_client, "response": response}, skip_elided_call=True)

    assert capsys.readouterr().out.splitlines() == [
        "Processed: 2",
        "Updated: 1",
        "Failed: 1",
        f" span span-9: span 'span-9' not found in project '{APP}'",
    ]
    assert metadata("span-1")["customer_id"] == "cust-456"


@runs("Delete Spans", 'print("All requested spans deleted")')
def test_delete_spans(page_client, capsys):
    store(PROJECT, "span-id-1", "span-id-2", "kept", start=datetime(2025, 5, 1, tzinfo=UTC))
    namespace = run(("Delete Spans", 'print("All requested spans deleted")'), page_client)

    assert capsys.readouterr().out == "All requested spans deleted\n"
    assert namespace["result"] is None
    assert list(Span.objects.values_list("span_id", flat=True)) == ["kept"]


EXPORT = ("Export Spans", 'print(f"Exported {len(df)} spans")')


@pytest.fixture
def app_spans(page_client) -> None:
    """Spans of the page's app in its export window (2024, 2025) and one after it (2026)."""
    store(APP, "span-1", start=datetime(2024, 1, 15, tzinfo=UTC))
    store(APP, "span-2", start=datetime(2025, 12, 31, 23, 59, tzinfo=UTC))
    store(APP, "span-3", start=datetime(2026, 1, 1, tzinfo=UTC))


@runs(*EXPORT)
def test_export_spans(page_client, app_spans, capsys):
    namespace = run(EXPORT, page_client)

    assert capsys.readouterr().out == "Exported 2 spans\n"
    assert list(namespace["df"]["context.span_id"]) == ["span-2", "span-1"]


@runs("Export to Parquet", 'path="./spans_export.parquet",')
def test_export_to_parquet(page_client, app_spans, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the page writes to the working directory
    window = given(EXPORT, "start_time", "end_time")
    run(("Export to Parquet", 'path="./spans_export.parquet",'), {**page_client, **window})

    table = pq.read_table(tmp_path / "spans_export.parquet")
    assert table.column("context.span_id").to_pylist() == ["span-2", "span-1"]
