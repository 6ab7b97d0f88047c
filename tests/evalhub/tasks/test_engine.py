"""Online tasks end to end in one process: planning (continuous, backfill, manual), the
engine (threads, counts, failures, resume), sampling."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.models import Annotation
from evalhub.tasks.backfill import run_backfill_create
from evalhub.tasks.continuous import continuous_run_plan
from evalhub.tasks.engine import run_work
from evalhub.tasks.models import (
    ItemStatus,
    RunKind,
    RunStatus,
    TaskRunItem,
    TaskRunShard,
    TaskStatus,
)
from evalhub.tasks.runs import RunRejected, run_cancel, run_manual_create, runs_stale
from evalhub.tasks.sampling import in_sample, sample_point
from evalhub.tasks.services import task_pause
from tests import factories
from tests.evalhub.fake_openai import Behavior
from tests.evalhub.tasks.factories import code_check, judge, make_task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_dispatch(monkeypatch):
    """Runs are worked here by calling ``run_work``; nothing goes to a broker."""
    sent: list[int] = []
    monkeypatch.setattr("evalhub.tasks.runs.run_dispatch", sent.append)
    return sent


def _later(seconds: float = 1):
    return timezone.now() + timedelta(seconds=seconds)


def _work(run, fast_retry, **kwargs):
    return run_work(run_id=run.pk, worker="test", retry=fast_retry, **kwargs)


# --- sampling ---------------------------------------------------------------------------------


def test_sampling_is_deterministic_and_nested():
    keys = [f"{i:016x}" for i in range(5000)]
    ten = {k for k in keys if in_sample(k, 10)}
    twenty = {k for k in keys if in_sample(k, 20)}
    assert ten <= twenty
    assert 400 < len(ten) < 600 and 900 < len(twenty) < 1100
    assert ten == {k for k in keys if in_sample(k, 10)}
    assert all(0 <= sample_point(k) < 1 for k in keys[:100])
    assert all(in_sample(k, 100) for k in keys[:10]) and not any(in_sample(k, 0) for k in keys)


# --- continuous -------------------------------------------------------------------------------


def test_continuous_run_evaluates_new_spans_once(provider, fake_openai, fast_retry):
    fake_openai.answer("correct", "fine")
    task = make_task(judge(), filter="span_kind = 'LLM'")
    spans = factories.trace() + factories.trace()
    run = continuous_run_plan(task_id=task.pk, now=_later())
    assert run is not None and run.kind == RunKind.CONTINUOUS
    assert (run.matched, run.sampled) == (2, 2)
    assert _work(run, fast_retry) == "finished"
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert (run.evaluated, run.succeeded, run.errored, run.skipped) == (2, 2, 0, 0)
    assert run.prompt_tokens > 0 and run.completion_tokens > 0
    llm_ids = {s.span_id for s in spans if s.span_kind == "LLM"}
    results = Annotation.objects.filter(name="correctness")
    assert {a.span.span_id for a in results} == llm_ids
    assert {(a.label, a.score, a.annotator_kind, a.source) for a in results} == {
        ("correct", 1.0, "LLM", "TASK")
    }
    assert all(a.metadata["run_id"] == run.pk and a.metadata["task_id"] == task.pk for a in results)
    # Nothing new: no run. The same spans never come back.
    assert continuous_run_plan(task_id=task.pk, now=_later(2)) is None
    assert TaskRunItem.objects.filter(dedupe_task=task).count() == 2


def test_a_late_span_is_seen_when_it_arrives(provider, fake_openai, fast_retry):
    task = make_task(judge())
    factories.trace()
    first = continuous_run_plan(task_id=task.pk, now=_later())
    _work(first, fast_retry)
    # A span that started an hour ago arrives now, in a new trace.
    late = factories.ingest(
        [factories.span_record(start=timezone.now() - timedelta(hours=1), name="late")]
    )[0]
    second = continuous_run_plan(task_id=task.pk, now=_later(2))
    assert second is not None
    assert list(second.items.values_list("target_key", flat=True)) == [late.span_id]
    _work(second, fast_retry)
    assert Annotation.objects.filter(span=late, name="correctness").count() == 1


def test_one_continuous_run_at_a_time(provider, fast_retry):
    task = make_task(judge())
    factories.trace()
    run = continuous_run_plan(task_id=task.pk, now=_later())
    factories.trace()
    assert continuous_run_plan(task_id=task.pk, now=_later(2)) is None  # the first is queued
    _work(run, fast_retry)
    follow = continuous_run_plan(task_id=task.pk, now=_later(3))
    assert follow is not None and follow.sampled == 3


def test_trace_granularity_waits_for_the_quiet_period(provider, fake_openai, fast_retry):
    task = make_task(judge(), granularity="trace")  # 60 s quiet
    spans = factories.trace()
    assert continuous_run_plan(task_id=task.pk, now=_later()) is None
    run = continuous_run_plan(task_id=task.pk, now=_later(61))
    assert run is not None and run.sampled == 1
    _work(run, fast_retry)
    annotation = Annotation.objects.get(name="correctness")
    assert annotation.target_kind == "TRACE" and annotation.trace_id == spans[0].trace_id
    # The judge saw the root span's input and output.
    assert "What is the refund policy?" in fake_openai.bodies[-1]["messages"][-1]["content"]


def test_a_trace_still_receiving_spans_is_not_complete(provider, fast_retry):
    task = make_task(judge(), granularity="trace", quiet_seconds=30)
    spans = factories.trace()
    now = _later(31)
    # Another span of the same trace arrives "now" in the plan's clock: the trace is open.
    factories.ingest(
        [factories.span_record(trace_id=spans[0].trace.trace_id, parent_id=spans[0].span_id)]
    )
    from tracing.models import Span

    Span.objects.filter(trace=spans[0].trace, name="span").update(
        ingested_at=now - timedelta(seconds=5)
    )
    assert continuous_run_plan(task_id=task.pk, now=now) is None
    assert continuous_run_plan(task_id=task.pk, now=now + timedelta(seconds=40)) is not None


def test_session_granularity(provider, fake_openai, fast_retry):
    task = make_task(judge(), granularity="session", quiet_seconds=0)
    factories.trace(session_id="s-1")
    factories.trace(session_id="s-1", start=factories.BASE_TIME + timedelta(minutes=1))
    factories.trace(session_id="s-2")
    run = continuous_run_plan(task_id=task.pk, now=_later())
    assert run.sampled == 2
    _work(run, fast_retry)
    assert set(
        Annotation.objects.filter(name="correctness").values_list(
            "target_kind", "session__session_id"
        )
    ) == {("SESSION", "s-1"), ("SESSION", "s-2")}


def test_sampling_and_filter_narrow_the_run(provider, fast_retry):
    task = make_task(code_check(), sampling_rate=50, filter="span_kind = 'LLM'")
    spans = [s for _ in range(40) for s in factories.trace() if s.span_kind == "LLM"]
    run = continuous_run_plan(task_id=task.pk, now=_later())
    expected = {s.span_id for s in spans if in_sample(s.span_id, 50)}
    assert run.matched == 40
    assert set(run.items.values_list("target_key", flat=True)) == expected


# --- failures ---------------------------------------------------------------------------------


def test_429_then_success_is_retried(provider, fake_openai, fast_retry):
    fake_openai.enqueue(Behavior.status(429, retry_after="0"), Behavior.status(503))
    task = make_task(judge(), filter="span_kind = 'LLM'")
    factories.trace()
    run = continuous_run_plan(task_id=task.pk, now=_later())
    _work(run, fast_retry, concurrency=1)
    run.refresh_from_db()
    assert (run.status, run.succeeded, run.errored) == (RunStatus.COMPLETED, 1, 0)


def test_an_unparseable_answer_is_an_item_error_and_the_run_goes_on(
    provider, fake_openai, fast_retry
):
    fake_openai.enqueue(Behavior.garbage())
    task = make_task(judge(), filter="span_kind = 'LLM'")
    factories.trace()
    factories.trace()
    run = continuous_run_plan(task_id=task.pk, now=_later())
    _work(run, fast_retry, concurrency=1)
    run.refresh_from_db()
    assert (run.status, run.succeeded, run.errored) == (RunStatus.COMPLETED, 1, 1)
    error = run.logs.get(level="error")
    assert error.evaluator == "correctness" and error.target_key
    assert set(run.items.values_list("status", flat=True)) == {ItemStatus.DONE, ItemStatus.ERROR}


def test_a_missing_variable_skips_the_item_and_is_logged_once_with_a_count(
    provider, fake_openai, fast_retry
):
    """Error traces have no output: their items are skipped with the reason, counted under
    skipped, and the log has one line for the reason with how many items it skipped."""
    fake_openai.answer("correct", "fine")
    task = make_task(judge(), filter="span_kind = 'LLM'")
    fine = [factories.trace()[2] for _ in range(2)]
    failed = []
    for _ in range(3):
        llm = factories.span_record(kind="LLM", name="llm", status_code="ERROR", output_value=None)
        failed += factories.ingest([llm])
    run = continuous_run_plan(task_id=task.pk, now=_later())
    assert _work(run, fast_retry) == "finished"
    run.refresh_from_db()
    assert (run.sampled, run.evaluated, run.succeeded, run.errored, run.skipped) == (5, 2, 2, 0, 3)
    assert run.done == 5 and run.status == RunStatus.COMPLETED
    assert len(fake_openai.requests) == 2  # no judge call for a skipped item
    skipped = run.items.filter(status=ItemStatus.SKIPPED)
    assert {i.target_key for i in skipped} == {s.span_id for s in failed}
    reason = "missing variable {output}: output has no value"
    assert {i.reason for i in skipped} == {reason}
    assert all(i.results[0]["skipped"] == reason for i in skipped)
    (line,) = run.logs.filter(level="warning")
    assert (line.message, line.count, line.evaluator) == (f"skipped: {reason}", 3, "correctness")
    assert not run.logs.filter(level="error").exists()
    assert Annotation.objects.filter(name="correctness").count() == len(fine)

    # A later run adds to the same line.
    more = factories.span_record(kind="LLM", name="llm", status_code="ERROR", output_value=None)
    factories.ingest([more])
    again = run_manual_create(
        project=task.project, granularity="span", keys=[more.span_id], task=task
    )
    _work(again, fast_retry)
    assert again.logs.get(level="warning").count == 1


def test_an_evaluator_that_cannot_fill_its_mapping_leaves_the_others_to_run(
    provider, fake_openai, fast_retry
):
    fake_openai.answer("correct", "fine")
    needs_context = judge(
        "grounded",
        template="Context: {context}\nAnswer: {output}",
        variables={"context": "metadata.context"},
    )
    task = make_task(needs_context, code_check(), filter="span_kind = 'LLM'")
    factories.trace()
    run = continuous_run_plan(task_id=task.pk, now=_later())
    _work(run, fast_retry)
    run.refresh_from_db()
    assert (run.evaluated, run.succeeded, run.skipped, run.done) == (1, 1, 0, 1)
    (item,) = run.items.all()
    assert item.status == ItemStatus.DONE
    grounded, refund = item.results
    assert grounded == {
        "evaluator": "grounded",
        "skipped": "missing variable {context}: metadata.context has no value",
    }
    assert refund["evaluator"] == "mentions_refund" and refund["label"] is not None
    assert fake_openai.requests == []


def test_a_bad_key_fails_the_run_and_pauses_the_task(provider, fake_openai, fast_retry):
    fake_openai.check_key = True
    from evalhub.providers.services import provider_update

    provider_update(provider=provider, api_key="sk-wrong-key-000000")
    task = make_task(judge())
    factories.trace()
    run = continuous_run_plan(task_id=task.pk, now=_later())
    assert _work(run, fast_retry) == "failed"
    run.refresh_from_db()
    task.refresh_from_db()
    assert run.status == RunStatus.FAILED and "401" in run.error
    assert task.status == TaskStatus.PAUSED and "401" in task.paused_reason
    assert len(fake_openai.requests) <= 3  # stopped at once, no retries of a 401
    # Nothing was lost: once the key is fixed and the task resumed, the same spans are listed.
    assert run.items.filter(status=ItemStatus.PENDING).count() == 0
    from evalhub.tasks.services import task_resume
    from tests.evalhub.fake_openai import VALID_KEY

    provider_update(provider=provider, api_key=VALID_KEY)
    task_resume(task=task)
    again = continuous_run_plan(task_id=task.pk, now=_later(2))
    # (the retriever span has no output: its missing variable was an item error, done with)
    assert again is not None and again.sampled == 2
    _work(again, fast_retry)
    again.refresh_from_db()
    assert again.succeeded == 2


def test_an_unknown_model_fails_the_run(provider, fake_openai, fast_retry):
    task = make_task(judge(model="no-such-model"))
    factories.trace()
    run = continuous_run_plan(task_id=task.pk, now=_later())
    assert _work(run, fast_retry) == "failed"
    run.refresh_from_db()
    assert "404" in run.error


# --- resume, cancel, stale --------------------------------------------------------------------


def test_a_run_resumes_after_its_worker_vanished(provider, fake_openai, fast_retry):
    task = make_task(judge(), filter="span_kind = 'LLM'")
    for _ in range(6):
        factories.trace()
    run = continuous_run_plan(task_id=task.pk, now=_later())
    # Worker A does part of the run, then "dies" holding the lease.
    fake_openai.delay = 0.1
    outcome = run_work(
        run_id=run.pk, worker="A", retry=fast_retry, concurrency=1, slice_seconds=0.25
    )
    assert outcome == "yielded"
    run.refresh_from_db()
    done_before = run.evaluated
    assert 0 < done_before < 6
    shard = TaskRunShard.objects.get(run=run)  # six items: one shard
    shard.lease_owner, shard.lease_expires_at = "A", timezone.now() + timedelta(seconds=30)
    shard.save()
    assert run_work(run_id=run.pk, worker="B", retry=fast_retry) == "busy"
    assert run.pk not in runs_stale()
    shard.lease_expires_at = timezone.now() - timedelta(seconds=1)
    shard.save()
    assert run.pk in runs_stale()
    assert run_work(run_id=run.pk, worker="B", retry=fast_retry) == "finished"
    run.refresh_from_db()
    assert (run.status, run.evaluated, run.succeeded) == (RunStatus.COMPLETED, 6, 6)
    assert Annotation.objects.filter(name="correctness").count() == 6
    assert len(fake_openai.requests) == 6  # nothing evaluated twice
    assert run.logs.filter(message__startswith="resumed on B").exists()


def test_cancel_stops_a_run(provider, fast_retry):
    task = make_task(judge())
    factories.trace()
    run = continuous_run_plan(task_id=task.pk, now=_later())
    run_cancel(run=run)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.items.count() == 0
    assert run_work(run_id=run.pk, worker="A") == "gone"
    with pytest.raises(RunRejected) as excinfo:
        run_cancel(run=run)
    assert excinfo.value.code == "not_active"


# --- backfill and manual ----------------------------------------------------------------------


def test_backfill_over_a_range_with_a_cap(provider, fake_openai, fast_retry):
    task = make_task(code_check(), filter="span_kind = 'LLM'", continuous=False)
    base = timezone.now() - timedelta(days=40)  # older than any retention window
    for day in range(10):
        factories.trace(start=base + timedelta(days=day))
    run = run_backfill_create(
        task=task, start=base - timedelta(hours=1), end=base + timedelta(days=8), max_items=5
    )
    assert run.status == RunStatus.QUEUED and not run.planned
    assert _work(run, fast_retry) == "finished"
    run.refresh_from_db()
    assert (run.matched, run.sampled, run.succeeded) == (8, 5, 5)
    # Newest first: the five latest days of the range.
    assert run.items_start >= base + timedelta(days=3)
    assert run.items_end < base + timedelta(days=8)
    # A second backfill over the same range evaluates only the rest.
    again = run_backfill_create(
        task=task, start=base - timedelta(hours=1), end=base + timedelta(days=8)
    )
    _work(again, fast_retry)
    again.refresh_from_db()
    # All eight match the range; the five evaluated before are left out, and the log says so.
    assert (again.matched, again.sampled) == (8, 3)
    assert again.logs.filter(
        message="8 items match; 3 in the sample and the cap; "
        "5 already evaluated by this task were left out"
    ).exists()
    assert Annotation.objects.filter(name="mentions_refund").count() == 8


def test_backfill_rejections(provider):
    task = make_task(judge())
    now = timezone.now()
    with pytest.raises(RunRejected) as excinfo:
        run_backfill_create(task=task, start=now + timedelta(days=1))
    assert excinfo.value.code == "range_in_future"
    with pytest.raises(RunRejected) as excinfo:
        run_backfill_create(task=task, start=now, end=now - timedelta(days=1))
    assert excinfo.value.code == "invalid_range"
    with pytest.raises(RunRejected) as excinfo:
        run_backfill_create(task=task, start=now - timedelta(days=1), max_items=0)
    assert excinfo.value.code == "invalid_max_spans"
    task_pause(task=task)
    with pytest.raises(RunRejected) as excinfo:
        run_backfill_create(task=task, start=now - timedelta(days=1))
    assert excinfo.value.code == "task_paused"


def test_backfill_with_a_missing_provider_is_rejected(provider):
    task = make_task(judge())
    provider.delete()
    with pytest.raises(RunRejected) as excinfo:
        run_backfill_create(task=task, start=timezone.now() - timedelta(days=1))
    assert excinfo.value.code == "provider_missing"


def test_manual_run_over_exactly_the_selection(provider, fake_openai, fast_retry):
    evaluator = judge()
    spans = factories.trace() + factories.trace()
    chosen = [spans[0].span_id, spans[5].span_id]
    run = run_manual_create(
        project=spans[0].project, granularity="span", keys=chosen, evaluator=evaluator
    )
    assert run.task is None and run.sampled == 2
    _work(run, fast_retry)
    assert set(
        Annotation.objects.filter(name="correctness").values_list("span__span_id", flat=True)
    ) == set(chosen)
    # Again: a manual run re-evaluates.
    again = run_manual_create(
        project=spans[0].project, granularity="span", keys=chosen, evaluator=evaluator
    )
    _work(again, fast_retry)
    assert Annotation.objects.filter(name="correctness").count() == 2
    with pytest.raises(RunRejected) as excinfo:
        run_manual_create(
            project=spans[0].project, granularity="span", keys=["nope"], evaluator=evaluator
        )
    assert excinfo.value.code == "not_found" and "nope" in excinfo.value.message


def test_a_deleted_span_is_skipped(provider, fast_retry):
    task = make_task(judge(), filter="span_kind = 'LLM'")
    spans = factories.trace()
    run = continuous_run_plan(task_id=task.pk, now=_later())
    from tracing.store.services import spans_delete

    spans_delete(span_ids=[s.span_id for s in spans if s.span_kind == "LLM"])
    _work(run, fast_retry)
    run.refresh_from_db()
    assert (run.status, run.skipped, run.evaluated) == (RunStatus.COMPLETED, 1, 0)


# --- shards -----------------------------------------------------------------------------------


def _spans_run(task, traces: int):
    for _ in range(traces):
        factories.trace()
    return continuous_run_plan(task_id=task.pk, now=_later())


def test_a_run_is_cut_into_shards_that_one_worker_works_through(
    provider, fake_openai, fast_retry, settings
):
    settings.EVALHUB_RUN_SHARD_ITEMS = 2
    task = make_task(judge(), filter="span_kind = 'LLM'")
    run = _spans_run(task, 6)
    assert _work(run, fast_retry) == "finished"
    run.refresh_from_db()
    assert (run.status, run.evaluated, run.succeeded, run.finished) == (
        RunStatus.COMPLETED, 6, 6, 6
    )  # fmt: skip
    shards = list(run.shards.all())
    assert [(s.number, s.size) for s in shards] == [(1, 2), (2, 2), (3, 2)]
    assert all(s.finished_at is not None and not s.lease_owner for s in shards)
    # Contiguous chunks of the item list, covering it exactly.
    ids = list(run.items.order_by("id").values_list("id", flat=True))
    assert [(s.first_item, s.last_item) for s in shards] == [
        (ids[0], ids[1]), (ids[2], ids[3]), (ids[4], ids[5])
    ]  # fmt: skip
    assert Annotation.objects.filter(name="correctness").count() == 6
    assert len(fake_openai.requests) == 6
    assert run.logs.filter(message="6 items in 3 shards of up to 2").exists()
    assert run.logs.filter(message__startswith="completed: 6 succeeded").count() == 1


def test_workers_lease_shards_independently_and_take_over_a_lost_one(
    provider, fake_openai, fast_retry, settings, django_capture_on_commit_callbacks, _no_dispatch
):
    from evalhub.tasks.engine import _claim, _Engine

    settings.EVALHUB_RUN_SHARD_ITEMS = 3
    settings.EVALHUB_RUN_MAX_SHARDS = 2
    task = make_task(judge(), filter="span_kind = 'LLM'")
    run = _spans_run(task, 9)
    with django_capture_on_commit_callbacks(execute=True):
        _, shard_a = _claim(run.pk, "A")
    # A free shard is left: one more message for the run, for the next free worker.
    assert _no_dispatch == [run.pk]
    with django_capture_on_commit_callbacks(execute=True):
        _, shard_b = _claim(run.pk, "B")
    assert (shard_a.number, shard_b.number) == (1, 2)
    assert _no_dispatch == [run.pk]  # the run has its share of workers: no more messages
    # Two shards in flight is the run's share: shard 3 waits though it is free.
    assert _claim(run.pk, "C") == "busy"
    assert run.pk not in runs_stale()
    # A vanishes: once its lease has expired, the sweeper dispatches and C takes shard 1 over.
    TaskRunShard.objects.filter(pk=shard_a.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert run.pk in runs_stale()
    _, shard_c = _claim(run.pk, "C")
    assert shard_c.number == 1
    assert run.logs.filter(
        message="resumed on C (shard 1): the lease of A expired", level="warning"
    ).exists()
    run.refresh_from_db()
    # A comes back: it evaluates its three items, but may not write them.
    engine_a = _Engine(run, shard_a, "A", limiter=None, retry=fast_retry, concurrency=2)
    assert engine_a.go(time.monotonic() + 30) == "lost"
    assert not Annotation.objects.exists()
    engine_b = _Engine(run, shard_b, "B", limiter=None, retry=fast_retry, concurrency=2)
    assert engine_b.go(time.monotonic() + 30) == "shard done"
    engine_c = _Engine(run, shard_c, "C", limiter=None, retry=fast_retry, concurrency=2)
    assert engine_c.go(time.monotonic() + 30) == "shard done"
    assert _work(run, fast_retry) == "finished"  # the last shard
    run.refresh_from_db()
    assert (run.status, run.evaluated, run.succeeded, run.finished) == (
        RunStatus.COMPLETED, 9, 9, 9
    )  # fmt: skip
    # Every item once, written by the worker that held its shard.
    assert Annotation.objects.filter(name="correctness").count() == 9
    workers = dict(run.items.values_list("id", "worker"))
    by_shard = {
        s.number: {workers[i] for i in workers if s.first_item <= i <= s.last_item}
        for s in run.shards.all()
    }
    assert by_shard == {1: {"C"}, 2: {"B"}, 3: {"test"}}
    # Judge calls: the items, plus A's three it could not write.
    assert len(fake_openai.requests) == 9 + 3


def test_cancel_stops_every_shard(provider, fake_openai, fast_retry, settings):
    from evalhub.tasks.engine import _claim, _Engine

    settings.EVALHUB_RUN_SHARD_ITEMS = 2
    task = make_task(judge(), filter="span_kind = 'LLM'")
    run = _spans_run(task, 4)
    _, shard_a = _claim(run.pk, "A")
    _, shard_b = _claim(run.pk, "B")
    run.refresh_from_db()
    engines = [
        _Engine(run, shard, worker, limiter=None, retry=fast_retry, concurrency=2)
        for shard, worker in ((shard_a, "A"), (shard_b, "B"))
    ]
    run_cancel(run=run)
    assert [engine.go(time.monotonic() + 30) for engine in engines] == ["cancelled"] * 2
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.evaluated == 0
    assert not run.shards.filter(finished_at__isnull=True).exists()
    assert not Annotation.objects.exists()
    assert run_work(run_id=run.pk, worker="C") == "gone"


def test_runs_share_the_workers_a_shard_at_a_time(provider, fake_openai, fast_retry, settings):
    settings.EVALHUB_RUN_SHARD_ITEMS = 2
    check = code_check()
    big = _spans_run(make_task(check, filter="span_kind = 'LLM'", name="backfill"), 6)
    live = continuous_run_plan(
        task_id=make_task(judge(), filter="span_kind = 'LLM'", name="live").pk, now=_later(2)
    )
    assert live.status == RunStatus.QUEUED and live.sampled == 6
    # While the other run waits, a worker that finished a shard sends its run to the back of
    # the queue: the two runs take turns, a shard each.
    turns = []
    while big.is_active or live.is_active:
        for run in (big, live):
            if run.is_active:
                turns.append((run.task.name, _work(run, fast_retry)))
                run.refresh_from_db()
    assert turns == [
        ("backfill", "yielded"), ("live", "yielded"),
        ("backfill", "yielded"), ("live", "yielded"),
        ("backfill", "finished"), ("live", "finished"),
    ]  # fmt: skip
    assert (big.succeeded, live.succeeded) == (6, 6)
    # Alone, a worker goes from shard to shard.
    alone = _spans_run(make_task(check, filter="span_kind = 'LLM'", name="alone"), 4)
    assert _work(alone, fast_retry) == "finished"
