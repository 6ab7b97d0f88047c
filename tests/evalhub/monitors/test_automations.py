"""Automations: results written → matching spans get the rule's action once, sampled and
capped; queue, dataset, tag and webhook actions; the sweep for jobs that were lost; bad rules
are refused naming the field."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from annotations.datasets.models import DatasetExample
from annotations.datasets.services import dataset_create
from annotations.models import AnnotatorKind
from annotations.queues.models import LabelingQueueItem
from annotations.queues.services import queue_create
from annotations.rubrics.services import annotation_config_create
from annotations.store.services import AnnotationInput, annotations_upsert
from evalhub.monitors import automations
from evalhub.monitors.automations import (
    AutomationInput,
    AutomationInvalid,
    automation_create,
    automation_update,
    automations_sweep,
    sampled,
)
from evalhub.monitors.channels import ChannelInput, channel_create
from evalhub.monitors.models import AutomationHit, Delivery
from tests import factories
from tests.evalhub.monitors.helpers import labelled_spans
from tests.factories import BASE_TIME
from tracing.models import Span

pytestmark = pytest.mark.django_db
RULE = "eval.correctness.label = 'incorrect'"


@pytest.fixture
def queue():
    config = annotation_config_create(
        name="verdict", kind="CATEGORICAL", values=[{"label": "ok"}, {"label": "bad"}]
    )
    return queue_create(name="failures", item_kind="SPAN", configs=[config])


def _rule(**changes) -> AutomationInput:
    data = AutomationInput(name="to review", filter=RULE, action="queue")
    for name, value in changes.items():
        setattr(data, name, value)
    return data


def test_failing_spans_go_to_the_queue_once(
    queue, celery_eager, django_capture_on_commit_callbacks
):
    automation = automation_create(project=factories.project(), data=_rule(queue=queue))
    with django_capture_on_commit_callbacks(execute=True):
        spans = labelled_spans(start=BASE_TIME, total=10, incorrect=3)
    queued = set(LabelingQueueItem.objects.filter(queue=queue).values_list("span_id", flat=True))
    assert queued == {s.pk for s in spans[:3]}
    # The same results written again (a redelivered run slice) and a person's label on a
    # failing span: nothing is queued twice.
    with django_capture_on_commit_callbacks(execute=True):
        annotations_upsert(
            items=[
                AnnotationInput(
                    target_kind="SPAN", target_id=spans[0].span_id, name="correctness",
                    annotator_kind=AnnotatorKind.LLM, label="incorrect",
                ),
                AnnotationInput(
                    target_kind="SPAN", target_id=spans[1].span_id, name="correctness",
                    annotator_kind=AnnotatorKind.HUMAN, label="incorrect", identifier="ann",
                ),
            ]
        )  # fmt: skip
    assert LabelingQueueItem.objects.filter(queue=queue).count() == 3
    assert AutomationHit.objects.filter(automation=automation).count() == 3


def test_a_human_annotation_triggers_a_rule(
    queue, celery_eager, django_capture_on_commit_callbacks
):
    (span,) = factories.ingest([factories.span_record(kind="LLM")])
    automation_create(
        project=factories.project(),
        data=_rule(filter="annotation.correctness.label = 'incorrect'", queue=queue),
    )
    with django_capture_on_commit_callbacks(execute=True):
        annotations_upsert(
            items=[
                AnnotationInput(
                    target_kind="SPAN", target_id=span.span_id, name="correctness",
                    annotator_kind=AnnotatorKind.HUMAN, label="incorrect", identifier="ann",
                )
            ]
        )  # fmt: skip
    assert LabelingQueueItem.objects.filter(queue=queue, span=span).exists()


def test_sampling_and_the_daily_cap(queue, celery_eager, django_capture_on_commit_callbacks):
    automation = automation_create(
        project=factories.project(), data=_rule(queue=queue, sampling_rate=50, daily_cap=4)
    )
    with django_capture_on_commit_callbacks(execute=True):
        spans = labelled_spans(start=BASE_TIME, total=40, incorrect=40)
    in_sample = [s for s in spans if sampled(automation.pk, s.span_id, 50)]
    assert 8 < len(in_sample) < 32  # about half
    hits = AutomationHit.objects.filter(automation=automation)
    assert hits.count() == 4
    assert set(hits.values_list("span_id", flat=True)) <= {s.pk for s in in_sample}


def test_dataset_tag_and_webhook_actions(celery_eager, django_capture_on_commit_callbacks):
    project = factories.project()
    dataset = dataset_create(name="hard cases").dataset
    channel = channel_create(
        data=ChannelInput(name="hook", kind="webhook", url="http://127.0.0.1:9/")
    )
    automation_create(
        project=project,
        data=_rule(
            name="keep", action="dataset", dataset=dataset, expected_output_from="eval.correctness"
        ),
    )
    automation_create(project=project, data=_rule(name="tag", action="tag", tag="needs-review"))
    automation_create(project=project, data=_rule(name="call", action="webhook", channel=channel))
    with django_capture_on_commit_callbacks(execute=True):
        spans = labelled_spans(start=BASE_TIME, total=4, incorrect=2)
    examples = DatasetExample.objects.filter(dataset=dataset)
    assert {e.source_span_id for e in examples} == {s.span_id for s in spans[:2]}
    assert {e.expected_output for e in examples} == {"incorrect"}
    tags = dict(Span.objects.filter(pk__in=[s.pk for s in spans]).values_list("pk", "tags"))
    assert {pk for pk, t in tags.items() if "needs-review" in t} == {s.pk for s in spans[:2]}
    (delivery,) = Delivery.objects.filter(channel=channel)
    assert delivery.payload["type"] == "automation.matched"
    assert {s["span_id"] for s in delivery.payload["spans"]} == {s.span_id for s in spans[:2]}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"filter": "eval.correctness.lable = 'x'"}, "filter"),
        ({"filter": ""}, "filter"),
        ({"action": "explode"}, "action"),
        ({"action": "queue", "queue": None}, "queue"),
        ({"action": "tag", "tag": ""}, "tag"),
        ({"sampling_rate": 0}, "sampling_rate"),
        ({"sampling_rate": 150}, "sampling_rate"),
        ({"daily_cap": 0}, "daily_cap"),
    ],
)
def test_bad_rules_name_the_field(queue, changes, field):
    changes.setdefault("queue", queue)
    with pytest.raises(AutomationInvalid) as caught:
        automation_create(project=factories.project(), data=_rule(**changes))
    assert caught.value.field == field


def _sweep_later() -> int:
    """The beat's sweep once the grace period of everything written so far has passed (it
    sweeps up to this moment)."""
    grace = timedelta(seconds=settings.EVALHUB_AUTOMATIONS_SWEEP_GRACE_SECONDS)
    return automations_sweep(now=timezone.now() + grace)


def test_the_sweep_acts_on_results_whose_job_was_lost(queue):
    automation = automation_create(project=factories.project(), data=_rule(queue=queue))
    # Written outside a captured commit: the job sent on commit never runs.
    spans = labelled_spans(start=BASE_TIME, total=10, incorrect=3)
    assert not LabelingQueueItem.objects.exists()
    # Within the grace period the results are left to their own job.
    assert automations_sweep() == 0
    assert _sweep_later() == 3
    queued = set(LabelingQueueItem.objects.filter(queue=queue).values_list("span_id", flat=True))
    assert queued == {s.pk for s in spans[:3]}
    # Swept again, or a result re-written on a span already acted on: nothing twice.
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN", target_id=spans[0].span_id, name="correctness",
                annotator_kind=AnnotatorKind.LLM, label="incorrect",
            )
        ]
    )  # fmt: skip
    assert _sweep_later() == 0
    assert AutomationHit.objects.filter(automation=automation).count() == 3
    assert LabelingQueueItem.objects.filter(queue=queue).count() == 3
    # A later result flipping a span to 'incorrect' is swept too.
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN", target_id=spans[9].span_id, name="correctness",
                annotator_kind=AnnotatorKind.LLM, label="incorrect",
            )
        ]
    )  # fmt: skip
    assert _sweep_later() == 1
    assert LabelingQueueItem.objects.filter(queue=queue, span=spans[9]).exists()


def test_the_sweep_leaves_what_the_job_did_and_what_came_before_the_rule(
    queue, celery_eager, django_capture_on_commit_callbacks
):
    before = labelled_spans(start=BASE_TIME, total=4, incorrect=2)
    automation = automation_create(project=factories.project(), data=_rule(queue=queue))
    with django_capture_on_commit_callbacks(execute=True):
        done = labelled_spans(start=BASE_TIME, total=4, incorrect=2)
    assert _sweep_later() == 0
    queued = set(LabelingQueueItem.objects.filter(queue=queue).values_list("span_id", flat=True))
    assert queued == {s.pk for s in done[:2]} and not queued & {s.pk for s in before}
    # Switched off, results written, switched on: those results are not the rule's.
    data = _rule(queue=queue, enabled=False)
    automation_update(automation=automation, data=data)
    labelled_spans(start=BASE_TIME, total=4, incorrect=2)
    assert _sweep_later() == 0
    automation_update(automation=automation, data=_rule(queue=queue))
    assert _sweep_later() == 0
    assert LabelingQueueItem.objects.filter(queue=queue).count() == 2


def test_a_rule_far_behind_is_swept_in_parts(queue, monkeypatch):
    monkeypatch.setattr(automations, "SWEEP_RESULTS", 4)
    automation = automation_create(project=factories.project(), data=_rule(queue=queue))
    spans = []
    for _part in range(3):  # three writes of 4 results, their jobs lost
        spans += labelled_spans(start=BASE_TIME, total=4, incorrect=1)
    grace = timedelta(seconds=settings.EVALHUB_AUTOMATIONS_SWEEP_GRACE_SECONDS)
    through = timezone.now()
    acted, caught_up = automations.automation_sweep(automation_id=automation.pk, through=through)
    assert (acted, caught_up) == (1, False)
    automation.refresh_from_db()
    assert automation.swept_through < through
    assert automations_sweep(now=through + grace) == 2
    automation.refresh_from_db()
    assert automation.swept_through == through
    queued = set(LabelingQueueItem.objects.filter(queue=queue).values_list("span_id", flat=True))
    assert queued == {spans[0].pk, spans[4].pk, spans[8].pk}
