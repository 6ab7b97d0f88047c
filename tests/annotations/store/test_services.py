import math

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotations.models import Annotation, AnnotationSource, TargetKind
from annotations.store.selectors import InvalidCursor, annotation_list
from annotations.store.services import (
    AnnotationInput,
    AnnotationInputError,
    AnnotationTargetAmbiguous,
    AnnotationTargetNotFound,
    annotations_upsert,
)
from tests import factories
from tracing.models import Session

pytestmark = pytest.mark.django_db


def span_item(span_id: str, **kwargs) -> AnnotationInput:
    kwargs.setdefault("name", "correctness")
    kwargs.setdefault("label", "correct")
    return AnnotationInput(target_kind="SPAN", target_id=span_id, **kwargs)


def test_upsert_creates_one_annotation_per_target_with_the_targets_project():
    root, _, llm = factories.trace(project="shop", session_id="s-1")
    created = annotations_upsert(
        items=[
            span_item(llm.span_id, score=0.9, explanation="fine", metadata={"model": "judge"}),
            AnnotationInput(
                target_kind="TRACE", target_id=root.trace.trace_id, name="ok", label="yes"
            ),
            AnnotationInput(target_kind="SESSION", target_id="s-1", name="csat", score=4),
        ],
        source=AnnotationSource.TASK,
    )
    assert [a.target_kind for a in created] == ["SPAN", "TRACE", "SESSION"]
    assert all(a.pk for a in created)
    span_ann = Annotation.objects.get(span=llm)
    assert (span_ann.label, span_ann.score, span_ann.explanation) == ("correct", 0.9, "fine")
    assert span_ann.metadata == {"model": "judge"}
    assert span_ann.source == "TASK"
    assert span_ann.project.name == "shop"
    assert Annotation.objects.get(trace=root.trace).project.name == "shop"
    session_ann = Annotation.objects.get(target_kind=TargetKind.SESSION)
    assert session_ann.session == Session.objects.get(session_id="s-1")
    assert session_ann.score == 4.0


def test_writing_the_same_key_again_updates_and_keeps_created_at():
    span = factories.trace()[0]
    user = get_user_model().objects.create_user("ann", password="x")
    (first,) = annotations_upsert(
        items=[span_item(span.span_id, score=0.2, metadata={"a": 1}, annotator_kind="CODE")]
    )
    (second,) = annotations_upsert(
        items=[
            span_item(
                span.span_id,
                label="incorrect",
                score=None,
                explanation="why",
                annotator_kind="LLM",
            )
        ],
        source=AnnotationSource.APP,
        user=user,
    )
    assert second.pk == first.pk
    stored = Annotation.objects.get()
    assert (stored.label, stored.score, stored.explanation) == ("incorrect", None, "why")
    assert stored.metadata == {}
    assert (stored.annotator_kind, stored.source, stored.user) == ("LLM", "APP", user)
    assert stored.created_at == first.created_at
    assert stored.updated_at > first.updated_at


def test_a_persons_label_and_a_judges_result_of_one_name_live_side_by_side():
    """The key has the annotator's class (``annotations.naming``): a HUMAN write never
    replaces an LLM or CODE result of the same name and identifier, nor the other way round;
    within a class the upsert replaces, as Phoenix's does."""
    span = factories.trace()[0]
    annotations_upsert(items=[span_item(span.span_id, label="incorrect", annotator_kind="LLM")])
    annotations_upsert(items=[span_item(span.span_id, label="correct", annotator_kind="HUMAN")])
    annotations_upsert(items=[span_item(span.span_id, label="correct", annotator_kind="CODE")])
    annotations_upsert(items=[span_item(span.span_id, label="wrong", annotator_kind="HUMAN")])
    rows = sorted(Annotation.objects.values_list("name", "annotator_kind", "label"))
    assert rows == [("correctness", "CODE", "correct"), ("correctness", "HUMAN", "wrong")]
    both = annotations_upsert(
        items=[
            span_item(span.span_id, label="a", annotator_kind="HUMAN"),
            span_item(span.span_id, label="b", annotator_kind="LLM"),
        ]
    )
    assert both[0].pk != both[1].pk
    assert Annotation.objects.count() == 2


def test_a_different_identifier_keeps_two_rows():
    span = factories.trace()[0]
    annotations_upsert(items=[span_item(span.span_id, identifier="")])
    annotations_upsert(items=[span_item(span.span_id, identifier="reviewer-2", label="wrong")])
    annotations_upsert(items=[span_item(span.span_id, identifier="  ", label="updated")])
    rows = dict(Annotation.objects.values_list("identifier", "label"))
    assert rows == {"": "updated", "reviewer-2": "wrong"}


