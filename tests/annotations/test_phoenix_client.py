"""End to end with the real ``arize-phoenix-client`` against a live server."""

import re

import httpx
import pandas as pd
import pytest
from phoenix.client import Client

from annotations.models import Annotation
from tests import factories
from tracing.models import Session, Span, Trace

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def px(live_server, api_key) -> Client:
    return Client(base_url=live_server.url, api_key=api_key)


def test_add_and_get_span_annotations(px):
    root, retriever, llm = factories.trace(project="shop")
    inserted = px.spans.add_span_annotation(
        span_id=llm.span_id,
        annotation_name="correctness",
        annotator_kind="LLM",
        label="correct",
        score=0.9,
        explanation="cites the policy",
        metadata={"judge": "gpt-4o"},
        sync=True,
    )
    assert inserted is not None
    stored = Annotation.objects.get(pk=int(inserted["id"]))
    assert (stored.span_id, stored.label, stored.score) == (llm.pk, "correct", 0.9)

    # sync=False: the client gets nothing back, the annotation is stored all the same.
    assert (
        px.spans.add_span_annotation(
            span_id=root.span_id, annotation_name="helpful", label="yes", sync=False
        )
        is None
    )
    px.spans.log_span_annotations(
        span_annotations=[
            {
                "span_id": retriever.span_id,
                "name": "relevance",
                "annotator_kind": "CODE",
                "result": {"score": 0.5},
                "identifier": "run-1",
            },
            {
                "span_id": retriever.span_id,
                "name": "relevance",
                "annotator_kind": "CODE",
                "result": {"score": 0.7},
                "identifier": "run-2",
            },
        ],
        sync=True,
    )
    note = px.spans.add_span_note(span_id=llm.span_id, note="looked fine")
    px.spans.add_span_note(span_id=llm.span_id, note="second look")
    assert Annotation.objects.get(pk=int(note["id"])).explanation == "looked fine"
    assert Annotation.objects.filter(name="note", span=llm).count() == 2

    got = px.spans.get_span_annotations(
        span_ids=[root.span_id, retriever.span_id, llm.span_id], project_identifier="shop"
    )
    assert sorted((a["span_id"], a["name"], a.get("identifier")) for a in got) == sorted(
        [
            (llm.span_id, "correctness", ""),
            (root.span_id, "helpful", ""),
            (retriever.span_id, "relevance", "run-1"),
            (retriever.span_id, "relevance", "run-2"),
        ]
    )
    correctness = next(a for a in got if a["name"] == "correctness")
    assert correctness["result"] == {
        "label": "correct",
        "score": 0.9,
        "explanation": "cites the policy",
    }
    assert correctness["metadata"] == {"judge": "gpt-4o"}
    assert correctness["annotator_kind"] == "LLM"

    # The client pages with next_cursor: a page size of 1 still returns everything.
    paged = px.spans.get_span_annotations(
        span_ids=[retriever.span_id], project_identifier="shop", limit=1
    )
    assert sorted(a["result"]["score"] for a in paged) == [0.5, 0.7]

    only = px.spans.get_span_annotations(
        span_ids=[llm.span_id, root.span_id],
        project_identifier="shop",
        include_annotation_names=["helpful"],
    )
    assert [a["span_id"] for a in only] == [root.span_id]
    notes = px.spans.get_span_annotations(
        span_ids=[llm.span_id],
        project_identifier="shop",
        include_annotation_names=["note"],
        exclude_annotation_names=[],
    )
    assert sorted(a["result"]["explanation"] for a in notes) == ["looked fine", "second look"]


def test_upsert_through_the_client_updates_in_place(px):
    span = factories.trace()[0]
    first = px.spans.add_span_annotation(
        span_id=span.span_id, annotation_name="q", label="bad", sync=True
    )
    second = px.spans.add_span_annotation(
        span_id=span.span_id, annotation_name="q", label="good", score=1, sync=True
    )
    assert first == second
    assert Annotation.objects.get().label == "good"


