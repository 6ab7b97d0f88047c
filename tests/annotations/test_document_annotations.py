"""Annotations of retrieved documents (span + document position): the real
``arize-phoenix-client``'s document methods, the store's key, the span pane and the filter."""

import httpx
import pandas as pd
import pytest
from django.urls import reverse
from phoenix.client import Client

from annotations.models import Annotation
from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories
from tracing.models import Span
from tracing.query import compile_filter

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def px(live_server, api_key) -> Client:
    return Client(base_url=live_server.url, api_key=api_key)


def _retriever(project: str = "rag") -> Span:
    _root, retriever, _llm = factories.rag_trace(project=project)
    return retriever


def test_add_document_annotation_stores_span_and_position(px):
    retriever = _retriever()
    inserted = px.spans.add_document_annotation(
        span_id=retriever.span_id,
        document_position=1,
        annotation_name="relevance",
        annotator_kind="LLM",
        label="irrelevant",
        score=0.0,
        explanation="about shipping",
        sync=True,
    )
    stored = Annotation.objects.get(pk=int(inserted["id"]))
    assert (stored.target_kind, stored.span_id, stored.document_position) == (
        "DOCUMENT",
        retriever.pk,
        1,
    )
    assert (stored.label, stored.score, stored.explanation) == ("irrelevant", 0.0, "about shipping")

    # The same (span, position, name) again updates; another position is another row.
    again = px.spans.add_document_annotation(
        span_id=retriever.span_id,
        document_position=1,
        annotation_name="relevance",
        annotator_kind="LLM",
        label="relevant",
        sync=True,
    )
    assert again["id"] == inserted["id"]
    assert Annotation.objects.get(pk=stored.pk).label == "relevant"
    px.spans.add_document_annotation(
        span_id=retriever.span_id,
        document_position=0,
        annotation_name="relevance",
        annotator_kind="LLM",
        label="relevant",
    )
    assert Annotation.objects.filter(name="relevance").count() == 2
    # A span-level result of the same name lives beside them, and the span annotation reads
    # leave document results out.
    px.spans.add_span_annotation(
        span_id=retriever.span_id, annotation_name="relevance", annotator_kind="LLM", score=0.5
    )
    assert Annotation.objects.filter(name="relevance").count() == 3
    listed = px.spans.get_span_annotations(span_ids=[retriever.span_id], project_identifier="rag")
    assert [(a["name"], a["result"]["score"]) for a in listed] == [("relevance", 0.5)]


def test_log_document_annotations_and_dataframe(px):
    retriever = _retriever()
    px.spans.log_document_annotations(
        document_annotations=[
            {
                "span_id": retriever.span_id,
                "document_position": n,
                "name": "relevance",
                "annotator_kind": "LLM",
                "result": {"label": label, "score": score},
            }
            for n, (label, score) in enumerate([("relevant", 1.0), ("irrelevant", 0.0)])
        ]
    )
    frame = pd.DataFrame(
        {
            "span_id": [retriever.span_id, retriever.span_id],
            "document_position": [0, 2],
            "label": ["yes", "no"],
            "explanation": ["on topic", "hats"],
        }
    )
    inserted = px.spans.log_document_annotations_dataframe(
        dataframe=frame, annotation_name="judged", annotator_kind="HUMAN", sync=True
    )
    assert len(inserted) == 2
    stored = {
        (a.name, a.document_position): (a.label, a.annotator_kind)
        for a in Annotation.objects.filter(span=retriever)
    }
    assert stored == {
        ("relevance", 0): ("relevant", "LLM"),
        ("relevance", 1): ("irrelevant", "LLM"),
        ("judged", 0): ("yes", "HUMAN"),
        ("judged", 2): ("no", "HUMAN"),
    }


def test_bad_document_annotations_write_nothing(px, live_server, api_key):
    retriever = _retriever()
    with pytest.raises(httpx.HTTPStatusError) as missing:
        px.spans.log_document_annotations(
            document_annotations=[
                {
                    "span_id": retriever.span_id,
                    "document_position": 0,
                    "name": "relevance",
                    "annotator_kind": "LLM",
                    "result": {"label": "relevant"},
                },
                {
                    "span_id": "ffffffffffffffff",
                    "document_position": 0,
                    "name": "relevance",
                    "annotator_kind": "LLM",
                    "result": {"label": "relevant"},
                },
            ]
        )
    assert missing.value.response.status_code == 404
    assert "ffffffffffffffff" in missing.value.response.json()["detail"]
    negative = httpx.post(
        f"{live_server.url}/v1/document_annotations",
        headers={"Authorization": f"Bearer {api_key}"},
        json={
            "data": [
                {
                    "span_id": retriever.span_id,
                    "document_position": -1,
                    "name": "relevance",
                    "annotator_kind": "LLM",
                    "result": {"label": "relevant"},
                }
            ]
        },
    )
    assert negative.status_code == 422
    assert negative.json()["detail"].startswith("data[0].document_position")
    assert not Annotation.objects.exists()


def test_span_pane_shows_results_on_their_documents(client, django_user_model):
    retriever = _retriever()
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="DOCUMENT",
                target_id=retriever.span_id,
                document_position=1,
                name="relevance",
                annotator_kind="LLM",
                label="irrelevant",
                explanation="<b>shipping</b>",
            )
        ]
    )
    client.force_login(django_user_model.objects.create_user(username="r", password="pw"))
    url = reverse(
        "detail:span_pane",
        kwargs={
            "project": "rag",
            "trace_id": retriever.trace.trace_id,
            "span_id": retriever.span_id,
        },
    )
    html = client.get(url, headers={"HX-Request": "true"}).content.decode()
    documents = html.split('<li class="document">')[1:]
    assert len(documents) == 3
    assert "relevance: irrelevant" in documents[1]
    assert "relevance" not in documents[0] and "relevance" not in documents[2]
    assert "&lt;b&gt;shipping&lt;/b&gt;" in documents[1]  # the explanation, escaped


def test_a_document_result_filters_its_span():
    retriever = _retriever()
    other = _retriever()
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="DOCUMENT",
                target_id=span.span_id,
                document_position=0,
                name="relevance",
                annotator_kind="LLM",
                label=label,
                score=score,
            )
            for span, label, score in ((retriever, "relevant", 1.0), (other, "irrelevant", 0.0))
        ]
    )

    def matching(text: str) -> set[str]:
        return set(Span.objects.filter(compile_filter(text)).values_list("span_id", flat=True))

    assert matching("evals['relevance'].label == 'relevant'") == {retriever.span_id}
    assert matching("eval.relevance.score < 0.5") == {other.span_id}
    assert matching("'relevance' in evals") == {retriever.span_id, other.span_id}
