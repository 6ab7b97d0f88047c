"""The legacy ``px.Client`` (arize-phoenix ≤ 13; ``pip install -e '.[legacy-phoenix]'`` pins
11.38) against a live server: ``log_evaluations`` of span, trace and document evaluations,
``get_evaluations``, ``query_spans`` with several queries, ``get_qa_with_reference``,
``get_retrieved_documents`` and ``get_trace_dataset``. Skipped where the legacy package is
not installed; ``test_legacy_evaluations.py`` checks the same wire format with pyarrow."""

import warnings

import pandas as pd
import pytest

legacy = pytest.importorskip(
    "phoenix.session.client", reason="arize-phoenix (legacy) not installed"
)

from phoenix.session.evaluation import get_qa_with_reference, get_retrieved_documents  # noqa: E402
from phoenix.trace import (  # noqa: E402
    DocumentEvaluations,
    SpanEvaluations,
    TraceDataset,
    TraceEvaluations,
)
from phoenix.trace.dsl import SpanQuery  # noqa: E402

from annotations.models import Annotation  # noqa: E402
from tests import factories  # noqa: E402

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


@pytest.fixture
def px(live_server, api_key):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return legacy.Client(endpoint=live_server.url, api_key=api_key)


@pytest.fixture
def rag():
    first = factories.rag_trace(project="legacy", question="Refunds?")
    second = factories.rag_trace(project="legacy", question="Shipping?")
    return first, second


def test_log_and_get_evaluations(px, rag):
    (root, retriever, llm), _ = rag
    px.log_evaluations(
        SpanEvaluations(
            eval_name="Correctness",
            dataframe=pd.DataFrame(
                {"context.span_id": [llm.span_id], "label": ["correct"], "score": [1.0]}
            ),
        ),
        TraceEvaluations(
            eval_name="Quality",
            dataframe=pd.DataFrame({"context.trace_id": [root.trace.trace_id], "label": ["good"]}),
        ),
        DocumentEvaluations(
            eval_name="relevance",
            dataframe=pd.DataFrame(
                {
                    "context.span_id": [retriever.span_id] * 2,
                    "document_position": [0, 1],
                    "label": ["relevant", "irrelevant"],
                    "score": [1.0, 0.0],
                    "explanation": ["about refunds", "about shipping"],
                }
            ),
        ),
    )
    assert Annotation.objects.filter(target_kind="DOCUMENT", name="relevance").count() == 2
    assert Annotation.objects.get(target_kind="TRACE").label == "good"

    got = {e.eval_name: e for e in px.get_evaluations(project_name="legacy")}
    assert set(got) == {"Correctness", "Quality", "relevance"}
    assert isinstance(got["relevance"], DocumentEvaluations)
    documents = got["relevance"].dataframe
    assert list(documents.index.names) == ["context.span_id", "document_position"]
    assert documents.loc[(retriever.span_id, 1), "label"] == "irrelevant"
    assert isinstance(got["Quality"], TraceEvaluations)
    assert got["Correctness"].dataframe.loc[llm.span_id, "score"] == 1.0
    assert px.get_evaluations(project_name="default") == []


def test_query_spans_with_several_queries_and_aliases(px, rag):
    (root, retriever, llm), (root2, _, _) = rag
    roots, retrievers = px.query_spans(
        SpanQuery()
        .where("parent_id is None")
        .select(question="input.value", answer="output.value"),
        SpanQuery().where("span_kind == 'RETRIEVER'").select("span_id", "input.value"),
        project_name="legacy",
    )
    assert set(roots.index) == {root.span_id, root2.span_id}
    assert list(roots.columns) == ["question", "answer"]
    assert roots.loc[root.span_id, "question"] == "Refunds?"
    assert retriever.span_id in set(retrievers.index)
    llms = px.query_spans(
        SpanQuery().where("span_kind in ['LLM'] and cumulative_token_count.total > 100"),
        project_name="legacy",
    )
    assert set(llms["context.span_id"]) == {llm.span_id, rag[1][2].span_id}


def test_rag_helpers(px, rag):
    (root, retriever, _), _ = rag
    documents = get_retrieved_documents(px, project_name="legacy")
    assert list(documents.index.names) == ["context.span_id", "document_position"]
    assert documents.loc[(retriever.span_id, 0), "reference"] == "Refunds within 30 days."
    qa = get_qa_with_reference(px, project_name="legacy")
    assert qa.loc[root.span_id, "input"] == "Refunds?"
    assert "Refunds within 30 days." in qa.loc[root.span_id, "reference"]


def test_get_trace_dataset(px, rag):
    (root, _, llm), _ = rag
    Annotation.objects.create(
        project=llm.project,
        target_kind="SPAN",
        span=llm,
        name="Correctness",
        annotator_kind="LLM",
        label="correct",
    )
    dataset = px.get_trace_dataset(project_name="legacy")
    assert isinstance(dataset, TraceDataset)
    assert len(dataset.dataframe) == 6
    assert root.span_id in set(dataset.dataframe["context.span_id"])
    assert [e.eval_name for e in dataset.evaluations] == ["Correctness"]
    with_evals = dataset.get_spans_dataframe(include_evaluations=True)
    assert with_evals.loc[llm.span_id, "eval.Correctness.label"] == "correct"