def test_dataframes_round_trip(px):
    spans = factories.trace(project="df") + factories.trace(project="df")
    frame = pd.DataFrame(
        {
            "span_id": [s.span_id for s in spans],
            "label": ["ok" if i % 2 else "bad" for i in range(len(spans))],
            "score": [i / 10 for i in range(len(spans))],
            "explanation": [f"row {i}" for i in range(len(spans))],
        }
    )
    inserted = px.spans.log_span_annotations_dataframe(
        dataframe=frame, annotation_name="quality", annotator_kind="LLM", sync=True
    )
    assert len(inserted) == len(spans) == Annotation.objects.count()

    # Index-based span ids and a per-row name column, sent without sync.
    indexed = pd.DataFrame(
        {"name": ["tone"] * 2, "annotator_kind": ["HUMAN"] * 2, "label": ["warm", "cold"]},
        index=[spans[0].span_id, spans[1].span_id],
    )
    assert px.spans.log_span_annotations_dataframe(dataframe=indexed) is None
    assert Annotation.objects.filter(name="tone").count() == 2

    result = px.spans.get_span_annotations_dataframe(
        span_ids=[s.span_id for s in spans], project_identifier="df"
    )
    assert len(result) == len(spans) + 2
    quality = result[result["annotation_name"] == "quality"]
    assert quality.loc[spans[3].span_id, "result.score"] == pytest.approx(0.3)
    assert quality.loc[spans[3].span_id, "result.label"] == "ok"
    assert quality.loc[spans[3].span_id, "result.explanation"] == "row 3"

    spans_df = pd.DataFrame({"context.span_id": [spans[0].span_id]})
    tone = px.spans.get_span_annotations_dataframe(
        spans_dataframe=spans_df, project_identifier="df", include_annotation_names=["tone"]
    )
    assert list(tone["result.label"]) == ["warm"]


def test_an_unknown_span_fails_the_whole_batch(px):
    span = factories.trace()[0]
    with pytest.raises(httpx.HTTPStatusError) as info:
        px.spans.log_span_annotations(
            span_annotations=[
                {
                    "span_id": span.span_id,
                    "name": "q",
                    "annotator_kind": "HUMAN",
                    "result": {"label": "a"},
                },
                {
                    "span_id": "abcdefabcdefabcd",
                    "name": "q",
                    "annotator_kind": "HUMAN",
                    "result": {"label": "a"},
                },
            ],
            sync=True,
        )
    assert info.value.response.status_code == 404
    assert "abcdefabcdefabcd" in info.value.response.json()["detail"]
    assert not Annotation.objects.exists()


def test_a_wrong_api_key_is_refused(live_server):
    span = factories.trace()[0]
    client = Client(base_url=live_server.url, api_key="ehk_not-a-key")
    with pytest.raises(httpx.HTTPStatusError) as info:
        client.spans.add_span_annotation(span_id=span.span_id, annotation_name="q", label="a")
    assert info.value.response.status_code == 401
    assert not Annotation.objects.exists()


def test_trace_annotations(px):
    root = factories.trace()[0]
    second = factories.trace()[0]
    inserted = px.traces.add_trace_annotation(
        trace_id=root.trace.trace_id,
        annotation_name="resolved",
        annotator_kind="HUMAN",
        label="yes",
        sync=True,
    )
    assert Annotation.objects.get(pk=int(inserted["id"])).trace == root.trace
    frame = pd.DataFrame(
        {
            "trace_id": [root.trace.trace_id, second.trace.trace_id],
            "score": [0.1, 0.2],
        }
    )
    px.traces.log_trace_annotations_dataframe(
        dataframe=frame, annotation_name="latency_ok", annotator_kind="CODE"
    )
    assert sorted(
        Annotation.objects.filter(name="latency_ok").values_list("trace__trace_id", "score")
    ) == sorted([(root.trace.trace_id, 0.1), (second.trace.trace_id, 0.2)])


def test_session_annotations(px):
    factories.trace(session_id="conversation-1")
    inserted = px.sessions.add_session_annotation(
        session_id="conversation-1",
        annotation_name="csat",
        annotator_kind="HUMAN",
        score=4,
        explanation="polite",
        sync=True,
    )
    stored = Annotation.objects.get(pk=int(inserted["id"]))
    assert stored.session == Session.objects.get(session_id="conversation-1")
    assert (stored.score, stored.explanation) == (4.0, "polite")
    px.sessions.log_session_annotations(
        session_annotations=[
            {
                "session_id": "conversation-1",
                "name": "csat",
                "annotator_kind": "HUMAN",
                "result": {"score": 5},
            }
        ]
    )
    stored.refresh_from_db()
    assert stored.score == 5.0
    assert Annotation.objects.count() == 1


