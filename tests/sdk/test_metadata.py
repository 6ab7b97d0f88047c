"""update_metadata: columns, a patch document, types, and errors per span."""

import json

import pandas as pd

from tests import factories
from tracing.models import Span


def test_update_metadata_types_and_patch_document(client):
    spans = factories.trace(project="p", metadata={"region": "us", "keep": 1, "nested": {"a": 1}})
    frame = pd.DataFrame(
        {
            "context.span_id": [spans[0].span_id, spans[2].span_id],
            "attributes.metadata.region": ["eu-west", "ap-south"],
            "attributes.metadata.count": [3, 4],
            "attributes.metadata.ratio": [0.5, 1.5],
            "attributes.metadata.flag": [True, False],
            "attributes.metadata.cleared": [None, None],
            "attributes.metadata.config": [{"k": [1, 2]}, ["x"]],
            "attributes.metadata.nested.b": ["two", "three"],
            "patch_document": [{"region": "from-document", "extra": None}, None],
        }
    )
    result = client.spans.update_metadata("p", frame)
    assert (result.spans_processed, result.spans_updated, result.spans_failed) == (2, 2, 0)
    assert result.errors == []

    first = Span.objects.get(span_id=spans[0].span_id).metadata
    assert first == {
        "region": "from-document",
        "keep": 1,
        "count": 3,
        "ratio": 0.5,
        "flag": "True",
        "cleared": None,
        "config": json.dumps({"k": [1, 2]}),
        "nested": {"a": 1, "b": "two"},
        "extra": None,
    }
    assert Span.objects.get(span_id=spans[2].span_id).metadata == {
        "region": "ap-south",
        "keep": 1,
        "count": 4,
        "ratio": 1.5,
        "flag": "False",
        "cleared": None,
        "config": '["x"]',
        "nested": {"a": 1, "b": "three"},
    }
    assert Span.objects.get(span_id=spans[1].span_id).metadata == {}
    # The filter language sees the new values.
    listed = client.spans.list("p", filter="metadata.region == 'from-document'").to_dicts()
    assert [s["context"]["span_id"] for s in listed] == [spans[0].span_id]


def test_update_metadata_with_only_a_json_patch_column_and_unknown_spans(client):
    span = factories.trace(project="p")[0]
    frame = pd.DataFrame(
        {
            "context.span_id": [span.span_id, "00000000000000dd", span.span_id],
            "changes": ['{"owner": "ana"}', '{"owner": "bo"}', "[1, 2]"],
        }
    )
    result = client.spans.update_metadata("p", frame, patch_document_column_name="changes")
    assert (result.spans_processed, result.spans_updated, result.spans_failed) == (3, 1, 2)
    assert [e["span_id"] for e in result.errors] == ["00000000000000dd", span.span_id]
    assert "not found" in result.errors[0]["error_message"]
    assert "JSON object" in result.errors[1]["error_message"]
    assert Span.objects.get(span_id=span.span_id).metadata == {"owner": "ana"}
