"""Online tasks with a real Celery worker process and beat, Redis, PostgreSQL and the fake
judge: continuous runs on spans sent through OTLP, backfills, retries, a bad key, a worker
killed mid-run, trace and session granularity."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from annotations.models import Annotation
from evalhub.providers.services import provider_update
from evalhub.tasks.backfill import run_backfill_create
from evalhub.tasks.models import RunKind, RunStatus, Task, TaskRun, TaskStatus
from tests import factories
from tests.evalhub.fake_openai import Behavior
from tests.evalhub.tasks.factories import code_check, judge, make_task
from tests.evalhub.tasks.worker_process import Worker, broker_flush, wait_for
from tests.tracing.ingest.otlp_factories import otlp_json, pb_request, pb_span

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="a worker process needs PostgreSQL"
    ),
]


@pytest.fixture
def worker(tmp_path):
    broker_flush()
    started: list[Worker] = []

    def start(**env: str) -> Worker:
        process = Worker(tmp_path, **env).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
    broker_flush()


def _send(client, auth, *, traces: int, start=None, project="default", session=None, kind="LLM"):
    """``traces`` traces of a root and an LLM child, through OTLP/HTTP JSON."""
    start = start or timezone.now()
    spans = []
    for number in range(traces):
        trace_id = bytes.fromhex(factories.next_hex(32))
        root_id = bytes.fromhex(factories.next_hex(16))
        begin = int((start + timedelta(seconds=number)).timestamp() * 1e9)
        common = {"session.id": session} if session else {}
        spans.append(
            pb_span(
                trace_id=trace_id, span_id=root_id, name="agent", start_ns=begin,
                end_ns=begin + 900_000_000,
                attributes={"openinference.span.kind": "AGENT", "input.value": f"q{number}",
                            "output.value": f"refund a{number}", **common},
            )
        )  # fmt: skip
        spans.append(
            pb_span(
                trace_id=trace_id, span_id=bytes.fromhex(factories.next_hex(16)),
                parent_id=root_id, name="llm", start_ns=begin + 100_000_000,
                end_ns=begin + 800_000_000,
                attributes={"openinference.span.kind": kind, "input.value": f"q{number}",
                            "output.value": f"a{number}", **common},
            )
        )  # fmt: skip
    body = json.dumps(
        otlp_json(pb_request(*spans, resource={"openinference.project.name": project}))
    )
    response = client.post("/v1/traces", data=body, content_type="application/json", headers=auth)
    assert response.status_code == 200, response.content


def _run_of(task: Task, kind: str = RunKind.CONTINUOUS) -> TaskRun | None:
    return TaskRun.objects.filter(task=task, kind=kind).order_by("-id").first()


def _finished(task: Task, kind: str = RunKind.CONTINUOUS):
    def check() -> TaskRun | None:
        run = _run_of(task, kind)
        return run if run is not None and not run.is_active else None

    return check


def test_continuous_task_scores_spans_sent_through_otlp(
    client, auth, provider, worker, fake_openai, django_user_model
):
    fake_openai.answer("correct", "ok")
    evaluator = judge()
    factories.project("default")
    # The task is created through the page's form, as a user would.
    browser = Client()
    browser.force_login(django_user_model.objects.create_user("lead", is_staff=True))
    response = browser.post(
        "/tasks/new/",
        {
            "name": "quality", "project": "default", "evaluators": [str(evaluator.pk)],
            "granularity": "span", "filter": "span_kind = 'LLM'", "sampling_rate": "100",
            "continuous": "on", "interval_seconds": "5", "quiet_seconds": "", "provider": "",
            "model": "", "backfill-start": "", "backfill-end": "", "backfill-max_items": "10000",
        },
    )  # fmt: skip
    task = Task.objects.get(name="quality")
    assert response.status_code == 302 and response["Location"] == f"/tasks/{task.pk}/"
    process = worker()
    _send(client, auth, traces=4)
    run = wait_for(_finished(task), timeout=60, worker=process)
    assert run.status == RunStatus.COMPLETED, run.error
    assert (run.matched, run.sampled, run.evaluated, run.succeeded, run.errored) == (4, 4, 4, 4, 0)
    results = Annotation.objects.filter(name="correctness")
    assert results.count() == 4
    assert {a.span.span_kind for a in results} == {"LLM"} and {a.label for a in results} == {
        "correct"
    }
    # More spans later: a second run evaluates only them.
    _send(client, auth, traces=2, start=timezone.now() + timedelta(seconds=10))
    wait_for(
        lambda: Annotation.objects.filter(name="correctness").count() == 6,
        timeout=60,
        worker=process,
    )
    runs = TaskRun.objects.filter(task=task, kind=RunKind.CONTINUOUS)
    assert sum(r.evaluated for r in runs) == 6


def test_backfill_with_a_cap(client, auth, provider, worker):
    task = make_task(code_check(), filter="span_kind = 'LLM'", continuous=False)
    old = timezone.now() - timedelta(days=90)
    _send(client, auth, traces=12, start=old)
    process = worker()
    run_backfill_create(task=task, start=old - timedelta(hours=1), end=old + timedelta(hours=1),
                        max_items=5)  # fmt: skip
    run = wait_for(_finished(task, RunKind.BACKFILL), timeout=60, worker=process)
    assert (run.status, run.matched, run.sampled, run.succeeded) == (
        RunStatus.COMPLETED, 12, 5, 5
    )  # fmt: skip
    assert Annotation.objects.filter(name="mentions_refund").count() == 5


def test_a_judge_answering_429_then_succeeding(client, auth, provider, worker, fake_openai):
    fake_openai.enqueue(Behavior.status(429, retry_after="0"), Behavior.status(429))
    task = make_task(judge(), filter="span_kind = 'LLM'")
    process = worker()
    _send(client, auth, traces=1)
    run = wait_for(_finished(task), timeout=60, worker=process)
    assert (run.status, run.succeeded, run.errored) == (RunStatus.COMPLETED, 1, 0)
    assert len(fake_openai.requests) == 3


def test_a_bad_key_fails_the_run_and_pauses_the_task(client, auth, provider, worker):
    provider_update(provider=provider, api_key="sk-revoked-000000000000")
    task = make_task(judge(), filter="span_kind = 'LLM'")
    process = worker()
    _send(client, auth, traces=3)
    run = wait_for(_finished(task), timeout=60, worker=process)
    task.refresh_from_db()
    assert run.status == RunStatus.FAILED and "authentication failed (401)" in run.error
    assert task.status == TaskStatus.PAUSED and f"run #{run.pk} failed" in task.paused_reason
    assert not Annotation.objects.filter(name="correctness").exists()


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(
    client, auth, provider, worker, fake_openai, tmp_path
):
    provider_update(provider=provider, max_concurrency=2)
    fake_openai.delay = 0.3
    task = make_task(judge(), filter="span_kind = 'LLM'", continuous=False)
    old = timezone.now() - timedelta(days=1)
    _send(client, auth, traces=30, start=old)
    shards = {"EVALHUB_RUN_SHARD_ITEMS": "5"}  # six shards, taken by both pool processes
    first = worker(**shards)
    run = run_backfill_create(task=task, start=old - timedelta(minutes=1), end=timezone.now())
    wait_for(lambda: TaskRun.objects.get(pk=run.pk).evaluated >= 6, timeout=60, worker=first)
    first.kill()
    held = run.shards.filter(finished_at__isnull=True).exclude(lease_owner="").count()
    assert held >= 1
    calls_at_kill = len(fake_openai.requests)
    at_kill = TaskRun.objects.get(pk=run.pk)
    assert at_kill.status == RunStatus.RUNNING and at_kill.evaluated < 30
    # Not yet committed at the kill: the calls in flight (2) and the results of the last
    # flush interval (1 s at 0.3 s a call on 2 slots).
    uncommitted = calls_at_kill - at_kill.evaluated
    assert 0 <= uncommitted <= 2 + 2 * 4
    second = worker(**shards)
    # The dead worker's provider slots come free after the request timeout and a margin (15 s).
    run = wait_for(_finished(task, RunKind.BACKFILL), timeout=120, worker=second)
    assert run.status == RunStatus.COMPLETED
    assert (run.sampled, run.evaluated, run.succeeded, run.errored) == (30, 30, 30, 0)
    assert Annotation.objects.filter(name="correctness").count() == 30
    # Every shard the dead worker held was taken over after its lease.
    assert run.logs.filter(message__contains="the lease of").count() >= held
    assert run.shards.filter(finished_at__isnull=True).count() == 0
    # Only what the dead worker had not committed was asked again; nothing committed was.
    assert 30 <= len(fake_openai.requests) <= 30 + uncommitted


def test_trace_and_session_granularity(client, auth, provider, worker, fake_openai):
    trace_task = make_task(judge(), name="per trace", granularity="trace", quiet_seconds=2)
    session_task = make_task(
        judge(
            name="conversation",
            template="Conversation: {conversation}",
            variables={"conversation": "session.conversation"},
        ),
        name="per session",
        granularity="session",
        quiet_seconds=3,
    )
    process = worker()
    _send(client, auth, traces=2, session="chat-1")
    _send(client, auth, traces=1, session="chat-2")
    wait_for(_finished(trace_task), timeout=60, worker=process)
    wait_for(_finished(session_task), timeout=60, worker=process)
    traces = Annotation.objects.filter(name="correctness")
    assert traces.count() == 3 and {a.target_kind for a in traces} == {"TRACE"}
    sessions = Annotation.objects.filter(name="conversation")
    assert sorted(a.session.session_id for a in sessions) == ["chat-1", "chat-2"]
    # The session judge saw both turns of chat-1.
    prompts = [b["messages"][-1]["content"] for b in fake_openai.bodies]
    assert any("Conversation:" in p and "q0" in p and "q1" in p for p in prompts)


def test_one_backfill_is_worked_by_two_workers_at_once(client, auth, provider, worker, fake_openai):
    # Three requests in flight for the provider, across every process (the Redis limiter);
    # each worker process would send two, and there are four of them.
    provider_update(provider=provider, max_concurrency=3)
    fake_openai.delay = 0.5
    task = make_task(judge(), filter="span_kind = 'LLM'", continuous=False)
    old = timezone.now() - timedelta(days=1)
    _send(client, auth, traces=60, start=old)
    settings = {"EVALHUB_RUN_SHARD_ITEMS": "5", "EVALHUB_TASK_CONCURRENCY": "2"}
    first, second = worker(**settings), worker(beat=False, **settings)
    for process in (first, second):
        wait_for(lambda p=process: " ready." in p.output(), timeout=60, worker=process)
    run = run_backfill_create(task=task, start=old - timedelta(minutes=1), end=timezone.now())
    run = wait_for(_finished(task, RunKind.BACKFILL), timeout=120, worker=first)
    assert run.status == RunStatus.COMPLETED, run.error
    assert (run.sampled, run.evaluated, run.succeeded, run.finished) == (60, 60, 60, 60)
    assert run.shards.count() == 12
    # Every item once: one result each, one judge call each.
    assert Annotation.objects.filter(name="correctness").count() == 60
    assert len(fake_openai.requests) == 60
    assert fake_openai.max_in_flight <= 3
    # Both workers wrote results, within the same seconds.
    seconds: dict[str, set[int]] = {}
    for name, finished_at in run.items.values_list("worker", "finished_at"):
        host = name.split(":", 1)[0]  # the Celery worker's hostname
        seconds.setdefault(host, set()).add(int(finished_at.timestamp()))
    assert len(seconds) == 2, seconds.keys()
    together = set.intersection(*seconds.values())
    assert len(together) >= 2, seconds