def test_delete_span(px):
    root, _retriever, llm = factories.trace(session_id="conv")
    px.spans.add_span_annotation(span_id=llm.span_id, annotation_name="q", label="a")
    px.spans.delete(span_identifier=llm.span_id)
    assert not Span.objects.filter(pk=llm.pk).exists()
    assert not Annotation.objects.exists()
    trace = Trace.objects.get(pk=root.trace_id)
    assert (trace.span_count, trace.total_tokens) == (2, 0)
    assert Session.objects.get(session_id="conv").span_count == 2
    with pytest.raises(httpx.HTTPStatusError) as info:
        px.spans.delete(span_identifier=llm.span_id)
    assert info.value.response.status_code == 404


def test_a_result_has_one_name_in_the_client_the_sdk_and_the_browser(
    px, live_server, api_key, client, django_user_model
):
    """A task's results, the Phoenix client, the SDK and the trace browser use one name: the
    evaluator's. A person's label of the same name on the same span lives beside the judge's."""
    from datetime import timedelta

    from django.utils import timezone
    from evalhub_client import Client as SdkClient
    from phoenix.client.types.spans import SpanQuery

    from evalhub.tasks.backfill import run_backfill_create
    from evalhub.tasks.engine import run_work
    from tests.evalhub.tasks.factories import code_check, make_task

    now = timezone.now()
    traces = [
        factories.trace(
            project="shop",
            session_id=f"chat-{n}",
            start=now - timedelta(hours=n + 1),
            output_value=text,
        )
        for n, text in enumerate(["A refund takes 5 days.", "Shipping is free.", "No refund."])
    ]
    llms = [spans[2] for spans in traces]
    # A task runs the code evaluator "mentions_refund" on the LLM spans.
    task = make_task(code_check(), project="shop", filter="span_kind = 'LLM'", quiet_seconds=0)
    run = run_backfill_create(task=task, start=now - timedelta(days=1))
    assert run_work(run_id=run.pk, worker="test") == "finished"

    # The Phoenix client reads the results under the evaluator's name …
    got = px.spans.get_span_annotations(
        span_ids=[span.span_id for span in llms], project_identifier="shop"
    )
    assert sorted((a["span_id"], a["name"], a["result"]["label"]) for a in got) == sorted(
        [
            (llms[0].span_id, "mentions_refund", "contains"),
            (llms[1].span_id, "mentions_refund", "does_not_contain"),
            (llms[2].span_id, "mentions_refund", "contains"),
        ]
    )
    # … and selects by it with evals['…'] in get_spans_dataframe.
    frame = px.spans.get_spans_dataframe(
        project_identifier="shop",
        query=SpanQuery().where("evals['mentions_refund'].label == 'contains'"),
    )
    assert set(frame.index) == {llms[0].span_id, llms[2].span_id}

    # A person labels the first under the same name: it does not replace the judge's result.
    px.spans.add_span_annotation(
        span_id=llms[0].span_id,
        annotation_name="mentions_refund",
        annotator_kind="HUMAN",
        label="does_not_contain",
        identifier="",
        sync=True,
    )
    assert Annotation.objects.filter(span=llms[0], name="mentions_refund").count() == 2
    # The SDK logs another evaluation from a data frame.
    with SdkClient(base_url=live_server.url, api_key=api_key) as sdk:
        sdk.spans.update_evaluations(
            "shop",
            pd.DataFrame({"context.span_id": [llms[1].span_id], "eval.tone.label": ["polite"]}),
        )

    # The browser filters every one of them by the same names, on every tab.
    client.force_login(django_user_model.objects.create_user("ana", is_staff=True))

    def traces_listed(tab: str, expression: str) -> set[str]:
        html = client.get(f"/projects/shop/{tab}/", {"q": expression}).content.decode()
        return set(re.findall(r'<tr data-key="([^"]+)"', html))

    trace_ids = [spans[0].trace.trace_id for spans in traces]
    sessions = ["chat-0", "chat-1", "chat-2"]
    for expression, which in [
        ("eval.mentions_refund.label = 'contains'", [0, 2]),
        ("annotation.mentions_refund.label = 'does_not_contain'", [0]),  # the person's
        ("eval.mentions_refund.label = 'does_not_contain'", [1]),  # the judge's
        ("eval.tone.label = 'polite'", [1]),
    ]:
        assert traces_listed("traces", expression) == {trace_ids[n] for n in which}, expression
        assert traces_listed("spans", expression) == {llms[n].span_id for n in which}
        assert traces_listed("sessions", expression) == {sessions[n] for n in which}
