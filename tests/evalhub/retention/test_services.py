"""Retention: a project's traces older than its limit go, a batch at a time, with their
annotations and labeling-queue items; dataset examples keep their copies; the pass is logged
and runs on beat."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.datasets.models import DatasetExample
from annotations.datasets.services import dataset_create
from annotations.models import Annotation, AnnotationSource
from annotations.queues.models import LabelingQueueItem
from annotations.queues.services import queue_create, queue_items_add
from annotations.rubrics.services import annotation_config_create
from annotations.store.services import AnnotationInput, annotations_upsert
from evalhub.celery import beat_schedule
from evalhub.retention.models import RetentionSweep
from evalhub.retention.selectors import retention_days
from evalhub.retention.services import retention_apply, retention_policy_set, retention_sweep
from tests import factories
from tracing.models import Session, Span, Trace

pytestmark = pytest.mark.django_db


def _annotate(span, *, session: str | None = None) -> None:
    items = [
        AnnotationInput(target_kind="SPAN", target_id=span.span_id, name="ok", label="yes"),
        AnnotationInput(target_kind="TRACE", target_id=span.trace.trace_id, name="ok", score=1),
    ]
    if session:
        items.append(
            AnnotationInput(target_kind="SESSION", target_id=session, name="csat", score=4)
        )
    annotations_upsert(items=items, source=AnnotationSource.API, project=span.project)


def test_old_traces_go_with_their_annotations_and_queue_items_datasets_keep_copies(caplog):
    now = timezone.now()
    old, recent = now - timedelta(days=40), now - timedelta(days=5)
    # Project "shop": three old traces (two in an old conversation, one in a conversation that
    # goes on), two recent ones.
    old_roots = [
        factories.trace(project="shop", start=old, session_id="chat-old")[0],
        factories.trace(project="shop", start=old + timedelta(minutes=1), session_id="chat-old")[0],
        factories.trace(project="shop", start=old, session_id="chat-live")[0],
    ]
    new_roots = [
        factories.trace(project="shop", start=recent, session_id="chat-live")[0],
        factories.trace(project="shop", start=recent)[0],
    ]
    for root in old_roots + new_roots:
        _annotate(root)
    _annotate(old_roots[0], session="chat-old")
    config = annotation_config_create(
        name="quality", kind="CATEGORICAL", values=[{"label": "good"}, {"label": "bad"}]
    )
    queue = queue_create(name="review", item_kind="TRACE", configs=[config])
    queue_items_add(queue=queue, trace_ids=[r.trace.trace_id for r in old_roots + new_roots])
    added = dataset_create(name="golden", spans=[old_roots[0].pk, new_roots[0].pk])
    # Another project keeps its traces forever, whatever the default.
    factories.trace(project="archive", start=old)
    retention_policy_set(project=factories.project("archive"), days=0)
    retention_policy_set(project=factories.project("shop"), days=30)

    with caplog.at_level(logging.INFO, logger="evalhub.retention.services"):
        sweeps = retention_sweep(now=now)

    assert len(sweeps) == 1
    sweep = sweeps[0]
    assert (sweep.project.name, sweep.days, sweep.cutoff) == ("shop", 30, now - timedelta(days=30))
    # Three traces of three spans; chat-old had no trace left; a span, a trace and a session
    # annotation each on the first old trace, two on the others; three queue items; one
    # dataset example from a deleted span.
    assert (sweep.traces, sweep.spans, sweep.sessions) == (3, 9, 1)
    assert (sweep.annotations, sweep.queue_items, sweep.dataset_examples_kept) == (7, 3, 1)
    assert sweep.finished_at is not None
    shop = Span.objects.filter(project__name="shop")
    assert set(shop.values_list("trace_id", flat=True)) == {r.trace_id for r in new_roots}
    assert Span.objects.filter(project__name="archive").count() == 3
    assert set(
        Session.objects.filter(project__name="shop").values_list("session_id", flat=True)
    ) == {"chat-live"}
    live = Session.objects.get(session_id="chat-live")
    assert (live.trace_count, live.span_count, live.start_time) == (1, 3, recent)
    # What hung on the deleted traces is gone; the rest is there.
    assert set(Annotation.objects.values_list("trace_id", "span__trace_id")) <= {
        (t, s) for r in new_roots for t in (r.trace_id, None) for s in (r.trace_id, None)
    }
    assert Annotation.objects.count() == 4
    assert set(LabelingQueueItem.objects.values_list("trace_id", flat=True)) == {
        r.trace_id for r in new_roots
    }
    # The dataset keeps both examples, the deleted span's copy as it was.
    examples = DatasetExample.objects.filter(dataset=added.dataset).order_by("id")
    assert [e.source_span_id for e in examples] == [old_roots[0].span_id, new_roots[0].span_id]
    assert examples[0].input == "What is the refund policy?"
    message = "\n".join(caplog.messages)
    assert "retention: project shop, 30 days" in message and "deleted 3 traces, 9 spans" in message
    # Nothing older is left: a second pass does nothing.
    assert retention_sweep(now=now) == []


def test_batches_and_the_default_limit(settings):
    settings.EVALHUB_RETENTION_DAYS = 10
    now = timezone.now()
    for day in range(7):
        factories.trace(start=now - timedelta(days=20 + day))
    factories.trace(start=now - timedelta(days=2))
    project = factories.project("default")
    assert retention_days(project=project) == 10
    sweep = retention_apply(project=project, days=10, now=now, batch=3)
    assert (sweep.traces, sweep.spans) == (7, 21)
    assert Trace.objects.count() == 1 and Span.objects.count() == 3
    # A trace that started before the cutoff but ended after it is kept whole.
    long = factories.trace(start=now - timedelta(days=10, seconds=0.3))
    retention_apply(project=project, days=10, now=now)
    assert Trace.objects.filter(pk=long[0].trace_id).exists()
    assert RetentionSweep.objects.filter(project=project).count() == 2
    retention_policy_set(project=project, days=None)
    settings.EVALHUB_RETENTION_DAYS = 0
    assert retention_days(project=project) == 0 and retention_sweep(now=now) == []
    with pytest.raises(ValueError, match="days"):
        retention_policy_set(project=project, days=-1)


def test_the_pass_is_on_the_beat_schedule():
    entry = beat_schedule()["retention-sweep"]
    assert entry["task"] == "evalhub.retention_sweep"
    assert entry["schedule"] == 3600.0


def test_the_command_sets_shows_and_runs(settings):
    from io import StringIO

    from django.core.management import CommandError, call_command

    settings.EVALHUB_RETENTION_DAYS = 90
    factories.trace(project="shop", start=timezone.now() - timedelta(days=45))
    factories.trace(project="lab", start=timezone.now() - timedelta(days=45))
    call_command("retention", project="shop", days=30)
    out = StringIO()
    call_command("retention", stdout=out)
    assert out.getvalue().splitlines() == ["default: 90 days", "lab: 90 days", "shop: 30 days"]
    out = StringIO()
    call_command("retention", run=True, stdout=out)
    assert out.getvalue().startswith("shop: deleted 1 traces, 3 spans")
    assert Span.objects.filter(project__name="lab").count() == 3
    with pytest.raises(CommandError, match="no project named"):
        call_command("retention", project="nope'; drop table x", days=3)
    with pytest.raises(CommandError, match="--days"):
        call_command("retention", project="shop", days=-1)
    call_command("retention", project="shop", default=True)
    assert retention_days(project=factories.project("shop")) == 90
