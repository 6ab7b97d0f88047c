"""Issue 19's whole loop, with services and real engine runs against the fake judge:

a task with 5 % calibration sampling fills a labeling queue, people label it, and the judge's
agreement with them appears with κ and an interval; a draft of the judge's next version is run
in the alignment workspace and shown better; it runs as a shadow over a simulated day of
traffic (people keep labelling the sampled share), where it is compared with the active version
and with people; it is promoted; a budget then stops a backfill at its limit and pauses the
task.

The truth: question ``i`` is answered incorrectly when ``i % 4 == 0``. The active judge (v1)
says "incorrect" when ``i % 3 == 0``; the draft (strict) gets it right.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from annotations.models import Annotation
from annotations.queues.labelling import queue_item_next, queue_item_submit
from annotations.queues.models import LabelingQueueItem
from annotations.queues.services import queue_create
from annotations.rubrics.services import annotation_config_create
from evalhub.alignment.selectors import alignment_comparison
from evalhub.alignment.services import alignment_run_create, alignment_run_work
from evalhub.budgets.models import BudgetUsage
from evalhub.budgets.services import budget_create
from evalhub.calibration.sampling import calibration_sampling_set
from evalhub.calibration.selectors import evaluator_calibration
from evalhub.shadow.models import ShadowResult
from evalhub.shadow.selectors import shadow_comparison
from evalhub.shadow.services import shadow_promote, shadow_start
from evalhub.tasks.backfill import run_backfill_create
from evalhub.tasks.continuous import continuous_run_plan
from evalhub.tasks.engine import run_work
from evalhub.tasks.models import RunStatus, TaskRun
from tests import factories
from tests.evalhub.fake_openai import completion
from tests.evalhub.shadow.helpers import CANDIDATE, STRICT
from tests.evalhub.tasks.factories import judge, make_task

pytestmark = pytest.mark.django_db(transaction=True)

DAY = factories.BASE_TIME + timedelta(days=3)


def truth(i: int) -> str:
    return "incorrect" if i % 4 == 0 else "correct"


def reply(body: dict[str, Any]) -> dict[str, Any]:
    """The fake judge: v1's rule, or the strict draft's (the truth)."""
    text = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    i = int(re.search(r"question (\d+)", text).group(1))  # type: ignore[union-attr]
    label = truth(i) if STRICT in text else ("incorrect" if i % 3 == 0 else "correct")
    return completion(body, verdict={"label": label, "explanation": "by rule"}, tokens=(40, 10))


def _traffic(numbers: Sequence[int], start, step: timedelta) -> None:  # type: ignore[no-untyped-def]
    for n, i in enumerate(numbers):
        factories.trace(start=start + n * step, input_value=f"question {i}")


def _continuous(task, fast_retry) -> TaskRun:  # type: ignore[no-untyped-def]
    run = continuous_run_plan(task_id=task.pk, now=timezone.now() + timedelta(seconds=1))
    assert run is not None
    assert run_work(run_id=run.pk, worker="loop", concurrency=8, retry=fast_retry) == "finished"
    run.refresh_from_db()
    return run


def _label_queue(queue, person) -> int:  # type: ignore[no-untyped-def]
    """People label every item of the queue with the truth, through the queue's services."""
    labelled = 0
    while (item := queue_item_next(queue=queue, user=person)) is not None:
        i = int(re.search(r"question (\d+)", item.span.input_value).group(1))  # type: ignore[union-attr]
        queue_item_submit(item=item, user=person, answers={"correctness": truth(i)})
        labelled += 1
    return labelled


