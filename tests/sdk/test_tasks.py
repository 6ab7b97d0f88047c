"""``client.tasks`` and ``evalhub tasks …`` against a live server: tasks, backfills, waiting
with a progress bar, logs, the typed errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from evalhub_client import (
    NotFoundError,
    Run,
    RunItem,
    RunRejectedError,
    Task,
    ValidationError,
)
from evalhub_client.cli import main
from evalhub_client.tasks import duration_parse, time_param

from annotations.models import Annotation
from evalhub.tasks.engine import run_work
from evalhub.tasks.models import TaskRun
from evalhub.tasks.runs import run_cancel
from tests import factories
from tests.evalhub.tasks.factories import code_check


class Worker:
    """Stands in for Celery: records the runs the server dispatches; ``work()`` works them in
    the test's thread. With ``between_polls``, ``client.tasks.wait`` works them while it waits
    (between two polls, so SQLite never sees a page read while a run writes)."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.polls = 0
        self._worked: set[int] = set()

    def dispatch(self, run_id: int) -> None:
        self.sent.append(run_id)

    def work(self) -> None:
        for run_id in self.sent:
            if run_id not in self._worked:
                self._worked.add(run_id)
                self.process(run_id)

    def process(self, run_id: int) -> None:
        assert run_work(run_id=run_id, worker="test", concurrency=1) == "finished"

    def between_polls(self, seconds: float) -> None:
        self.polls += 1
        self.work()


@pytest.fixture
def worker(monkeypatch, transactional_db):
    fake = Worker()
    monkeypatch.setattr("evalhub.tasks.runs.run_dispatch", fake.dispatch)
    return fake


@pytest.fixture
def work_while_waiting(worker, monkeypatch):
    monkeypatch.setattr("evalhub_client.tasks.sleep", worker.between_polls)
    return worker


@pytest.fixture
def spans(transactional_db):
    """Ten traces, a day apart, 40 to 31 days ago (each with one LLM span), in project shop."""
    base = timezone.now() - timedelta(days=40)
    for day in range(10):
        factories.trace(project="shop", start=base + timedelta(days=day))
    return base


@pytest.fixture
def refund_check(transactional_db):
    return code_check()


def test_tasks_from_creation_to_deletion(client, refund_check, worker):
    factories.project("shop")
    task = client.tasks.create(
        "refunds",
        "shop",
        ["mentions_refund"],
        filter="span_kind == 'LLM'",
        sampling_rate=50,
        continuous=False,
        description="Does the answer mention refunds?",
    )
    assert isinstance(task, Task)
    assert (task.name, task.project, task.status, task.sampling_rate) == (
        "refunds",
        "shop",
        "active",
        50.0,
    )
    assert task.evaluator_names == ["mentions_refund"] and task.continuous is False
    assert task.created_at is not None and task.created_at.tzinfo is not None
    assert task.backfill_run_id is None

    assert client.tasks.get(task.id) == task
    assert client.tasks.get("refunds", project="shop") == task
    assert client.tasks.get(str(task.id)) == task
    assert [t.id for t in client.tasks.list(project="shop")] == [task.id]
    assert client.tasks.list(project="shop")[0].evaluators[0]["annotation_name"] == (
        "mentions_refund"
    )

    updated = client.tasks.update(task, sampling_rate=100, granularity="trace", quiet_seconds=0)
    assert (updated.sampling_rate, updated.granularity, updated.quiet_seconds) == (
        100.0,
        "trace",
        0,
    )
    assert updated.filter == "span_kind == 'LLM'"  # left as it was

    with pytest.raises(ValidationError) as invalid:
        client.tasks.update(task, filter="span_kind ==")
    assert invalid.value.status_code == 422 and invalid.value.field == "filter"
    assert invalid.value.detail.startswith("filter: ")
    with pytest.raises(ValidationError) as typo:
        client.tasks.update(task, sampling=5)
    assert typo.value.detail.startswith("sampling: ")

    paused = client.tasks.pause("refunds", project="shop")
    assert paused.is_paused
    with pytest.raises(RunRejectedError) as rejected:
        client.tasks.run_backfill(task, start_time="1d")
    assert (rejected.value.status_code, rejected.value.code) == (409, "task_paused")
    assert rejected.value.detail == "task refunds is paused; resume it first"
    assert client.tasks.resume(task).status == "active"

    client.tasks.delete(task)
    with pytest.raises(NotFoundError) as gone:
        client.tasks.get(task.id)
    assert gone.value.detail == f"no task #{task.id}"
    with pytest.raises(NotFoundError):
        client.tasks.get("refunds", project="shop")
    assert client.tasks.list() == []