def test_the_last_item_for_a_key_wins_within_a_batch():
    span = factories.trace()[0]
    result = annotations_upsert(
        items=[span_item(span.span_id, label="first"), span_item(span.span_id, label="last")]
    )
    assert result[0].pk == result[1].pk
    assert Annotation.objects.get().label == "last"


def test_unknown_targets_are_all_listed_and_nothing_is_written():
    span = factories.trace()[0]
    with pytest.raises(AnnotationTargetNotFound) as info:
        annotations_upsert(
            items=[
                span_item(span.span_id),
                span_item("feedfeedfeedfeed"),
                span_item("beefbeefbeefbeef"),
            ]
        )
    assert info.value.missing == ["feedfeedfeedfeed", "beefbeefbeefbeef"]
    assert "feedfeedfeedfeed" in str(info.value)
    assert "beefbeefbeefbeef" in str(info.value)
    assert not Annotation.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "  "}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"annotator_kind": "ROBOT"}, "annotator_kind"),
        ({"label": None}, "result"),
        ({"score": math.nan}, "score"),
        ({"score": math.inf}, "score"),
        ({"score": "0.5"}, "score"),
        ({"metadata": ["a"]}, "metadata"),
        ({"target_kind": "PAGE"}, "target_kind"),
    ],
)
def test_invalid_items_name_their_index_and_field_and_write_nothing(changes, field):
    span = factories.trace()[0]
    bad = span_item(span.span_id, **{k: v for k, v in changes.items() if k != "target_kind"})
    if "target_kind" in changes:
        bad.target_kind = changes["target_kind"]
    with pytest.raises(AnnotationInputError) as info:
        annotations_upsert(items=[span_item(span.span_id, name="other"), bad])
    assert isinstance(info.value, ValueError)
    assert (info.value.index, info.value.field) == (1, field)
    assert str(info.value).startswith(f"item 1: {field}")
    assert not Annotation.objects.exists()


def test_project_restricts_the_lookup():
    span = factories.trace(project="a")[0]
    other = factories.project("b")
    with pytest.raises(AnnotationTargetNotFound):
        annotations_upsert(items=[span_item(span.span_id)], project=other)
    annotations_upsert(items=[span_item(span.span_id)], project=span.project)
    assert Annotation.objects.count() == 1


def test_a_session_id_in_several_projects_needs_the_project():
    factories.trace(project="a", session_id="shared")
    factories.trace(project="b", session_id="shared")
    item = AnnotationInput(target_kind="SESSION", target_id="shared", name="csat", score=1)
    with pytest.raises(AnnotationTargetAmbiguous) as info:
        annotations_upsert(items=[item])
    assert info.value.field == "session_id"
    assert not Annotation.objects.exists()

    (annotation,) = annotations_upsert(items=[item], project=factories.project("b"))
    assert annotation.session.project.name == "b"
    assert annotation.project.name == "b"


def test_a_thousand_items_take_a_few_queries():
    spans = []
    for _ in range(10):
        spans.extend(factories.trace())
    items = [
        span_item(span.span_id, name=f"metric-{n}", score=n / 100)
        for span in spans
        for n in range(34)
    ][:1000]
    assert len(items) == 1000
    with CaptureQueriesContext(connection) as first:
        annotations_upsert(items=items)
    assert Annotation.objects.count() == 1000
    assert len(first.captured_queries) < 15
    for item in items:
        item.score = 1.0
    with CaptureQueriesContext(connection) as second:
        annotations_upsert(items=items)
    assert len(second.captured_queries) < 15
    assert set(Annotation.objects.values_list("score", flat=True)) == {1.0}


def test_annotation_list_pages_newest_first_and_filters_names():
    spans = factories.trace(project="p")
    other_project_span = factories.trace(project="q")[0]
    for name in ["a", "b", "c", "note"]:
        annotations_upsert(items=[span_item(s.span_id, name=name) for s in spans])
    annotations_upsert(items=[span_item(other_project_span.span_id)])
    project = spans[0].project
    ids = [s.span_id for s in spans]

    seen, cursor = [], None
    while True:
        page = annotation_list(
            project=project, span_ids=ids, exclude_names=["note"], cursor=cursor, limit=4
        )
        seen.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 9
    assert [a.pk for a in seen] == sorted((a.pk for a in seen), reverse=True)
    assert {a.target_key for a in seen} == set(ids)
    assert "note" not in {a.name for a in seen}

    only_b = annotation_list(project=project, span_ids=ids[:1], names=["b"]).items
    assert [(a.name, a.target_key) for a in only_b] == [("b", ids[0])]

    with pytest.raises(InvalidCursor):
        annotation_list(project=project, span_ids=ids, cursor="nope")
