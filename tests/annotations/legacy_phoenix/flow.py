"""Run by the legacy ``arize-phoenix`` (``px.Client``) in its own virtualenv, against a live
EvalHub: ``python flow.py <step> <endpoint> <api key> <json arguments>``. It prints what the
client got back as JSON for ``test_legacy_phoenix_client.py`` to check. It imports nothing of
EvalHub's: it is the user's notebook code."""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

warnings.simplefilter("ignore")

import pandas as pd  # noqa: E402
from phoenix.session.client import Client  # noqa: E402
from phoenix.session.evaluation import get_qa_with_reference, get_retrieved_documents  # noqa: E402
from phoenix.trace import (  # noqa: E402
    DocumentEvaluations,
    SpanEvaluations,
    TraceDataset,
    TraceEvaluations,
)
from phoenix.trace.dsl import SpanQuery  # noqa: E402


def log_evaluations(px: Client, ids: dict[str, Any]) -> dict[str, Any]:
    px.log_evaluations(
        SpanEvaluations(
            eval_name="Correctness",
            dataframe=pd.DataFrame(
                {"context.span_id": [ids["llm"]], "label": ["correct"], "score": [1.0]}
            ),
        ),
        TraceEvaluations(
            eval_name="Quality",
            dataframe=pd.DataFrame({"context.trace_id": [ids["trace"]], "label": ["good"]}),
        ),
        DocumentEvaluations(
            eval_name="relevance",
            dataframe=pd.DataFrame(
                {
                    "context.span_id": [ids["retriever"]] * 2,
                    "document_position": [0, 1],
                    "label": ["relevant", "irrelevant"],
                    "score": [1.0, 0.0],
                    "explanation": ["about refunds", "about shipping"],
                }
            ),
        ),
    )
    got = {e.eval_name: e for e in px.get_evaluations(project_name="legacy")}
    documents = got["relevance"].dataframe
    return {
        "names": sorted(got),
        "kinds": {name: type(e).__name__ for name, e in got.items()},
        "document_index": list(documents.index.names),
        "document_1_label": documents.loc[(ids["retriever"], 1), "label"],
        "correctness_score": float(got["Correctness"].dataframe.loc[ids["llm"], "score"]),
        "default_project": len(px.get_evaluations(project_name="default")),
    }


def query_spans(px: Client, ids: dict[str, Any]) -> dict[str, Any]:
    roots, retrievers = px.query_spans(
        SpanQuery()
        .where("parent_id is None")
        .select(question="input.value", answer="output.value"),
        SpanQuery().where("span_kind == 'RETRIEVER'").select("span_id", "input.value"),
        project_name="legacy",
    )
    llms = px.query_spans(
        SpanQuery().where("span_kind in ['LLM'] and cumulative_token_count.total > 100"),
        project_name="legacy",
    )
    return {
        "roots": sorted(roots.index),
        "root_columns": list(roots.columns),
        "question": roots.loc[ids["root"], "question"],
        "retrievers": sorted(retrievers.index),
        "llms": sorted(llms["context.span_id"]),
    }


def rag_helpers(px: Client, ids: dict[str, Any]) -> dict[str, Any]:
    documents = get_retrieved_documents(px, project_name="legacy")
    qa = get_qa_with_reference(px, project_name="legacy")
    return {
        "document_index": list(documents.index.names),
        "reference_0": documents.loc[(ids["retriever"], 0), "reference"],
        "input": qa.loc[ids["root"], "input"],
        "reference": qa.loc[ids["root"], "reference"],
    }


def trace_dataset(px: Client, ids: dict[str, Any]) -> dict[str, Any]:
    dataset = px.get_trace_dataset(project_name="legacy")
    with_evals = dataset.get_spans_dataframe(include_evaluations=True)
    return {
        "is_trace_dataset": isinstance(dataset, TraceDataset),
        "rows": len(dataset.dataframe),
        "span_ids": sorted(dataset.dataframe["context.span_id"]),
        "evaluations": [e.eval_name for e in dataset.evaluations],
        "llm_label": with_evals.loc[ids["llm"], "eval.Correctness.label"],
    }


STEPS = {f.__name__: f for f in (log_evaluations, query_spans, rag_helpers, trace_dataset)}

if __name__ == "__main__":
    step, endpoint, api_key, arguments = sys.argv[1:5]
    client = Client(endpoint=endpoint, api_key=api_key)
    print(json.dumps(STEPS[step](client, json.loads(arguments)), default=str))