def test_invalid_tasks_raise_with_the_field(client, refund_check):
    factories.project("shop")
    with pytest.raises(ValidationError) as unknown:
        client.tasks.create("t", "shop", ["nope"])
    assert unknown.value.field == "evaluators"
    assert unknown.value.detail == "evaluators: no evaluator 'nope'"
    with pytest.raises(ValidationError) as project:
        client.tasks.create("t", "nowhere", ["mentions_refund"])
    assert project.value.field == "project"
    with pytest.raises(ValidationError) as rate:
        client.tasks.create("t", "shop", ["mentions_refund"], sampling_rate=101)
    assert rate.value.field == "sampling_rate"
    assert client.tasks.list() == []


def test_backfill_wait_and_read_the_log(client, refund_check, spans, work_while_waiting, capsys):
    worker = work_while_waiting
    task = client.tasks.create("refunds", "shop", [refund_check.pk], filter="span_kind == 'LLM'")
    run = client.tasks.run_backfill(
        task, start_time=timedelta(days=41), end_time=spans + timedelta(days=8), max_spans=5
    )
    assert isinstance(run, Run)
    assert (run.kind, run.status, run.task, run.max_spans) == ("backfill", "queued", "refunds", 5)
    assert run.data_end_time == spans + timedelta(days=8) - timedelta(
        microseconds=spans.microsecond % 1000
    )

    finished = client.tasks.wait(run, poll_seconds=0.05, timeout=60, progress=True)
    assert worker.polls == 1  # queued at the first poll, completed at the second
    assert finished.status == "completed" and finished.finished
    assert (finished.done, finished.total) == (5, 5)
    counts = finished.counts
    assert (counts["matched"], counts["sampled"], counts["succeeded"], counts["errored"]) == (
        8,
        5,
        5,
        0,
    )
    assert finished.started_at and finished.finished_at and finished.duration_seconds >= 0
    assert "run #" in capsys.readouterr().err  # the progress bar
    assert Annotation.objects.filter(name="mentions_refund").count() == 5

    messages = [entry["message"] for entry in client.tasks.logs(finished)]
    assert messages[0].startswith("backfill queued:")
    assert "8 items match; 5 in the sample and the cap" in messages
    assert [e["message"] for e in finished.logs] == messages
    assert client.tasks.logs(run, level="error") == []

    # A second backfill over the same range evaluates only what is left: all ten match, the
    # five evaluated before are left out.
    again = client.tasks.wait(
        client.tasks.run_backfill("refunds", "41d", project="shop"), poll_seconds=0.05
    )
    assert (again.counts["matched"], again.counts["succeeded"]) == (10, 5)
    assert [r.id for r in client.tasks.runs(task)] == [again.id, run.id]
    assert [r.id for r in client.tasks.runs(task, limit=1)] == [again.id]


def test_run_items_are_exactly_what_the_run_evaluated(client, refund_check, spans, worker):
    """``client.tasks.run_items``: the run's items with their results and outcomes, paged,
    filtered by outcome — the same spans as ``task_run = <run id>`` in the filter language."""
    task = client.tasks.create(
        "checks", "shop", [code_check("exact").pk], filter="span_kind == 'LLM'"
    )
    run = client.tasks.run_backfill(task, start_time=timedelta(days=41), max_spans=4)
    worker.work()
    items = client.tasks.run_items(run)
    assert isinstance(items[0], RunItem) and len(items) == 4
    assert [i.id for i in items] == sorted(i.id for i in items)
    assert all(i.target_kind == "span" and i.outcome == "succeeded" for i in items)
    assert {r["evaluator"] for i in items for r in i.results} == {"exact"}
    assert all("label" in i.results[0] and "latency_ms" in i.results[0] for i in items)
    assert [i.id for i in client.tasks.run_items(run, limit=3)] == [i.id for i in items[:3]]
    assert client.tasks.run_items(run, outcome="errored") == []
    listed = {
        s["context"]["span_id"] for s in client.spans.list("shop", filter=f"task_run = {run.id}")
    }
    assert listed == {i.target_id for i in items}


