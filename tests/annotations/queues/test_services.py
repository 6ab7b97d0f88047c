"""Labeling queues: services and selectors (assignment modes, reservations, uniqueness,
adding from filters, submitting labels, progress)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotations.models import Annotation, AnnotationSource, AnnotatorKind
from annotations.queues import labelling
from annotations.queues import services as services_queues
from annotations.queues.labelling import (
    QueueAnswersInvalid,
    QueueItemReserved,
    QueueItemUnavailable,
    queue_item_next,
    queue_item_reserve,
    queue_item_skip,
    queue_item_submit,
)
from annotations.queues.models import ItemState, LabelingQueueItem, LabelingQueueReview
from annotations.queues.progress import queue_progress, queue_progress_for
from annotations.queues.selectors import (
    queue_item_previous,
    queue_item_rows,
    queue_items_for,
    queue_items_waiting,
)
from annotations.queues.services import (
    QueueInvalid,
    QueueItemsNotFound,
    QueueNameTaken,
    queue_create,
    queue_items_add,
    queue_items_add_from_filter,
    queue_update,
)
from annotations.rubrics.services import annotation_config_create
from evalhub.identity.roles import annotator_role_grant
from tests import factories
from tracing.query import FilterError

pytestmark = pytest.mark.django_db


@pytest.fixture
def correctness():
    return annotation_config_create(
        name="correctness",
        kind="CATEGORICAL",
        values=[{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
    )


@pytest.fixture
def relevance():
    return annotation_config_create(
        name="relevance", kind="CONTINUOUS", lower_bound=0, upper_bound=10
    )


@pytest.fixture
def notes():
    return annotation_config_create(name="notes", kind="FREEFORM")


@pytest.fixture
def people(django_user_model):
    return [django_user_model.objects.create_user(username=name) for name in ("ann", "bob", "cy")]


def traces(n: int, **kwargs):
    """``n`` traces, oldest first; returns their root spans."""
    return [
        factories.trace(start=factories.BASE_TIME + timedelta(minutes=i), **kwargs)[0]
        for i in range(n)
    ]


def trace_queue(configs, assignees=(), mode="ALL", name="q"):
    return queue_create(
        name=name, item_kind="TRACE", configs=configs, assignees=assignees, assignment_mode=mode
    )


def add_traces(queue, roots):
    return queue_items_add(queue=queue, trace_ids=[r.trace.trace_id for r in roots])


# --- queues -----------------------------------------------------------------------------------


def test_create_names_the_bad_field(correctness):
    with pytest.raises(QueueInvalid) as exc:
        queue_create(name=" ", item_kind="TRACE", configs=[correctness])
    assert exc.value.field == "name"
    with pytest.raises(QueueInvalid) as exc:
        queue_create(name="q", item_kind="DATASET", configs=[correctness])
    assert exc.value.field == "item_kind"
    with pytest.raises(QueueInvalid) as exc:
        queue_create(name="q", item_kind="TRACE", configs=[correctness], assignment_mode="EACH")
    assert exc.value.field == "assignment_mode"
    with pytest.raises(QueueInvalid) as exc:
        queue_create(name="q", item_kind="TRACE", configs=[])
    assert exc.value.field == "configs"


def test_names_are_unique(correctness):
    trace_queue([correctness], name="review")
    with pytest.raises(QueueNameTaken):
        trace_queue([correctness], name="review")


def test_item_kind_and_mode_stay_once_there_are_items(correctness, people):
    queue = trace_queue([correctness], people[:1])
    add_traces(queue, traces(1))
    with pytest.raises(QueueInvalid) as exc:
        queue_update(
            queue=queue,
            name="q",
            item_kind="SPAN",
            configs=[correctness],
            assignees=people[:1],
            assignment_mode="ALL",
        )
    assert exc.value.field == "item_kind"
    with pytest.raises(QueueInvalid) as exc:
        queue_update(
            queue=queue,
            name="q",
            item_kind="TRACE",
            configs=[correctness],
            assignees=people[:1],
            assignment_mode="ROUND_ROBIN",
        )
    assert exc.value.field == "assignment_mode"


# --- adding items -----------------------------------------------------------------------------


def test_an_item_is_in_a_queue_once(correctness):
    queue = trace_queue([correctness])
    roots = traces(2)
    assert add_traces(queue, roots[:1]).added == 1
    result = add_traces(queue, roots)
    assert (result.added, result.already_queued) == (1, 1)
    assert LabelingQueueItem.objects.filter(queue=queue).count() == 2
    item = LabelingQueueItem.objects.filter(queue=queue).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        LabelingQueueItem.objects.create(queue=queue, project=item.project, trace=item.trace)


def test_the_same_trace_can_be_in_two_queues(correctness):
    root = traces(1)[0]
    first, second = trace_queue([correctness], name="a"), trace_queue([correctness], name="b")
    assert add_traces(first, [root]).added == 1
    assert add_traces(second, [root]).added == 1


def test_adding_ids_of_the_wrong_kind_or_missing_ids_adds_nothing(correctness):
    queue = trace_queue([correctness])
    root = traces(1)[0]
    with pytest.raises(QueueInvalid) as exc:
        queue_items_add(queue=queue, span_ids=[root.span_id])
    assert exc.value.field == "span_ids"
    assert "trace_ids" in exc.value.message
    with pytest.raises(QueueItemsNotFound) as missing:
        queue_items_add(queue=queue, trace_ids=[root.trace.trace_id, "nope1", "nope2"])
    assert missing.value.missing == ["nope1", "nope2"]
    assert not LabelingQueueItem.objects.exists()
    with pytest.raises(QueueInvalid) as exc:
        queue_items_add(queue=queue, trace_ids=[root.trace.trace_id, ""])
    assert exc.value.field == "trace_ids[1]"


def test_spans_and_sessions_by_id(correctness):
    spans = factories.trace(session_id="conv-1")
    span_queue = queue_create(name="spans", item_kind="SPAN", configs=[correctness])
    assert queue_items_add(queue=span_queue, span_ids=[s.span_id for s in spans]).added == 3
    session_queue = queue_create(name="sessions", item_kind="SESSION", configs=[correctness])
    with pytest.raises(QueueInvalid) as exc:
        queue_items_add(queue=session_queue, session_ids=["conv-1"])
    assert exc.value.field == "project"
    project = factories.project()
    assert queue_items_add(queue=session_queue, session_ids=["conv-1"], project=project).added == 1
    item = LabelingQueueItem.objects.get(queue=session_queue)
    assert item.session.session_id == "conv-1"
    assert item.project == project


def test_add_from_a_filter_takes_the_traces_with_a_matching_span_newest_first(correctness):
    slow = traces(3, llm_latency_ms=2000)
    traces(2, llm_latency_ms=10)
    queue = trace_queue([correctness])
    project = factories.project()
    result = queue_items_add_from_filter(
        queue=queue, project=project, filter_text="span_kind = 'LLM' and latency_ms > 1000"
    )
    assert (result.added, result.already_queued) == (3, 0)
    queued = list(LabelingQueueItem.objects.filter(queue=queue).order_by("id"))
    assert [i.trace_id for i in queued] == [r.trace_id for r in reversed(slow)]

    again = queue_items_add_from_filter(queue=queue, project=project, filter_text="")
    assert (again.added, again.already_queued) == (2, 3)


def test_add_from_a_filter_caps_and_samples(correctness):
    traces(20)
    queue = trace_queue([correctness])
    project = factories.project()
    capped = queue_items_add_from_filter(queue=queue, project=project, filter_text="", limit=4)
    assert capped.added == 4
    sampled = queue_items_add_from_filter(
        queue=queue, project=project, filter_text="", sample_percent=50, rng=random.Random(7)
    )
    assert 0 < sampled.added < 16
    assert sampled.already_queued == 4


def test_a_bad_filter_or_cap_adds_nothing(correctness, monkeypatch):
    traces(3)
    queue = trace_queue([correctness])
    project = factories.project()
    with pytest.raises(FilterError) as exc:
        queue_items_add_from_filter(queue=queue, project=project, filter_text="latncy_ms > 3")
    assert "latency_ms" in exc.value.message
    for bad in (0, -1, 10**9):
        with pytest.raises(QueueInvalid) as invalid:
            queue_items_add_from_filter(queue=queue, project=project, filter_text="", limit=bad)
        assert invalid.value.field == "limit"
    for bad in (0, 101, float("nan")):
        with pytest.raises(QueueInvalid) as invalid:
            queue_items_add_from_filter(
                queue=queue, project=project, filter_text="", sample_percent=bad
            )
        assert invalid.value.field == "sample_percent"
    monkeypatch.setattr(services_queues, "MAX_ITEMS_PER_ADD", 2)
    with pytest.raises(QueueInvalid) as too_many:
        queue_items_add_from_filter(queue=queue, project=project, filter_text="")
    assert too_many.value.field == "limit"
    assert not LabelingQueueItem.objects.exists()


# --- assignment modes -------------------------------------------------------------------------


def test_all_mode_gives_every_assignee_every_item(correctness, people):
    ann, bob, _ = people
    queue = trace_queue([correctness], [ann, bob])
    add_traces(queue, traces(3))
    assert queue_items_for(queue=queue, user=ann).count() == 3
    assert queue_items_for(queue=queue, user=bob).count() == 3
    first = queue_item_next(queue=queue, user=ann)
    queue_item_submit(item=first, user=ann, answers={"correctness": "correct"})
    assert queue_items_for(queue=queue, user=ann).count() == 2
    assert queue_items_for(queue=queue, user=bob).count() == 3


def test_round_robin_deals_items_in_turn_across_adds(correctness, people):
    ann, bob, cy = people
    queue = trace_queue([correctness], [ann, bob], mode="ROUND_ROBIN")
    roots = traces(6)
    add_traces(queue, roots[:3])
    add_traces(queue, roots[3:])
    dealt = list(
        LabelingQueueItem.objects.filter(queue=queue)
        .order_by("id")
        .values_list("assigned_to__username", flat=True)
    )
    assert dealt == ["ann", "bob", "ann", "bob", "ann", "bob"]
    assert queue_items_for(queue=queue, user=ann).count() == 3
    assert queue_items_for(queue=queue, user=cy).count() == 0
    bobs = LabelingQueueItem.objects.filter(queue=queue, assigned_to=bob).first()
    with pytest.raises(QueueItemUnavailable):
        queue_item_submit(item=bobs, user=ann, answers={"correctness": "correct"})


def test_round_robin_deals_the_pending_items_of_someone_removed_anew(correctness, people):
    ann, bob, cy = people
    queue = trace_queue([correctness], [ann, bob], mode="ROUND_ROBIN")
    add_traces(queue, traces(6))
    done = queue_item_next(queue=queue, user=bob)
    queue_item_submit(item=done, user=bob, answers={"correctness": "incorrect"})
    queue_update(
        queue=queue,
        name="q",
        item_kind="TRACE",
        configs=[correctness],
        assignees=[ann, cy],
        assignment_mode="ROUND_ROBIN",
    )
    owners = dict(
        LabelingQueueItem.objects.filter(queue=queue).values_list("pk", "assigned_to__username")
    )
    assert owners[done.pk] == "bob"  # what bob labelled stays his
    # bob's two pending items continue the rotation: one to ann, one to cy.
    assert sorted(owners.values()) == ["ann", "ann", "ann", "ann", "bob", "cy"]
    progress = queue_progress(queue=queue)
    assert (progress.overall.total, progress.overall.completed) == (6, 1)
    by_name = {a.username: a for a in progress.annotators}
    assert by_name["bob"].is_assignee is False
    assert by_name["bob"].tally.completed == 1
    assert by_name["cy"].tally.total == 1


def test_an_open_queue_is_done_by_whoever_labels_first(correctness, people, django_user_model):
    ann, bob, _ = people
    queue = trace_queue([correctness])
    add_traces(queue, traces(2))
    item = queue_item_next(queue=queue, user=ann)
    queue_item_submit(item=item, user=ann, answers={"correctness": "correct"})
    assert list(queue_items_for(queue=queue, user=bob).values_list("pk", flat=True)) == [
        item.pk + 1
    ]
    progress = queue_progress(queue=queue)
    assert (progress.overall.total, progress.overall.completed, progress.overall.pending) == (
        2,
        1,
        1,
    )
    annotator = django_user_model.objects.create_user(username="annotator")
    annotator_role_grant(user=annotator)
    assert queue_item_next(queue=queue, user=annotator) is None


# --- reservations -----------------------------------------------------------------------------


def test_next_item_skips_items_someone_else_holds_until_the_reservation_expires(
    correctness, people, settings
):
    settings.EVALHUB_QUEUE_RESERVATION_SECONDS = 120
    ann, bob, cy = people
    queue = trace_queue([correctness], [ann, bob, cy])
    add_traces(queue, traces(2))
    first = queue_item_next(queue=queue, user=ann)
    second = queue_item_next(queue=queue, user=bob)
    assert first.pk != second.pk
    assert first.reserved_by == ann
    remaining = (first.reserved_until - timezone.now()).total_seconds()
    assert 110 < remaining <= 120
    # Asking again keeps what you hold.
    assert queue_item_next(queue=queue, user=ann).pk == first.pk
    assert queue_item_next(queue=queue, user=cy) is None
    assert queue_items_waiting(queue=queue, user=cy) == 2
    with pytest.raises(QueueItemReserved) as held:
        queue_item_submit(item=first, user=cy, answers={"correctness": "correct"})
    assert held.value.holder == "ann"

    LabelingQueueItem.objects.filter(pk=first.pk).update(
        reserved_until=timezone.now() - timedelta(seconds=1)
    )
    taken = queue_item_next(queue=queue, user=cy)
    assert taken.pk == first.pk
    assert taken.reserved_by == cy
    assert queue_item_reserve(item=first, user=ann) is False
    queue_item_submit(item=taken, user=cy, answers={"correctness": "correct"})
    taken.refresh_from_db()
    assert taken.reserved_by is None


def test_taking_an_item_lets_go_of_the_one_held_before(correctness, people):
    ann, bob, _ = people
    queue = trace_queue([correctness], [ann, bob])
    add_traces(queue, traces(2))
    first = queue_item_next(queue=queue, user=ann)
    second = LabelingQueueItem.objects.exclude(pk=first.pk).get()
    assert queue_item_reserve(item=second, user=ann) is True
    first.refresh_from_db()
    assert first.reserved_by is None
    assert queue_item_next(queue=queue, user=bob).pk == first.pk


# --- labelling --------------------------------------------------------------------------------


def test_submit_writes_human_annotations_and_completes_the_item(
    correctness, relevance, notes, people
):
    ann = people[0]
    queue = trace_queue([correctness, relevance, notes], [ann])
    add_traces(queue, traces(1))
    item = queue_item_next(queue=queue, user=ann)
    written = queue_item_submit(
        item=item,
        user=ann,
        answers={"correctness": "incorrect", "relevance": "7.5", "notes": "cites the wrong doc"},
    )
    assert len(written) == 3
    by_name = {a.name: a for a in Annotation.objects.filter(trace=item.trace)}
    assert by_name["correctness"].label == "incorrect"
    assert by_name["correctness"].score == 0.0
    assert by_name["relevance"].score == 7.5
    assert by_name["notes"].explanation == "cites the wrong doc"
    for annotation in by_name.values():
        assert annotation.annotator_kind == AnnotatorKind.HUMAN
        assert annotation.source == AnnotationSource.APP
        assert annotation.identifier == "ann"
        assert annotation.user == ann
        assert annotation.target_kind == "TRACE"
    assert LabelingQueueReview.objects.get(item=item, user=ann).state == ItemState.COMPLETED

    # Submitting again updates the same annotations.
    queue_item_submit(item=item, user=ann, answers={"correctness": "correct", "relevance": 3})
    assert Annotation.objects.filter(trace=item.trace).count() == 3
    assert Annotation.objects.get(trace=item.trace, name="correctness").label == "correct"


def test_answers_that_do_not_fit_the_rubric_write_nothing(correctness, relevance, notes, people):
    ann = people[0]
    queue = trace_queue([correctness, relevance, notes], [ann])
    add_traces(queue, traces(1))
    item = queue_item_next(queue=queue, user=ann)
    cases = [
        ({"relevance": 3}, "correctness", "choose a value"),
        ({"correctness": "maybe", "relevance": 3}, "correctness", "is not one of"),
        ({"correctness": "correct"}, "relevance", "enter a number"),
        ({"correctness": "correct", "relevance": 11}, "relevance", "at most 10"),
        ({"correctness": "correct", "relevance": "x"}, "relevance", "must be a number"),
        ({"correctness": "correct", "relevance": 1, "tone": "ok"}, "tone", "not in this queue"),
    ]
    for answers, name, message in cases:
        with pytest.raises(QueueAnswersInvalid) as exc:
            queue_item_submit(item=item, user=ann, answers=answers)
        assert message in exc.value.errors[name], answers
    assert not Annotation.objects.exists()
    assert not LabelingQueueReview.objects.exists()


def test_annotations_and_completion_are_one_transaction(correctness, people, monkeypatch):
    ann = people[0]
    queue = trace_queue([correctness], [ann])
    add_traces(queue, traces(1))
    item = queue_item_next(queue=queue, user=ann)

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(labelling, "_review_set", fail)
    with pytest.raises(RuntimeError):
        queue_item_submit(item=item, user=ann, answers={"correctness": "correct"})
    assert not Annotation.objects.exists()


def test_skip_and_previous(correctness, people):
    ann = people[0]
    queue = trace_queue([correctness], [ann])
    add_traces(queue, traces(3))
    first = queue_item_next(queue=queue, user=ann)
    queue_item_submit(item=first, user=ann, answers={"correctness": "correct"})
    second = queue_item_next(queue=queue, user=ann)
    assert queue_item_skip(item=second, user=ann) == ItemState.SKIPPED
    third = queue_item_next(queue=queue, user=ann)
    assert third.pk not in (first.pk, second.pk)

    assert queue_item_previous(queue=queue, user=ann, item=third).pk == second.pk
    assert queue_item_previous(queue=queue, user=ann, item=second).pk == first.pk
    assert queue_item_previous(queue=queue, user=ann, item=first) is None

    tally = queue_progress_for(queue=queue, user=ann)
    assert (tally.total, tally.completed, tally.skipped, tally.pending) == (3, 1, 1, 1)
    assert queue_item_next(queue=queue, user=ann, state=ItemState.SKIPPED).pk == second.pk
    # Skipping what you completed keeps it completed.
    assert queue_item_skip(item=first, user=ann) == ItemState.COMPLETED


def test_progress_overall_and_per_annotator_in_all_mode(correctness, people):
    ann, bob, _ = people
    queue = trace_queue([correctness], [ann, bob])
    add_traces(queue, traces(3))
    for user, skip in ((ann, False), (ann, True), (bob, False)):
        item = queue_item_next(queue=queue, user=user)
        if skip:
            queue_item_skip(item=item, user=user)
        else:
            queue_item_submit(item=item, user=user, answers={"correctness": "correct"})
    progress = queue_progress(queue=queue)
    overall = progress.overall
    assert (overall.total, overall.completed, overall.skipped, overall.pending) == (6, 2, 1, 3)
    assert overall.percent == 50
    by_name = {a.username: a.tally for a in progress.annotators}
    assert (by_name["ann"].completed, by_name["ann"].skipped, by_name["ann"].pending) == (1, 1, 1)
    assert (by_name["bob"].completed, by_name["bob"].pending) == (1, 2)

    states = {
        state: queue_item_rows(queue=queue, state=state).count()
        for state in (ItemState.PENDING, ItemState.COMPLETED, ItemState.SKIPPED)
    }
    assert states == {"PENDING": 2, "COMPLETED": 1, "SKIPPED": 0}
    assert queue_item_rows(queue=queue, state=ItemState.SKIPPED, assignee=ann).count() == 1


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="concurrent writers need PostgreSQL (the SQLite test database locks its tables)",
)
@pytest.mark.django_db(transaction=True)
def test_two_people_asking_at_the_same_moment_get_different_items(correctness, people):
    import threading

    queue = trace_queue(configs=[correctness], assignees=people)
    add_traces(queue, traces(3))
    barrier = threading.Barrier(len(people))
    taken: dict[str, int] = {}

    def ask(user) -> None:
        try:
            barrier.wait(timeout=10)
            taken[user.username] = queue_item_next(queue=queue, user=user).pk
        finally:
            connection.close()  # this thread's connection

    threads = [threading.Thread(target=ask, args=(user,)) for user in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(taken) == 3
    assert len(set(taken.values())) == 3
