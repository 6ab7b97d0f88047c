"""Dataset services and the selectors that pick the spans examples are made from."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from annotations.datasets import services as services_datasets
from annotations.datasets.models import Dataset, DatasetExample
from annotations.datasets.selectors import (
    annotation_names_recent,
    dataset_examples_page,
    dataset_get,
    dataset_page,
    dataset_source_spans_matching,
    dataset_source_spans_selected,
    example_sources,
    span_pks_by_id,
)
from annotations.datasets.services import (
    DatasetInvalid,
    DatasetNameTaken,
    DatasetSourceMissing,
    dataset_create,
    dataset_delete,
    dataset_examples_add,
    dataset_examples_add_by_name,
    dataset_update,
    expected_output_of,
)
from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories
from tracing.browser.filters import SpanFilterSet
from tracing.browser.selectors import browse_spans
from tracing.models import Project, Span
from tracing.store.services import spans_delete

pytestmark = pytest.mark.django_db
T0 = factories.BASE_TIME


def _annotate(kind: str, target: str, name: str, **result) -> None:
    annotations_upsert(
        items=[AnnotationInput(target_kind=kind, target_id=target, name=name, **result)]
    )


def _examples(dataset: Dataset) -> list[DatasetExample]:
    return list(dataset.examples.order_by("id"))


# --- creating and adding ---------------------------------------------------------------------


def test_an_example_copies_the_span_with_labels_and_the_metadata_reference():
    root, _, llm = factories.trace(
        project="shop",
        metadata={"reference": "Within 30 days.", "env": "prod"},
        input_value="Refunds?",
        output_value="30 days",
    )
    _annotate("SPAN", llm.span_id, "correctness", label="correct", score=1.0, explanation="ok")
    _annotate("SPAN", llm.span_id, "tone", score=0.4)
    user = get_user_model().objects.create_user("ana", password="x")

    result = dataset_create(name="  refunds ", description="golden", user=user, spans=[llm.pk])

    assert (result.added, result.skipped, result.created) == (1, 0, True)
    dataset = Dataset.objects.get()
    assert (dataset.name, dataset.description, dataset.created_by) == ("refunds", "golden", user)
    (example,) = _examples(dataset)
    assert (example.input, example.output) == ("Refunds?", "30 days")
    assert example.expected_output == "Within 30 days."
    assert example.metadata == {"reference": "Within 30 days.", "env": "prod"}
    assert example.labels == {
        "correctness": {"label": "correct", "score": 1.0, "explanation": "ok"},
        "tone": {"label": None, "score": 0.4, "explanation": None},
    }
    assert (example.source_span_id, example.source_trace_id, example.source_project) == (
        llm.span_id,
        root.trace.trace_id,
        "shop",
    )


def test_expected_output_from_a_chosen_annotation_else_the_metadata_reference():
    with_note = factories.trace(metadata={"ground_truth": "from metadata"})[0]
    without = factories.trace(metadata={"expected": {"answer": 42}})[0]
    neither = factories.trace()[0]
    _annotate("SPAN", with_note.span_id, "corrected", explanation="The right answer.")

    result = dataset_create(
        name="d", spans=[with_note.pk, without.pk, neither.pk], expected_output_from="corrected"
    )

    assert [e.expected_output for e in _examples(result.dataset)] == [
        "The right answer.",
        '{"answer": 42}',
        None,
    ]


def test_expected_output_of_uses_the_label_when_the_annotation_has_no_text():
    labels = {"gold": {"label": "yes", "score": None, "explanation": None}}
    assert expected_output_of(labels=labels, metadata={}, expected_output_from="gold") == "yes"
    assert expected_output_of(labels=labels, metadata={"reference": "r"}) == "r"
    assert expected_output_of(labels={}, metadata={}, expected_output_from="gold") is None


def test_the_same_span_is_added_once_and_counted_as_skipped():
    spans = factories.trace()
    dataset = dataset_create(name="d", spans=[spans[0].pk]).dataset
    before = Dataset.objects.get().updated_at

    result = dataset_examples_add(dataset=dataset, spans=[s.pk for s in spans] + [spans[1].pk])

    assert (result.added, result.skipped) == (2, 1)
    assert [e.source_span_id for e in _examples(dataset)] == [s.span_id for s in spans]
    assert Dataset.objects.get().updated_at > before
    again = dataset_examples_add(dataset=dataset, spans=[spans[2].pk])
    assert (again.added, again.skipped) == (0, 1)


def test_the_database_refuses_a_span_twice_in_a_dataset():
    span = factories.trace()[0]
    dataset = dataset_create(name="d", spans=[span.pk]).dataset
    with pytest.raises(IntegrityError), transaction.atomic():
        DatasetExample.objects.create(dataset=dataset, source_span_id=span.span_id)
    # Another dataset may have the same span.
    assert dataset_create(name="other", spans=[span.pk]).added == 1


def test_adds_work_in_batches_in_the_given_order(monkeypatch):
    monkeypatch.setattr(services_datasets, "BATCH_SIZE", 2)
    spans = factories.trace() + factories.trace()
    dataset = dataset_create(name="d", spans=[spans[4].pk, spans[0].pk]).dataset
    result = dataset_examples_add(dataset=dataset, spans=[s.pk for s in spans])
    assert (result.added, result.skipped) == (4, 2)
    assert [e.source_span_id for e in _examples(dataset)] == [
        spans[i].span_id for i in (4, 0, 1, 2, 3, 5)
    ]


def test_a_trace_example_has_the_trace_annotations_which_win_on_a_name():
    root = factories.trace(session_id="s-1")[0]
    _annotate("SPAN", root.span_id, "quality", label="span-level")
    _annotate("SPAN", root.span_id, "length", score=3)
    _annotate("TRACE", root.trace.trace_id, "quality", label="trace-level")
    _annotate("SESSION", "s-1", "csat", score=5)

    as_trace = dataset_create(name="t", spans=[root.pk], source="trace").dataset
    as_span = dataset_create(name="s", spans=[root.pk], source="span").dataset
    as_session = dataset_create(name="c", spans=[root.pk], source="session").dataset

    assert _examples(as_trace)[0].labels == {
        "quality": {"label": "trace-level", "score": None, "explanation": None},
        "length": {"label": None, "score": 3.0, "explanation": None},
    }
    assert _examples(as_span)[0].labels["quality"]["label"] == "span-level"
    assert "csat" not in _examples(as_span)[0].labels
    assert _examples(as_session)[0].labels["csat"]["score"] == 5.0


def test_of_several_annotators_the_last_updated_annotation_wins():
    span = factories.trace()[0]
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN", target_id=span.span_id, name="ok", label="a", identifier="1"
            ),
            AnnotationInput(
                target_kind="SPAN", target_id=span.span_id, name="ok", label="b", identifier="2"
            ),
        ]
    )
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN", target_id=span.span_id, name="ok", label="c", identifier="1"
            )
        ]
    )
    assert example_sources([span.pk])[span.pk].labels["ok"]["label"] == "c"


def test_add_by_name_creates_the_dataset_or_adds_to_the_existing_one():
    first, second = factories.trace()[0], factories.trace()[0]
    created = dataset_examples_add_by_name(name="new one", spans=[first.pk], source="trace")
    assert created.created and created.added == 1
    added = dataset_examples_add_by_name(name=" new one ", spans=[first.pk, second.pk])
    assert not added.created
    assert (added.dataset.pk, added.added, added.skipped) == (created.dataset.pk, 1, 1)
    assert Dataset.objects.count() == 1


def test_examples_stay_as_they_were_when_the_source_span_is_deleted():
    span = factories.trace(input_value="kept")[0]
    dataset = dataset_create(name="d", spans=[span.pk]).dataset
    spans_delete(span_ids=[span.span_id])
    assert not Span.objects.filter(pk=span.pk).exists()
    (example,) = _examples(dataset)
    assert (example.input, example.source_span_id) == ("kept", span.span_id)


# --- refusals: nothing is written ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "  "}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": "d", "source": "project"}, "source"),
        ({"name": "d", "expected_output_from": "x" * 256}, "expected_output_from"),
    ],
)
def test_invalid_input_names_the_field_and_writes_nothing(kwargs, field):
    span = factories.trace()[0]
    with pytest.raises(DatasetInvalid) as raised:
        dataset_create(spans=[span.pk], **kwargs)
    assert raised.value.field == field
    assert not Dataset.objects.exists()


def test_too_many_spans_are_refused(monkeypatch):
    monkeypatch.setattr(services_datasets, "MAX_EXAMPLES_PER_ADD", 2)
    spans = factories.trace()
    dataset = dataset_create(name="d").dataset
    with pytest.raises(DatasetInvalid, match="at most 2 examples"):
        dataset_examples_add(dataset=dataset, spans=[s.pk for s in spans])
    assert not DatasetExample.objects.exists()


def test_a_span_gone_meanwhile_fails_the_whole_add():
    span = factories.trace()[0]
    gone = factories.trace()[0]
    gone_pk = gone.pk
    spans_delete(span_ids=[gone.span_id])
    with pytest.raises(DatasetSourceMissing, match=f"#{gone_pk}"):
        dataset_create(name="d", spans=[span.pk, gone_pk])
    assert not Dataset.objects.exists()
    dataset = dataset_create(name="d").dataset
    with pytest.raises(DatasetSourceMissing):
        dataset_examples_add(dataset=dataset, spans=[span.pk, gone_pk])
    assert not DatasetExample.objects.exists()


def test_names_are_unique():
    dataset_create(name="taken")
    with pytest.raises(DatasetNameTaken):
        dataset_create(name=" taken ")
    other = dataset_create(name="other").dataset
    with pytest.raises(DatasetNameTaken):
        dataset_update(dataset=other, name="taken")
    assert Dataset.objects.get(pk=other.pk).name == "other"


def test_rename_describe_and_delete_keep_the_spans():
    span = factories.trace()[0]
    dataset = dataset_create(name="d", spans=[span.pk]).dataset
    dataset_update(dataset=dataset, name=" renamed ", description="about refunds")
    stored = Dataset.objects.get()
    assert (stored.name, stored.description) == ("renamed", "about refunds")
    with pytest.raises(DatasetInvalid):
        dataset_update(dataset=dataset, name="")
    dataset_delete(dataset=dataset)
    assert not Dataset.objects.exists() and not DatasetExample.objects.exists()
    assert Span.objects.filter(pk=span.pk).exists()


# --- selectors ---------------------------------------------------------------------------------


def test_selected_rows_become_the_span_the_trace_root_or_the_session_first_root():
    project = factories.project("default")
    first = factories.trace(start=T0, session_id="s-1")
    later = factories.trace(start=T0 + timedelta(minutes=5), session_id="s-1")
    lone = factories.trace(start=T0 + timedelta(minutes=9))

    spans = dataset_source_spans_selected(
        project=project, tab="spans", keys=[first[2].span_id, "nope", first[2].span_id]
    )
    assert (spans.pks, spans.missing) == ([first[2].pk], ["nope"])
    traces = dataset_source_spans_selected(
        project=project, tab="traces", keys=[later[0].trace.trace_id, lone[0].trace.trace_id]
    )
    assert traces.pks == [later[0].pk, lone[0].pk]
    sessions = dataset_source_spans_selected(project=project, tab="sessions", keys=["s-1", "s-9"])
    assert (sessions.pks, sessions.missing) == ([first[0].pk], ["s-9"])
    other = Project.objects.create(name="other")
    assert dataset_source_spans_selected(project=other, tab="spans", keys=[first[2].span_id]) == (
        type(spans)(pks=[], missing=[first[2].span_id])
    )


def test_a_trace_without_its_root_yet_gives_its_earliest_span():
    project = factories.project("default")
    trace_id = factories.next_hex(32)
    child = factories.span_record(trace_id=trace_id, parent_id="f" * 16, start=T0, name="early")
    later = factories.span_record(
        trace_id=trace_id, parent_id="f" * 16, start=T0 + timedelta(seconds=1)
    )
    stored = factories.ingest([later, child])
    found = dataset_source_spans_selected(project=project, tab="traces", keys=[trace_id])
    assert found.pks == [next(s.pk for s in stored if s.name == "early")]


def _matching(project: Project, tab: str, query: str, limit: int = 100) -> list[int]:
    filters = SpanFilterSet(
        {"q": query}, queryset=browse_spans(project=project, tab=tab), project=project, tab=tab
    )
    return dataset_source_spans_matching(
        project=project, tab=tab, spans=filters.qs, filtering=filters.is_filtering, limit=limit
    )


def test_matching_rows_of_each_tab():
    project = factories.project("default")
    ok = factories.trace(start=T0, session_id="s-ok")
    bad = factories.trace(start=T0 + timedelta(minutes=1), status_code="ERROR", session_id="s-bad")
    assert _matching(project, "spans", "status_code = 'ERROR'") == [bad[2].pk, bad[0].pk]
    assert _matching(project, "traces", "status_code = 'ERROR'") == [bad[0].pk]
    assert _matching(project, "sessions", "span_kind = 'LLM' and status_code = 'ERROR'") == [
        bad[0].pk
    ]
    assert _matching(project, "sessions", "") == [bad[0].pk, ok[0].pk]
    assert len(_matching(project, "spans", "", limit=2)) == 3  # limit + 1: the caller refuses


def test_span_pks_by_id_keeps_order_and_lists_the_missing():
    spans = factories.trace(project="a")
    found = span_pks_by_id(span_ids=[spans[1].span_id, "x", spans[0].span_id, "x"])
    assert (found.pks, found.missing) == ([spans[1].pk, spans[0].pk], ["x"])
    other = Project.objects.create(name="b")
    assert span_pks_by_id(span_ids=[spans[0].span_id], project=other).missing == [spans[0].span_id]


def test_pages_of_datasets_and_examples():
    spans = factories.trace()
    first = dataset_create(name="first", spans=[s.pk for s in spans]).dataset
    dataset_create(name="second")
    page = dataset_page(limit=1)
    assert [d.name for d in page.items] == ["second"]
    assert [d.name for d in dataset_page(cursor=page.next_cursor, limit=1).items] == ["first"]
    assert dataset_get("first").example_count == 3
    assert dataset_get(str(first.pk)).name == "first"
    assert dataset_get("999", by_name=False) is None
    examples = dataset_examples_page(dataset=first, limit=2)
    assert [e.source_span_id for e in examples.items] == [spans[0].span_id, spans[1].span_id]
    rest = dataset_examples_page(dataset=first, cursor=examples.next_cursor, limit=2)
    assert [e.source_span_id for e in rest.items] == [spans[2].span_id]
    assert rest.next_cursor is None


def test_a_persons_label_and_a_judges_result_of_one_name_both_reach_the_example():
    span = factories.trace()[0]
    _annotate("SPAN", span.span_id, "quality", label="good", explanation="clear")
    _annotate("SPAN", span.span_id, "quality", label="bad", annotator_kind="LLM")
    result = dataset_create(name="both", spans=[span.pk], expected_output_from="eval.quality")
    (example,) = _examples(result.dataset)
    assert example.labels == {
        "quality": {"label": "good", "score": None, "explanation": "clear"},
        "eval.quality": {"label": "bad", "score": None, "explanation": None},
    }
    assert example.expected_output == "bad"
    assert annotation_names_recent(project=span.project) == ["eval.quality", "quality"]