def test_refused_runs_carry_their_code(client, refund_check, worker):
    factories.project("shop")
    task = client.tasks.create("refunds", "shop", ["mentions_refund"])
    now = datetime.now(UTC)
    cases = [
        ({"start_time": now + timedelta(days=1)}, 400, "range_in_future"),
        ({"start_time": "1d", "end_time": "2d"}, 400, "invalid_range"),
        ({"start_time": "1d", "max_spans": 0}, 400, "invalid_max_spans"),
    ]
    for kwargs, status, code in cases:
        with pytest.raises(RunRejectedError) as rejected:
            client.tasks.run_backfill(task, **kwargs)
        assert (rejected.value.status_code, rejected.value.code) == (status, code)
        assert rejected.value.detail
    with pytest.raises(ValidationError) as unparseable:
        client.tasks.run_backfill(task, start_time="last tuesday")
    assert unparseable.value.detail.startswith("data_start_time")
    assert worker.sent == []

    # A time without a zone is UTC.
    naive = datetime(2026, 1, 2, 3, 4, 5)
    run = client.tasks.run_backfill(task, start_time=naive)
    assert run.data_start_time == naive.replace(tzinfo=UTC)
    assert worker.sent == [run.id]


def test_wait_gives_up_after_its_timeout_and_cancel(client, refund_check, worker):
    factories.project("shop")
    task = client.tasks.create("refunds", "shop", ["mentions_refund"], backfill="2d")
    assert task.backfill_run_id is not None and worker.sent == [task.backfill_run_id]
    with pytest.raises(TimeoutError, match=f"run #{task.backfill_run_id} is still queued"):
        client.tasks.wait(task.backfill_run_id, poll_seconds=0.05, timeout=0.2, progress=False)
    cancelled = client.tasks.cancel(task.backfill_run_id)
    assert (cancelled.status, cancelled.active) == ("cancelled", False)
    assert client.tasks.wait(cancelled, progress=False).status == "cancelled"
    with pytest.raises(RunRejectedError) as again:
        client.tasks.cancel(cancelled)
    assert (again.value.status_code, again.value.code) == (409, "not_active")
    with pytest.raises(NotFoundError):
        client.tasks.run(999_999)


def test_a_name_in_several_projects_needs_the_project(client, refund_check):
    for project in ("shop", "blog"):
        factories.project(project)
        client.tasks.create("refunds", project, ["mentions_refund"])
    with pytest.raises(ValueError, match="several tasks are named 'refunds'"):
        client.tasks.get("refunds")
    assert client.tasks.get("refunds", project="blog").project == "blog"


def test_times_and_durations():
    assert duration_parse("30m") == timedelta(minutes=30)
    assert duration_parse("24h") == timedelta(hours=24)
    assert duration_parse("7d") == timedelta(days=7)
    assert duration_parse("2026-01-01") is None
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert time_param("7d", now=now) == "2026-11-15T12:00:00+00:00"
    assert time_param(timedelta(hours=1), now=now) == "2026-11-22T11:00:00+00:00"
    assert time_param("2026-01-01T00:00:00Z") == "2026-01-01T00:00:00Z"
    assert time_param(None) is None


# --- the command line -------------------------------------------------------------------------