def test_the_whole_loop(provider, fake_openai, fast_retry, monkeypatch):
    monkeypatch.setattr("evalhub.tasks.runs.run_dispatch", lambda run_id: None)
    alignment_sent: list[int] = []
    monkeypatch.setattr("evalhub.alignment.services.alignment_dispatch", alignment_sent.append)
    fake_openai.reply = reply
    project = factories.project()
    person = get_user_model().objects.create_user("rita")
    rubric = annotation_config_create(
        name="correctness",
        kind="CATEGORICAL",
        values=[{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
    )
    queue = queue_create(name="calibration", item_kind="SPAN", configs=[rubric])
    evaluator = judge("correctness", provider_id=provider.pk)
    task = make_task(evaluator, filter="span_kind = 'LLM'")

    # 1. 5 % calibration sampling fills the queue; people label it; agreement appears.
    calibration_sampling_set(task=task, queue=queue, rate_percent=5)
    _traffic(range(0, 240), factories.BASE_TIME, timedelta(minutes=10))
    _continuous(task, fast_retry)
    sampled = LabelingQueueItem.objects.filter(queue=queue).count()
    assert 12 <= sampled <= 16  # 5 % of 240, stratified by the judge's label (rounded up)
    assert _label_queue(queue, person) == sampled
    calibration = evaluator_calibration(project=project, name="correctness")
    (v1,) = calibration.versions
    assert v1.version == 1 and v1.overall.pairs == sampled
    assert v1.overall.kappa is not None and v1.overall.kappa_ci is not None
    assert v1.overall.kappa_ci.low <= v1.overall.kappa <= v1.overall.kappa_ci.high
    assert v1.overall.accuracy < 1

    # 2. A draft of the next version, run in the alignment workspace, is shown better.
    draft = {**CANDIDATE, "provider_id": provider.pk}
    alignment = alignment_run_create(evaluator=evaluator, project=project, draft=draft)
    assert alignment_sent == [alignment.pk]
    assert alignment_run_work(run_id=alignment.pk, concurrency=4) == "completed"
    aligned = alignment_comparison(run=alignment)
    assert aligned.both == sampled and aligned.better is True
    assert aligned.draft.accuracy == 1.0

    # 3. It runs as a shadow over a day of traffic: 10 requests an hour, evaluated hourly.
    shadow = shadow_start(task=task, evaluator=evaluator, alignment_run=alignment)
    assert shadow.candidate == alignment.draft
    questions = random.Random(19).sample(range(1000, 1900), 240)  # the day's, in no order
    for hour in range(24):
        batch = questions[hour * 10 : hour * 10 + 10]
        _traffic(batch, DAY + timedelta(hours=hour), timedelta(minutes=5))
        run = _continuous(task, fast_retry)
        assert run.succeeded == 10
    day_labelled = _label_queue(queue, person)
    assert day_labelled >= 12  # the day's sampled share, labelled by people too
    assert ShadowResult.objects.filter(shadow=shadow).count() == 240
    # The day's results are v1's only, wherever results are read.
    day = Annotation.objects.filter(
        name="correctness", annotator_kind="LLM", span__start_time__gte=DAY
    )
    assert day.count() == 240 and {a.metadata["version"] for a in day} == {1}
    comparison = shadow_comparison(shadow=shadow, bucket="hour")
    assert comparison.judged == 240 and len(comparison.buckets) == 24
    assert all(
        sum(b.candidate.values()) == sum(b.active.values()) == 10 for b in comparison.buckets
    )
    assert comparison.between.pairs == 240 and comparison.between.kappa is not None
    assert comparison.with_people == day_labelled
    assert comparison.candidate.accuracy == 1.0
    assert comparison.active.accuracy < 1 and comparison.better is True
    assert comparison.flips["fixed"] > 0 and comparison.flips["broken"] == 0
    assert all(item.result.trace_id for item in comparison.flipped)

    # 4. It is promoted: the evaluator's v2, which the task's next run evaluates with.
    version = shadow_promote(shadow=shadow)
    assert version.number == 2 and version.config["template"] == CANDIDATE["template"]
    _traffic(range(2000, 2010), DAY + timedelta(days=1), timedelta(minutes=1))
    _continuous(task, fast_retry)
    after = Annotation.objects.filter(
        name="correctness", span__start_time__gte=DAY + timedelta(days=1)
    )
    after = after.filter(annotator_kind="LLM")
    assert {a.metadata["version"] for a in after} == {2}
    assert {a.label for a in after} == {truth(i) for i in range(2000, 2010)}
    assert ShadowResult.objects.filter(shadow=shadow).count() == 240  # nothing more
    assert day.count() == 240 and {a.metadata["version"] for a in day} == {1}  # past stays v1

    # 5. A budget stops a backfill at its limit, and the task pauses with the reason. The
    # backfill covers traffic the task has not evaluated (the task stands paused meanwhile).
    task.refresh_from_db()
    task.status = "paused"
    task.save()
    _traffic(range(3000, 3030), DAY + timedelta(days=2), timedelta(minutes=1))
    task.status = "active"
    task.save()
    budget = budget_create(scope="task", task=task, period="day", unit="tokens", limit=50 * 6)
    backfill = run_backfill_create(
        task=task, start=DAY + timedelta(days=2), end=DAY + timedelta(days=2, hours=1)
    )
    calls = len(fake_openai.requests)
    assert run_work(run_id=backfill.pk, concurrency=1, retry=fast_retry) == "failed"
    backfill.refresh_from_db()
    task.refresh_from_db()
    assert backfill.status == RunStatus.FAILED and "budget" in backfill.error
    assert task.status == "paused" and "budget" in task.paused_reason
    assert len(fake_openai.requests) - calls == 6  # one call at a time: exactly at the limit
    assert BudgetUsage.objects.get(budget=budget).spent == 300
    assert backfill.succeeded == 6 < backfill.sampled == 30
