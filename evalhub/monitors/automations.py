"""Automations: rules run on results as they arrive. When a span matches a rule's filter (the
one filter language), the rule acts on it — adds it to a labeling queue or a dataset, tags it,
or calls a webhook — sampled, at most ``daily_cap`` spans a day, and once per span and rule:
the ``AutomationHit`` row is written in the same transaction as the action, under the rule's
row lock, so a redelivered task or a result written twice acts on nothing again.

They run after results are written (``annotations.store.signals.annotations_written``: the online
task engine's results and people's annotations alike); a trace's result stands for its root
span. A job that was lost on the way (the broker down at the commit, a worker killed while
running it — its redelivery waits for the broker's visibility timeout) is made up for by the
sweep on beat (``automations_sweep``): each enabled rule goes over the results written since it
last swept, a grace period ago at the latest (the job's own turn first), and acts on what it
has not — the same ``automation_apply``, so still once per span and rule. A result committed
more than the grace period after it was stamped (``updated_at``), and whose job was also lost,
is not seen by the sweep.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotations.datasets.models import Dataset
from annotations.datasets.services import dataset_examples_add, expected_output_from_clean
from annotations.models import Annotation, TargetKind
from annotations.queues.models import LabelingQueue
from annotations.queues.services import queue_items_add
from evalhub.core.fields import FieldInvalid, NameTaken, save_named
from evalhub.core.jobs import job_send
from evalhub.monitors.channels import DELIVERY_SEND
from evalhub.monitors.models import (
    ActionKind,
    Automation,
    AutomationHit,
    ChannelKind,
    Delivery,
    NotificationChannel,
)
from tracing.models import Project, Span
from tracing.query import FilterError, compile_filter

MAX_TAG_LENGTH: Final = 200
BATCH: Final = 1000
SWEEP_RESULTS: Final = 10_000  # results a sweep transaction takes of one rule
SWEEP_BUDGET_SECONDS: Final = 120.0  # one sweep task, well within the task time limit

# The Celery tasks applying a project's automations and sweeping for lost ones
# (evalhub.monitors.jobs).
AUTOMATIONS_APPLY = "monitors.automations_apply"
AUTOMATIONS_SWEEP = "monitors.automations_sweep"


class AutomationInvalid(FieldInvalid):
    """A rule that cannot be stored; ``field`` names the input."""


class AutomationNameTaken(NameTaken):
    noun = "automation"


@dataclass
class AutomationInput:
    name: str
    filter: str
    action: str
    queue: LabelingQueue | None = None
    dataset: Dataset | None = None
    expected_output_from: str = ""
    dataset_source: str = "span"
    tag: str = ""
    channel: NotificationChannel | None = None
    sampling_rate: float = 100.0
    daily_cap: int | None = None
    enabled: bool = True


def _invalid(field: str, message: str) -> AutomationInvalid:
    return AutomationInvalid(field=field, message=message)


def automation_clean(data: AutomationInput) -> AutomationInput:
    data.name = data.name.strip() if isinstance(data.name, str) else ""
    if not data.name:
        raise _invalid("name", "must not be empty")
    if len(data.name) > 200:
        raise _invalid("name", "is longer than 200 characters")
    data.filter = (data.filter or "").strip()
    if not data.filter:
        raise _invalid(
            "filter", "a rule needs a filter (e.g. eval.correctness.label = 'incorrect')"
        )
    try:
        compile_filter(data.filter)
    except FilterError as exc:
        raise _invalid("filter", str(exc)) from None
    if data.action not in ActionKind.values:
        raise _invalid("action", f"must be one of {', '.join(ActionKind.values)}")
    keep = {
        ActionKind.QUEUE: "queue",
        ActionKind.DATASET: "dataset",
        ActionKind.TAG: "tag",
        ActionKind.WEBHOOK: "channel",
    }[ActionKind(data.action)]
    if data.action == ActionKind.QUEUE and data.queue is None:
        raise _invalid("queue", "choose the labeling queue")
    if data.action == ActionKind.DATASET:
        if data.dataset is None:
            raise _invalid("dataset", "choose the dataset")
        if data.dataset_source not in ("span", "trace"):
            raise _invalid("dataset_source", "must be span or trace")
        try:
            data.expected_output_from = expected_output_from_clean(data.expected_output_from) or ""
        except FieldInvalid as exc:
            raise _invalid("expected_output_from", exc.message) from None
    if data.action == ActionKind.TAG:
        data.tag = (data.tag or "").strip()
        if not data.tag or len(data.tag) > MAX_TAG_LENGTH:
            raise _invalid("tag", f"must be 1 to {MAX_TAG_LENGTH} characters")
    if data.action == ActionKind.WEBHOOK:
        if data.channel is None:
            raise _invalid("channel", "choose the notification channel")
        if data.channel.kind == ChannelKind.EMAIL:
            raise _invalid("channel", "an automation calls a webhook or Slack channel")
    for name in ("queue", "dataset", "tag", "channel"):
        if name != keep:
            setattr(data, name, "" if name == "tag" else None)
    if isinstance(data.sampling_rate, bool) or not isinstance(data.sampling_rate, int | float):
        raise _invalid("sampling_rate", "must be a number")
    if not math.isfinite(data.sampling_rate) or not 0 < data.sampling_rate <= 100:
        raise _invalid("sampling_rate", "must be more than 0 and at most 100 (percent)")
    if data.daily_cap is not None and (
        isinstance(data.daily_cap, bool)
        or not isinstance(data.daily_cap, int)
        or data.daily_cap < 1
    ):
        raise _invalid("daily_cap", "must be a whole number of at least 1, or empty")
    return data


_FIELDS: Final = (
    "name", "filter", "action", "queue", "dataset", "expected_output_from", "dataset_source",
    "tag", "channel", "sampling_rate", "daily_cap", "enabled",
)  # fmt: skip


@transaction.atomic
def automation_create(*, project: Project, data: AutomationInput) -> Automation:
    data = automation_clean(data)
    if Automation.objects.filter(project=project, name=data.name).exists():
        raise AutomationNameTaken(data.name)
    automation = Automation(project=project, **{n: getattr(data, n) for n in _FIELDS})
    save_named(automation, taken=AutomationNameTaken)
    return automation


@transaction.atomic
def automation_update(*, automation: Automation, data: AutomationInput) -> Automation:
    data = automation_clean(data)
    others = Automation.objects.filter(project=automation.project, name=data.name)
    if others.exclude(pk=automation.pk).exists():
        raise AutomationNameTaken(data.name)
    if data.enabled and not automation.enabled:
        # Switched on: it acts on results from now on, as the jobs do, not on those written
        # while it was off.
        automation.swept_through = timezone.now()
    for name in _FIELDS:
        setattr(automation, name, getattr(data, name))
    save_named(automation, taken=AutomationNameTaken)
    return automation


@transaction.atomic
def automation_delete(*, automation: Automation) -> None:
    automation.delete()


def sampled(automation_id: int, span_id: str, rate: float) -> bool:
    """Whether a span is in a rule's sample: a hash of both, so asking again answers the same."""
    if rate >= 100:
        return True
    digest = hashlib.sha256(f"{automation_id}:{span_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 10_000 < rate * 100


def automations_run(*, project_id: int, span_ids: Sequence[int]) -> int:
    """Run the project's enabled automations over the spans ``span_ids`` (pks); the number of
    (rule, span) actions taken."""
    taken = 0
    for automation_id in Automation.objects.filter(project_id=project_id, enabled=True).values_list(
        "pk", flat=True
    ):
        taken += automation_apply(automation_id=automation_id, span_ids=span_ids)
    return taken


@transaction.atomic
def automation_apply(*, automation_id: int, span_ids: Sequence[int]) -> int:
    """One rule over some spans: the matching spans it has not acted on, sampled and within
    today's cap, get the action; each is recorded so that it never gets it again."""
    automation = (
        Automation.objects.select_for_update(of=("self",))
        .select_related("project", "queue", "dataset", "channel")
        .filter(pk=automation_id, enabled=True)
        .first()
    )
    if automation is None or not span_ids:
        return 0
    try:
        matched = compile_filter(automation.filter)
    except FilterError:
        return 0  # stored when valid; the language changed under it: do nothing
    done = AutomationHit.objects.filter(automation=automation).values("span_id")
    rows = list(
        Span.objects.filter(project_id=automation.project_id, pk__in=list(span_ids))
        .filter(matched)
        .exclude(pk__in=done)
        .order_by("start_time", "pk")
        .values_list("pk", "span_id", "trace_id", "session_key", "parent_id")
    )
    rows = [r for r in rows if sampled(automation.pk, r[1], automation.sampling_rate)]
    today = timezone.now().date()
    if automation.daily_cap is not None:
        used = AutomationHit.objects.filter(automation=automation, day=today).count()
        rows = rows[: max(automation.daily_cap - used, 0)]
    if not rows:
        return 0
    AutomationHit.objects.bulk_create(
        [AutomationHit(automation=automation, span_id=r[0], day=today) for r in rows]
    )
    _act(automation, rows)
    return len(rows)


def automations_sweep(*, now: datetime | None = None) -> int:
    """Every enabled rule over the results written since it last swept, up to
    ``EVALHUB_AUTOMATIONS_SWEEP_GRACE_SECONDS`` before ``now``; the actions taken (those whose
    job was lost: the others find their spans done). A rule far behind (a long outage) is swept
    ``SWEEP_RESULTS`` results a transaction, for at most ``SWEEP_BUDGET_SECONDS`` in all: the
    next sweep goes on from its mark."""
    began = time.monotonic()
    now = now or timezone.now()
    through = now - timedelta(seconds=settings.EVALHUB_AUTOMATIONS_SWEEP_GRACE_SECONDS)
    taken = 0
    for automation_id in Automation.objects.filter(
        enabled=True, swept_through__lt=through
    ).values_list("pk", flat=True):
        while time.monotonic() - began < SWEEP_BUDGET_SECONDS:
            acted, caught_up = automation_sweep(automation_id=automation_id, through=through)
            taken += acted
            if caught_up:
                break
    return taken


@transaction.atomic
def automation_sweep(*, automation_id: int, through: datetime) -> tuple[int, bool]:
    """One rule over the spans whose results were written in ``(swept_through, through]`` —
    the first ``SWEEP_RESULTS`` of them — under the rule's row lock; the mark moves in the same
    transaction, so a sweep killed half-way is done again whole, and acts on nothing twice.
    Returns the actions taken and whether the rule is swept up to ``through``."""
    automation = (
        Automation.objects.select_for_update(of=("self",))
        .filter(pk=automation_id, enabled=True)
        .first()
    )
    if automation is None or automation.swept_through >= through:
        return 0, True
    written = Annotation.objects.filter(
        project_id=automation.project_id,
        updated_at__gt=automation.swept_through,
        updated_at__lte=through,
    )
    # Far behind: up to the SWEEP_RESULTS-th result's moment (with any written at that moment).
    last = list(
        written.order_by("updated_at").values_list("updated_at", flat=True)[
            SWEEP_RESULTS - 1 : SWEEP_RESULTS
        ]
    )
    caught_up = not last or last[0] >= through
    if not caught_up:
        through = last[0]
        written = written.filter(updated_at__lte=through)
    span_pks = set(written.filter(span__isnull=False).values_list("span_id", flat=True).distinct())
    trace_pks = written.filter(trace__isnull=False).values("trace_id")
    span_pks.update(
        Span.objects.filter(trace_id__in=trace_pks, parent_id__isnull=True).values_list(
            "pk", flat=True
        )
    )
    ordered = sorted(span_pks)
    taken = 0
    for index in range(0, len(ordered), BATCH):
        taken += automation_apply(
            automation_id=automation.pk, span_ids=ordered[index : index + BATCH]
        )
    automation.swept_through = through
    automation.save(update_fields=["swept_through"])
    return taken, caught_up


def _act(automation: Automation, rows: list[tuple[Any, ...]]) -> None:
    pks = [r[0] for r in rows]
    if automation.action == ActionKind.QUEUE:
        queue = automation.queue
        assert queue is not None
        spans = Span.objects.filter(pk__in=pks).select_related("trace")
        if queue.item_kind == TargetKind.SPAN:
            queue_items_add(
                queue=queue, span_ids=[s.span_id for s in spans], project=automation.project
            )
        elif queue.item_kind == TargetKind.TRACE:
            ids = list(dict.fromkeys(s.trace.trace_id for s in spans))
            queue_items_add(queue=queue, trace_ids=ids, project=automation.project)
        else:
            ids = list(dict.fromkeys(s.session_key for s in spans if s.session_key))
            if ids:
                queue_items_add(queue=queue, session_ids=ids, project=automation.project)
    elif automation.action == ActionKind.DATASET:
        assert automation.dataset is not None
        if automation.dataset_source == "trace":
            trace_pks = {r[2] for r in rows}
            pks = list(
                Span.objects.filter(trace_id__in=trace_pks, parent_id__isnull=True).values_list(
                    "pk", flat=True
                )
            )
        dataset_examples_add(
            dataset=automation.dataset,
            spans=pks,
            source=automation.dataset_source,  # type: ignore[arg-type]  # a CharField checked against SourceKind when saved
            expected_output_from=automation.expected_output_from or None,
        )
    elif automation.action == ActionKind.TAG:
        for span in Span.objects.select_for_update().filter(pk__in=pks):
            tags = list(span.tags) if isinstance(span.tags, list) else []
            if automation.tag not in tags:
                span.tags = [*tags, automation.tag]
                span.save(update_fields=["tags"])
    else:
        _webhook(automation, rows)


def _webhook(automation: Automation, rows: list[tuple[Any, ...]]) -> None:
    from django.urls import reverse

    from evalhub.monitors.notify import _absolute

    assert automation.channel is not None
    spans = Span.objects.filter(pk__in=[r[0] for r in rows]).select_related("trace")
    items = [
        {
            "span_id": s.span_id,
            "trace_id": s.trace.trace_id,
            "url": _absolute(
                reverse(
                    "detail:trace",
                    kwargs={"project": automation.project.name, "trace_id": s.trace.trace_id},
                )
            ),
        }
        for s in spans
    ]
    text = (
        f"[AUTOMATION] {automation.project.name} / {automation.name}: {len(items)} span(s) "
        f"matched {automation.filter}"
    )
    payload = {
        "type": "automation.matched",
        "automation": {"id": automation.pk, "name": automation.name, "filter": automation.filter},
        "project": automation.project.name,
        "spans": items,
        "text": text,
    }
    delivery = Delivery.objects.create(channel=automation.channel, payload=payload)
    transaction.on_commit(lambda: job_send(DELIVERY_SEND, delivery.pk))


__all__ = [
    "AutomationInput",
    "AutomationInvalid",
    "AutomationNameTaken",
    "automation_apply",
    "automation_clean",
    "automation_create",
    "automation_delete",
    "automation_sweep",
    "automation_update",
    "automations_run",
    "automations_sweep",
    "sampled",
]
