"""Annotations and evaluations through the SDK: annotate_spans, update_evaluations/annotations."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from evalhub_client import NotFoundError, ValidationError

from annotations.models import Annotation
from tests import factories
from tests.sdk.factories import T0

# factories' spans start at T0: look them up around it (annotate_spans defaults to 31 days ago).
AROUND_T0 = {"start_time": T0 - timedelta(days=1), "end_time": T0 + timedelta(days=1)}


def _results(**filters):
    return {
        a.name: (a.label, a.score, a.explanation, a.annotator_kind)
        for a in Annotation.objects.filter(**filters)
    }


def test_annotate_spans_in_both_shapes(client):
    root, _, llm = factories.trace(project="p")
    written = client.spans.annotate_spans(
        "p",
        annotations=[
            {
                "span_id": llm.span_id,
                "annotations": [
                    {"name": "correctness", "label": "correct", "score": 1.0, "text": "ok"},
                    {"name": "tone", "label": "polite", "annotator_kind": "LLM"},
                ],
            },
            {"span_id": root.span_id, "name": "quality", "score": 0.5},
        ],
        **AROUND_T0,
    )
    assert [w["record_id"] for w in written] == [llm.span_id, root.span_id]
    assert [(w["span_id"], [a["name"] for a in w["annotations"]]) for w in written] == [
        (llm.span_id, ["correctness", "tone"]),
        (root.span_id, ["quality"]),
    ]
    assert _results(span=llm) == {
        "correctness": ("correct", 1.0, "ok", "HUMAN"),
        "tone": ("polite", None, None, "LLM"),
    }
    assert _results(span=root) == {"quality": (None, 0.5, None, "HUMAN")}


def test_annotate_spans_with_unknown_ids_raises_and_writes_nothing(client):
    span = factories.trace(project="p")[0]
    with pytest.raises(NotFoundError) as missing:
        client.spans.annotate_spans(
            "p",
            annotations=[
                {"span_id": span.span_id, "name": "q", "label": "good"},
                {"span_id": "00000000000000aa", "name": "q", "label": "bad"},
                {"span_id": "00000000000000bb", "name": "q", "label": "bad"},
            ],
            **AROUND_T0,
        )
    assert missing.value.missing_ids == ["00000000000000aa", "00000000000000bb"]
    assert "00000000000000aa" in missing.value.detail
    assert Annotation.objects.count() == 0


def test_update_evaluations_from_an_exported_frame(client):
    for _ in range(3):
        factories.trace(project="p", session_id="s-1")
    frame = client.spans.export_to_df("p", filter="span_kind == 'LLM'")
    assert len(frame) == 3
    # "Evaluate" with our own code: a label, a score, an explanation; one row left out (NaN).
    frame["eval.has_days.label"] = frame["output"].map(
        lambda text: "yes" if "days" in text else "no"
    )
    frame["eval.has_days.score"] = [1.0, float("nan"), 1.0]
    frame["eval.has_days.explanation"] = "mentions a number of days"
    frame["trace_eval.goal.label"] = "reached"
    frame["session_eval.mood.score"] = [0.9, None, None]
    assert client.spans.update_evaluations("p", frame) == {
        "spans_processed": 3,
        "spans_updated": 3,
        "spans_failed": 0,
        "errors": [],
        "records": 3,
        "annotations": 7,
    }

    spans = list(frame["context.span_id"])
    assert _results(span__span_id=spans[0]) == {
        "has_days": ("yes", 1.0, "mentions a number of days", "LLM")
    }
    assert _results(span__span_id=spans[1]) == {
        "has_days": ("yes", None, "mentions a number of days", "LLM")
    }
    assert _results(trace__trace_id=frame.loc[2, "context.trace_id"]) == {
        "goal": ("reached", None, None, "LLM")
    }
    assert _results(session__session_id="s-1") == {"mood": (None, 0.9, None, "LLM")}
    matched = client.spans.list("p", filter="eval.has_days.score >= 1").to_dicts()
    assert {s["context"]["span_id"] for s in matched} == {spans[0], spans[2]}

    # Annotation columns are not sent as evaluations.
    frame["annotation.review.label"] = "ok"
    assert client.spans.update_evaluations("p", frame)["annotations"] == 7
    assert not Annotation.objects.filter(name="review").exists()


def test_update_annotations_by_index_and_errors(client):
    spans = factories.trace(project="p")
    frame = pd.DataFrame(
        {
            "annotation.review.label": ["good", None],
            "annotation.review.text": ["clear", "vague"],
            "annotation.review.score": [1, 0],
        },
        index=pd.Index([spans[0].span_id, spans[1].span_id], name="context.span_id"),
    )
    result = client.spans.update_annotations("p", frame)
    assert (result.records, result.annotations, result["spans_updated"]) == (2, 2, 2)
    assert _results(span=spans[1]) == {"review": (None, 0.0, "vague", "HUMAN")}

    unknown = frame.rename(index={spans[1].span_id: "00000000000000cc"})
    with pytest.raises(NotFoundError) as missing:
        client.spans.update_annotations("p", unknown)
    assert missing.value.missing_ids == ["00000000000000cc"]

    with pytest.raises(ValidationError) as bad:
        client.spans.update_annotations("p", frame.rename(columns=lambda c: c + "x"))
    assert bad.value.detail.startswith("column 'annotation.review.labelx'")
    with pytest.raises(ValueError, match=r"no columns starting with eval\."):
        client.spans.update_evaluations("p", frame)


def test_annotate_spans_takes_the_arize_types_and_their_dict_forms(client):
    from evalhub_client.annotation_queues.types import AnnotationInput as QueueAnnotationInput
    from evalhub_client.spans.types import AnnotateRecordInput as SpansAnnotateRecordInput
    from evalhub_client.types import AnnotateRecordInput, AnnotationInput

    assert (SpansAnnotateRecordInput, QueueAnnotationInput) == (
        AnnotateRecordInput,
        AnnotationInput,
    )
    root, _, llm = factories.trace(project="p")
    written = client.spans.annotate_spans(
        project="p",
        annotations=[
            AnnotateRecordInput(
                record_id=llm.span_id,
                values=[AnnotationInput(name="accuracy", label="correct", score=1)],
            ),
            {"record_id": root.span_id, "values": [{"name": "notes", "text": "checked"}]},
        ],
        space="ignored",
        **AROUND_T0,
    )
    assert [(w["record_id"], [a["name"] for a in w["annotations"]]) for w in written] == [
        (llm.span_id, ["accuracy"]),
        (root.span_id, ["notes"]),
    ]
    assert _results(span=llm) == {"accuracy": ("correct", 1.0, None, "HUMAN")}
    assert _results(span=root) == {"notes": (None, None, "checked", "HUMAN")}

    with pytest.raises(ValueError, match="annotator"):  # the Arize type has no such field
        client.spans.annotate_spans(
            "p", [{"record_id": root.span_id, "values": [{"name": "q", "annotator": "me"}]}]
        )
    with pytest.raises(ValueError, match="values"):
        AnnotateRecordInput(record_id=root.span_id, values=[])


def test_annotate_spans_looks_within_the_last_31_days_by_default(client):
    now = datetime.now(UTC)
    recent = factories.trace(project="p", start=now - timedelta(days=30))[0]
    old = factories.trace(project="p", start=now - timedelta(days=32))[0]
    future = factories.trace(project="p", start=now + timedelta(hours=1))[0]
    records = [{"record_id": s.span_id, "values": [{"name": "q", "score": 1}]} for s in (recent,)]
    client.spans.annotate_spans("p", records)
    assert _results(span=recent) == {"q": (None, 1.0, None, "HUMAN")}

    for span in (old, future):
        with pytest.raises(NotFoundError) as missing:
            client.spans.annotate_spans(
                "p", [*records, {"record_id": span.span_id, "values": [{"name": "q", "score": 0}]}]
            )
        assert missing.value.missing_ids == [span.span_id]
        assert "among spans started from" in missing.value.detail
    assert Annotation.objects.count() == 1
    assert Annotation.objects.get().score == 1.0  # the failed batches wrote nothing

    # A window ending earlier reaches 31 days before its end; an explicit start goes further.
    client.spans.annotate_spans(
        "p", [{"span_id": old.span_id, "name": "q", "score": 0}], end_time=now - timedelta(days=31)
    )
    client.spans.annotate_spans(
        "p",
        [{"record_id": future.span_id, "values": [{"name": "q", "score": 0}]}],
        start_time=(now - timedelta(days=90)).replace(tzinfo=None).isoformat(),
        end_time=now + timedelta(days=1),
    )
    assert Annotation.objects.count() == 3


def test_update_evaluations_and_annotations_in_long_form(client):
    spans = factories.trace(project="p")
    evals = pd.DataFrame(
        {
            "context.span_id": [spans[0].span_id, spans[1].span_id],
            "name": ["Quality", "Tone"],
            "score": [0.5, None],
            "label": [None, "calm"],
        }
    )
    result = client.spans.update_evaluations(project_name="p", dataframe=evals, space_id="x")
    assert (result["spans_processed"], result["spans_updated"], result.annotations) == (2, 2, 2)
    assert _results(span=spans[0]) == {"Quality": (None, 0.5, None, "LLM")}
    assert _results(span=spans[1]) == {"Tone": ("calm", None, None, "LLM")}

    notes = pd.DataFrame({"span_id": [spans[2].span_id], "name": ["review"], "text": ["fine"]})
    assert client.spans.update_annotations("p", notes, space="x")["annotations"] == 1
    assert _results(span=spans[2]) == {"review": (None, None, "fine", "HUMAN")}
    with pytest.raises(ValueError, match="every row needs a name"):
        client.spans.update_evaluations("p", evals.assign(name=[None, "Tone"]))
