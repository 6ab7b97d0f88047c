"""The alignment sweeper: runs whose message was lost or whose worker died are sent again, and
each item is written into its run once — with a real Celery worker (and its beat) killed
mid-run, and the sweeper's choice on its own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from evalhub.alignment import running
from evalhub.alignment.models import AlignmentItemStatus, AlignmentRun, AlignmentStatus
from evalhub.alignment.running import alignment_run_work, alignment_runs_sweep
from evalhub.alignment.services import alignment_run_create
from evalhub.providers.services import provider_update
from tests.evalhub.alignment.factories import PEOPLE, draft
from tests.evalhub.calibration.helpers import labelled_spans
from tests.evalhub.tasks.factories import judge
from tests.evalhub.tasks.worker_process import Worker, broker_flush, wait_for
from tracing.models import Project

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def evaluator(provider):  # type: ignore[no-untyped-def]
    return judge("Correctness", provider_id=provider.pk)


def _run(evaluator, provider, items: int = 10) -> AlignmentRun:  # type: ignore[no-untyped-def]
    labelled_spans([(PEOPLE[i % 10], "correct", 1) for i in range(items)], name="Correctness")
    project = Project.objects.get(name="default")
    return alignment_run_create(
        evaluator=evaluator, project=project, draft=draft(provider_id=provider.pk)
    )


def test_the_sweeper_sends_lost_and_orphaned_runs_once(evaluator, provider, alignment_dispatched):
    lost = _run(evaluator, provider)
    alignment_dispatched.clear()
    now = timezone.now()
    # Just made: its message may still be on its way.
    assert alignment_runs_sweep(now=now) == []
    later = now + timedelta(minutes=5)
    assert alignment_runs_sweep(now=later) == [lost.pk]
    assert alignment_dispatched == [lost.pk]
    # Sent again: not swept again before a lease has passed.
    assert alignment_runs_sweep(now=later + timedelta(seconds=1)) == []

    # A running run is left alone while its worker renews the lease; once the lease lapses
    # (the worker died) it is sent again.
    lost.refresh_from_db()
    AlignmentRun.objects.filter(pk=lost.pk).update(
        status=AlignmentStatus.RUNNING, lease_expires_at=later + timedelta(seconds=30)
    )
    assert alignment_runs_sweep(now=later + timedelta(seconds=10)) == []
    assert alignment_runs_sweep(now=later + timedelta(minutes=2)) == [lost.pk]
    assert AlignmentRun.objects.get(pk=lost.pk).status == AlignmentStatus.QUEUED

    # Finished runs never are.
    alignment_run_work(run_id=lost.pk)
    assert AlignmentRun.objects.get(pk=lost.pk).status == AlignmentStatus.COMPLETED
    assert alignment_runs_sweep(now=later + timedelta(hours=1)) == []


def test_an_item_another_worker_wrote_is_not_written_twice(
    evaluator, provider, fake_openai, monkeypatch, alignment_dispatched
):
    run = _run(evaluator, provider)
    first = run.items.order_by("id").first()
    real = running._items_update

    def another_worker_first(rows):  # type: ignore[no-untyped-def]
        # A worker whose lease lapsed while it was still alive writes this item meanwhile.
        run.items.filter(pk=first.pk).update(status=AlignmentItemStatus.DONE, draft_label="theirs")
        return real(rows)

    monkeypatch.setattr(running, "_items_update", another_worker_first)
    assert alignment_run_work(run_id=run.pk) == "completed"
    run.refresh_from_db()
    assert run.done == 9  # the other worker counts its item, not this one
    assert run.items.get(pk=first.pk).draft_label == "theirs"
    assert run.items.filter(status=AlignmentItemStatus.DONE).count() == 10


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a worker process needs PostgreSQL")
def test_a_worker_killed_mid_run_is_resumed_and_every_item_judged_once(
    evaluator, provider, fake_openai, tmp_path, alignment_dispatched
):
    provider_update(provider=provider, max_concurrency=2)
    fake_openai.delay = 0.3
    run = _run(evaluator, provider, items=30)
    assert alignment_dispatched == [run.pk]  # its message is "lost": only the sweeper sends it
    broker_flush()
    workers: list[Worker] = []
    try:
        first = Worker(tmp_path).start()
        workers.append(first)
        wait_for(lambda: AlignmentRun.objects.get(pk=run.pk).done >= 6, timeout=90, worker=first)
        first.kill()
        at_kill = AlignmentRun.objects.get(pk=run.pk)
        assert at_kill.status == AlignmentStatus.RUNNING and at_kill.done < 30
        calls_at_kill = len(fake_openai.requests)
        uncommitted = calls_at_kill - at_kill.done
        second = Worker(tmp_path).start()
        workers.append(second)

        def finished() -> AlignmentRun | None:
            current = AlignmentRun.objects.get(pk=run.pk)
            return None if current.is_active else current

        done = wait_for(finished, timeout=120, worker=second)
    finally:
        for worker in workers:
            worker.stop()
        broker_flush()
    assert done.status == AlignmentStatus.COMPLETED, done.error
    assert (done.total, done.done, done.errored) == (30, 30, 0)
    assert not done.items.exclude(status=AlignmentItemStatus.DONE).exists()
    assert not done.items.filter(draft_label__isnull=True).exists()
    # Only what the dead worker had not written was asked again.
    assert 30 <= len(fake_openai.requests) <= 30 + uncommitted