def test_cli_create_list_run_and_logs(
    client, refund_check, spans, work_while_waiting, capsys, monkeypatch
):
    worker = work_while_waiting
    monkeypatch.setenv("EVALHUB_BASE_URL", client.base_url)
    key = factories.api_key("cli")
    code = main(
        [
            "--api-key",
            key,
            "tasks",
            "create",
            "--project",
            "shop",
            "--name",
            "refunds",
            "--evaluator",
            "mentions_refund",
            "--filter",
            "span_kind == 'LLM'",
            "--sampling-rate",
            "100",
            "--granularity",
            "span",
            "--no-continuous",
            "--interval",
            "60",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    task = client.tasks.get("refunds", project="shop")
    assert f"created task #{task.id} refunds in project shop" in out
    assert (task.continuous, task.interval_seconds, task.filter) == (
        False,
        60,
        "span_kind == 'LLM'",
    )

    assert main(["--api-key", key, "tasks", "list", "--project", "shop"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "ID",
        "NAME",
        "PROJECT",
        "STATUS",
        "GRANULARITY",
        "SAMPLING",
        "MODE",
        "EVALUATORS",
    ]
    assert lines[1].split()[:6] == [str(task.id), "refunds", "shop", "active", "span", "100%"]
    assert lines[1].endswith("mentions_refund")

    code = main(
        [
            "--api-key",
            key,
            "tasks",
            "run",
            "refunds",
            "--project",
            "shop",
            "--since",
            "41d",
            "--until",
            "32.5d",
            "--max-spans",
            "3",
            "--wait",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    run_id = worker.sent[-1]
    assert re.search(
        rf"^run #{run_id} (queued|running|completed): backfill of refunds", captured.out
    )
    assert "items: 3/3 done (8 matched, 3 sampled, 0 skipped)" in captured.out
    assert "evaluations: 3 (3 succeeded, 0 errored)" in captured.out

    assert main(["--api-key", key, "tasks", "logs", str(run_id)]) == 0
    out = capsys.readouterr().out
    assert f"run #{run_id} (backfill, completed) of task refunds in project shop" in out
    assert "info     8 items match; 3 in the sample and the cap" in out
    assert "window: " in out

    # Errors print the server's detail and exit with 1.
    assert main(["--api-key", key, "tasks", "run", "nope", "--since", "1d"]) == 1
    assert "error: 404: no task named 'nope'" in capsys.readouterr().err
    client.tasks.pause(task)
    assert main(["--api-key", key, "tasks", "run", str(task.id), "--since", "1d"]) == 1
    assert "error: 409: task refunds is paused; resume it first" in capsys.readouterr().err
    assert main(["--api-key", key, "tasks", "logs", "999999"]) == 1
    assert "error: 404: no run #999999" in capsys.readouterr().err
    code = main(
        [
            "--api-key",
            key,
            "tasks",
            "create",
            "--project",
            "shop",
            "--name",
            "x",
            "--evaluator",
            "y",
        ]
    )
    assert code == 1
    assert "error: 422: evaluators: no evaluator 'y'" in capsys.readouterr().err


def test_cli_wait_reports_a_run_that_did_not_complete(
    client, refund_check, spans, work_while_waiting, capsys, monkeypatch
):
    worker = work_while_waiting
    monkeypatch.setenv("EVALHUB_BASE_URL", client.base_url)
    monkeypatch.setenv("EVALHUB_API_KEY", factories.api_key("cli"))
    task = client.tasks.create("refunds", "shop", ["mentions_refund"])
    monkeypatch.setattr(
        worker, "process", lambda run_id: run_cancel(run=TaskRun.objects.get(pk=run_id))
    )
    code = main(["tasks", "run", str(task.id), "--since", "41d", "--wait", "--timeout", "30"])
    captured = capsys.readouterr()
    assert code == 1
    assert "(backfill, cancelled)" in captured.out
    assert f"error: run #{worker.sent[0]} cancelled: see its log" in captured.err


def test_a_task_on_a_dataset_scores_its_new_experiments(client, refund_check, worker):
    from annotations.datasets.upload import UploadRow, dataset_upload
    from annotations.datasets.versions import ExampleContent
    from evalhub.experiments.models import ExperimentEvaluation
    from evalhub.experiments.services import RunInput, experiment_create, run_record
    from evalhub.tasks.continuous import continuous_run_plan

    uploaded = dataset_upload(
        name="qa", rows=[UploadRow(ExampleContent({"q": "refunds?"}, {"a": "yes"}))]
    )
    task = client.tasks.create("auto", dataset="qa", evaluators=["mentions_refund"])
    assert (task.target, task.dataset, task.project) == ("dataset", "qa", None)
    assert client.tasks.get(task.id).dataset == "qa"

    experiment = experiment_create(dataset=uploaded.dataset, version=uploaded.version)
    example_id = uploaded.version.revisions.get().example_id
    run_record(experiment=experiment, run=RunInput(example_id=example_id, output="a full refund"))
    later = timezone.now() + timedelta(minutes=1)
    run = continuous_run_plan(task_id=task.id, now=later)
    worker.work()
    scored = client.tasks.run(run.pk)
    assert scored.status == "completed"
    assert scored.raw["experiment_id"] == experiment.pk and scored.raw["project"] is None
    evaluation = ExperimentEvaluation.objects.get(run__experiment=experiment)
    assert (evaluation.name, evaluation.score) == ("mentions_refund", 1.0)

    with pytest.raises(ValidationError) as unknown:
        client.tasks.create("x", dataset="nope", evaluators=["mentions_refund"])
    assert unknown.value.field == "dataset"
    with pytest.raises(ValidationError) as neither:
        client.tasks.create("x", evaluators=["mentions_refund"])
    assert neither.value.field == "project"
