"""Tasks pages through Django's test client: the tasks and runs lists, the task form (live
count, variable previews, test run, saving with a backfill), a task's runs, a run's log,
backfills and "Evaluate with…" in the trace browser."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.html import escape

from annotations.models import Annotation
from evalhub.tasks.backfill import run_backfill_create
from evalhub.tasks.engine import run_work
from evalhub.tasks.models import (
    RunKind,
    RunStatus,
    Task,
    TaskEvaluator,
    TaskRun,
    TaskRunLog,
    TaskStatus,
)
from evalhub.tasks.runs import run_fail, run_manual_create
from evalhub.tasks.services import task_pause
from evalhub.tasks.views.run import run_traces_url
from tests import factories
from tests.evalhub.tasks.factories import code_check, judge, make_task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_dispatch(monkeypatch):
    """Runs are worked here by calling ``run_work``; nothing goes to a broker."""
    sent: list[int] = []
    monkeypatch.setattr("evalhub.tasks.runs.run_dispatch", sent.append)
    return sent


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", password="x")


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def _ago(**kwargs: float):
    return timezone.now() - timedelta(**kwargs)


def _minute(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def _form(**changes) -> dict:
    data = {
        "name": "quality",
        "project": "default",
        "evaluators": [],
        "granularity": "span",
        "filter": "",
        "sampling_rate": "100",
        "continuous": "on",
        "interval_seconds": "30",
        "quiet_seconds": "",
        "provider": "",
        "model": "",
        "backfill-start": "",
        "backfill-end": "",
        "backfill-max_items": "10000",
    }
    data.update(changes)
    return data


def _errors(page: str) -> list[str]:
    return re.findall(r'class="form-error" role="alert">([^<]*)<', page)


# --- access -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/tasks/",
        "/tasks/runs/",
        "/tasks/new/",
        "/tasks/1/",
        "/tasks/1/edit/",
        "/tasks/1/backfill/",
        "/tasks/1/delete/",
        "/runs/1/",
        "/tasks/form/count/",
        "/tasks/evaluate/default/traces/options/",
    ],
)
def test_pages_need_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize(
    "url",
    [
        "/tasks/1/pause/",
        "/tasks/1/resume/",
        "/tasks/1/duplicate/",
        "/runs/1/cancel/",
        "/tasks/form/variables/",
        "/tasks/form/test/",
        "/tasks/evaluate/default/traces/",
    ],
)
def test_actions_need_a_login(client, url):
    response = client.post(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_unknown_task_and_run_are_404(logged_in):
    assert logged_in.get("/tasks/999/").status_code == 404
    assert logged_in.get("/tasks/999/edit/").status_code == 404
    assert logged_in.get("/runs/999/").status_code == 404
    assert logged_in.post("/tasks/999/pause/").status_code == 404


# --- the Tasks page ---------------------------------------------------------------------------


def test_navigation_shows_tasks(logged_in):
    page = logged_in.get("/tasks/").content.decode()
    assert '<a href="/tasks/" class="active" aria-current="page">Tasks</a>' in page


def test_tasks_page_lists_tasks_with_status_runs_and_actions(logged_in, provider):
    task = make_task(judge(), code_check(), filter="span_kind = 'LLM'", sampling_rate=25)
    factories.trace(start=_ago(hours=2))
    run = run_backfill_create(task=task, start=_ago(days=1))
    run_fail(run_id=run.pk, reason="401 Incorrect API key provided", pause_task=True)
    runs = [run_backfill_create(task=make_task(judge(name="j2"), name="other"), start=_ago(days=1))]
    page = logged_in.get("/tasks/").content.decode()
    assert f'<a href="/tasks/{task.pk}/">quality</a>' in page
    assert '<span class="badge">correctness</span>' in page
    assert '<span class="badge">mentions_refund</span>' in page
    assert "25 %" in page
    assert '<span class="badge warn">paused</span>' in page
    assert f"<strong>Paused:</strong> run #{run.pk} failed: 401 Incorrect API key provided" in page
    assert f'href="/runs/{run.pk}/"' in page and ">failed</a>" in page
    assert f'href="/runs/{runs[0].pk}/"' in page and ">queued</a>" in page
    for label in ("View logs", "Edit", "Resume", "Pause", "Duplicate", "Run backfill", "Delete"):
        assert label in page
    assert f'action="/tasks/{task.pk}/resume/"' in page
    assert 'href="/tasks/new/"' in page


def test_tasks_page_filters_by_project_and_swaps_results(logged_in, provider):
    make_task(judge(), name="in-default")
    make_task(code_check(), project="shop", name="in-shop")
    page = logged_in.get("/tasks/?project=shop").content.decode()
    assert "in-shop" in page and "in-default" not in page
    assert 'href="/tasks/new/?project=shop"' in page
    partial = logged_in.get("/tasks/?project=default", headers={"HX-Request": "true"})
    text = partial.content.decode()
    assert "<html" not in text and "in-default" in text and "in-shop" not in text


def test_tasks_page_empty_and_names_escaped(logged_in, provider):
    assert "No tasks" in logged_in.get("/tasks/").content.decode()
    make_task(judge(), name="<script>alert(1)</script>")
    page = logged_in.get("/tasks/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_runs_tab_lists_runs_of_tasks_and_manual_runs(logged_in, provider):
    task = make_task(judge())
    spans = factories.trace(start=_ago(hours=1))
    backfill = run_backfill_create(task=task, start=_ago(days=1))
    from evalhub.tasks.runs import run_manual_create

    manual = run_manual_create(
        project=task.project, granularity="span", keys=[spans[0].span_id], evaluator=code_check()
    )
    page = logged_in.get("/tasks/runs/").content.decode()
    assert f'href="/runs/{backfill.pk}/">#{backfill.pk}</a>' in page
    assert f'href="/runs/{manual.pk}/">#{manual.pk}</a>' in page
    assert "mentions_refund" in page  # a manual run of no task names its evaluator
    only_failed = logged_in.get("/tasks/runs/?status=failed").content.decode()
    assert "No runs yet" in only_failed


# --- the task form: pages ---------------------------------------------------------------------


def test_new_form_prefills_the_project_and_counts_the_last_24_hours(logged_in, provider):
    judge()
    factories.trace(project="shop", start=_ago(hours=1))
    factories.trace(project="shop", start=_ago(hours=30))
    page = logged_in.get("/tasks/new/?project=shop").content.decode()
    assert '<option value="shop" selected>shop</option>' in page
    assert '<strong class="count">3</strong> spans matched in the last 24 hours.' in page
    assert 'value="10000"' in page  # the backfill's default cap
    assert "correctness" in page and 'name="evaluators"' in page


def test_new_form_from_a_span_previews_on_that_span(logged_in, provider):
    evaluator = judge()
    spans = factories.trace(project="shop", start=_ago(hours=3), input_value="<b>old question</b>")
    factories.trace(project="shop", start=_ago(hours=1))
    page = logged_in.get(f"/tasks/new/?project=shop&span={spans[2].span_id}").content.decode()
    assert f'name="span" value="{spans[2].span_id}"' in page
    assert 'value="name = &#x27;llm&#x27;"' in page and 'value="llm quality"' in page
    # The mapping for a chosen evaluator previews on the span the user came from.
    response = logged_in.post(
        "/tasks/form/variables/",
        _form(project="shop", evaluators=[str(evaluator.pk)], span=spans[2].span_id),
    )
    text = response.content.decode()
    assert f'(<span class="mono">{spans[2].span_id}</span>), the span you started from' in text
    assert "&lt;b&gt;old question&lt;/b&gt;" in text and "<b>old question</b>" not in text


def test_span_pane_links_to_a_new_task_from_the_span(logged_in):
    spans = factories.trace()
    url = f"/projects/default/traces/{spans[0].trace.trace_id}/spans/{spans[1].span_id}/"
    page = logged_in.get(url).content.decode()
    assert (
        f'href="/tasks/new/?project=default&amp;span={spans[1].span_id}">Create task from this span'
        in page
    )


def test_live_count_shows_filter_errors_with_the_column(logged_in):
    factories.trace(start=_ago(minutes=5))
    ok = logged_in.get(
        "/tasks/form/count/",
        {"project": "default", "granularity": "trace", "filter": "span_kind = 'AGENT'"},
    ).content.decode()
    assert '<strong class="count">1</strong> trace matched' in ok
    # A trace matches when any of its spans does, as the Traces tab lists them: the LLM child
    # counts; "parent_id IS NULL" asks the root span.
    child = logged_in.get(
        "/tasks/form/count/",
        {"project": "default", "granularity": "trace", "filter": "span_kind = 'LLM'"},
    ).content.decode()
    assert '<strong class="count">1</strong> trace matched' in child
    root = logged_in.get(
        "/tasks/form/count/",
        {
            "project": "default",
            "granularity": "trace",
            "filter": "parent_id IS NULL and span_kind = 'LLM'",
        },
    ).content.decode()
    assert '<strong class="count">0</strong> traces matched' in root
    bad = logged_in.get(
        "/tasks/form/count/",
        {"project": "default", "granularity": "span", "filter": "latncy_ms > 1"},
    ).content.decode()
    assert "<strong>Column 1:</strong> unknown field" in bad and "latency_ms" in bad
    assert "latncy_ms &gt; 1\n^</pre>" in bad
    none = logged_in.get("/tasks/form/count/", {"filter": "x"}).content.decode()
    assert "Choose a project" in none


def test_variables_preview_uses_the_posted_mapping(logged_in, provider):
    evaluator = judge()
    factories.trace(start=_ago(minutes=5), metadata={"question": "How long for refunds?"})
    field = f"map-{evaluator.pk}-input"
    page = logged_in.post(
        "/tasks/form/variables/",
        _form(
            evaluators=[str(evaluator.pk)],
            filter="span_kind = 'LLM'",
            **{field: "metadata.question"},
        ),
    ).content.decode()
    assert f'name="{field}" value="metadata.question"' in page
    assert "evaluator maps it to input" in page
    assert "<pre>How long for refunds?</pre>" in page
    bad = logged_in.post(
        "/tasks/form/variables/", _form(evaluators=[str(evaluator.pk)], **{field: "bogus"})
    ).content.decode()
    assert "unknown source &#x27;bogus&#x27;" in bad


# --- the task form: saving --------------------------------------------------------------------


def test_create_a_task_keeps_only_the_changed_variables(logged_in, provider, user):
    factories.project()
    evaluator = judge()
    check = code_check()
    data = _form(
        evaluators=[str(evaluator.pk), str(check.pk)],
        filter="span_kind = 'LLM'",
        sampling_rate="50",
        quiet_seconds="",
        model="judge-large",
        provider=str(provider.pk),
        **{
            f"map-{evaluator.pk}-input": "metadata.question",
            f"map-{evaluator.pk}-output": "output",
        },
    )
    response = logged_in.post("/tasks/new/", data)
    task = Task.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/tasks/{task.pk}/"
    assert (task.name, task.filter, task.sampling_rate, task.model) == (
        "quality",
        "span_kind = 'LLM'",
        50.0,
        "judge-large",
    )
    assert task.provider == provider and task.created_by == user and task.continuous
    assert list(
        TaskEvaluator.objects.order_by("position").values_list("evaluator__name", "variables")
    ) == [
        ("correctness", {"input": "metadata.question"}),
        ("mentions_refund", {}),
    ]
    assert not TaskRun.objects.exists()
    detail = logged_in.get(response["Location"]).content.decode()
    assert "Created task quality." in detail and "input ← metadata.question" in detail


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"evaluators": []}, "Evaluators: choose at least one evaluator"),
        ({"filter": "latncy_ms > 1"}, "Filter: unknown field &#x27;latncy_ms&#x27; at column 1"),
        ({"sampling_rate": "150"}, "Sampling rate: must be from 0 to 100 (%)"),
        ({"interval_seconds": "1"}, "Interval: must be from 5 s to 86400 s (a day)"),
        ({"name": ""}, "Name: This field is required."),
        ({"project": "nope"}, "Project: Select a valid choice."),
    ],
)
def test_create_with_bad_input_shows_the_field_error_and_writes_nothing(
    logged_in, provider, changes, message
):
    evaluator = judge()
    factories.project()
    response = logged_in.post("/tasks/new/", _form(evaluators=[str(evaluator.pk)]) | changes)
    assert response.status_code == 200
    assert any(e.startswith(message) for e in _errors(response.content.decode())), _errors(
        response.content.decode()
    )
    assert not Task.objects.exists()


def test_create_with_a_taken_name_is_a_name_error(logged_in, provider):
    evaluator = judge()
    make_task(evaluator)
    page = logged_in.post("/tasks/new/", _form(evaluators=[str(evaluator.pk)])).content.decode()
    assert "Name: project default already has a task named quality" in _errors(page)
    assert Task.objects.count() == 1


def test_create_with_a_backfill_queues_it(
    logged_in, provider, _no_dispatch, django_capture_on_commit_callbacks
):
    evaluator = code_check()
    factories.project()
    start = _ago(days=2).replace(second=0, microsecond=0)
    with django_capture_on_commit_callbacks(execute=True):
        response = logged_in.post(
            "/tasks/new/",
            _form(
                evaluators=[str(evaluator.pk)],
                backfill="on",
                **{"backfill-start": _minute(start), "backfill-max_items": "20"},
            ),
        )
    task = Task.objects.get()
    run = TaskRun.objects.get()
    assert response["Location"] == f"/tasks/{task.pk}/"
    assert (run.task, run.kind, run.status, run.max_items) == (task, RunKind.BACKFILL, "queued", 20)
    assert run.data_start == start
    assert _no_dispatch == [run.pk]


def test_a_rejected_backfill_leaves_no_task_behind(logged_in, provider):
    evaluator = code_check()
    factories.project()
    future = timezone.now() + timedelta(days=2)
    response = logged_in.post(
        "/tasks/new/",
        _form(
            evaluators=[str(evaluator.pk)],
            backfill="on",
            **{"backfill-start": _minute(future)},
        ),
    )
    assert "From: the range starts in the future: nothing to evaluate" in _errors(
        response.content.decode()
    )
    assert not Task.objects.exists() and not TaskRun.objects.exists()
    missing = logged_in.post("/tasks/new/", _form(evaluators=[str(evaluator.pk)], backfill="on"))
    assert "From: This field is required." in _errors(missing.content.decode())
    assert not Task.objects.exists()


def test_backfill_fields_are_ignored_without_the_checkbox(logged_in, provider):
    evaluator = code_check()
    factories.project()
    response = logged_in.post(
        "/tasks/new/", _form(evaluators=[str(evaluator.pk)], **{"backfill-start": "garbage"})
    )
    assert response.status_code == 302 and Task.objects.count() == 1
    assert not TaskRun.objects.exists()


def test_edit_shows_and_saves_the_task(logged_in, provider):
    evaluator = judge()
    task = make_task(evaluator, filter="span_kind = 'LLM'", sampling_rate=30)
    TaskEvaluator.objects.filter(task=task).update(variables={"input": "metadata.q"})
    page = logged_in.get(f"/tasks/{task.pk}/edit/").content.decode()
    assert 'value="quality"' in page and "span_kind = &#x27;LLM&#x27;" in page
    assert f'value="{evaluator.pk}" class="evaluator-choice" checked' in page
    assert f'name="map-{evaluator.pk}-input" value="metadata.q"' in page
    response = logged_in.post(
        f"/tasks/{task.pk}/edit/",
        _form(
            name="renamed",
            evaluators=[str(evaluator.pk)],
            granularity="trace",
            quiet_seconds="120",
            sampling_rate="10",
            continuous="",
            **{f"map-{evaluator.pk}-input": "input"},
        ),
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.name, task.granularity, task.quiet_seconds, task.sampling_rate) == (
        "renamed",
        "trace",
        120,
        10.0,
    )
    assert not task.continuous and not task.tracing
    assert TaskEvaluator.objects.get(task=task).variables == {}
    # Advanced: Enable tracing, next to the LLM override.
    page = logged_in.get(f"/tasks/{task.pk}/edit/").content.decode()
    assert "LLM override" in page and 'name="tracing"' in page and "Enable tracing" in page
    logged_in.post(
        f"/tasks/{task.pk}/edit/",
        _form(name="renamed", evaluators=[str(evaluator.pk)], tracing="on"),
    )
    task.refresh_from_db()
    assert task.tracing
    detail = logged_in.get(f"/tasks/{task.pk}/").content.decode()
    assert 'judge calls recorded in <span class="mono">default · judge traces</span>' in detail


def test_edit_with_a_backfill_on_a_paused_task_is_rejected_and_nothing_changes(logged_in, provider):
    evaluator = code_check()
    task = make_task(evaluator)
    task_pause(task=task)
    response = logged_in.post(
        f"/tasks/{task.pk}/edit/",
        _form(
            name="renamed",
            evaluators=[str(evaluator.pk)],
            backfill="on",
            **{"backfill-start": _minute(_ago(days=1))},
        ),
    )
    assert "Backfill: task renamed is paused; resume it first" in _errors(response.content.decode())
    task.refresh_from_db()
    assert task.name == "quality" and not TaskRun.objects.exists()


# --- the test run -----------------------------------------------------------------------------


def test_test_task_shows_results_and_writes_nothing(logged_in, provider, fake_openai):
    fake_openai.answer("incorrect", "It <em>dodges</em> the question.")
    evaluator = judge()
    for hours in (1, 2):
        factories.trace(start=_ago(hours=hours))
    response = logged_in.post(
        "/tasks/form/test/",
        _form(name="", evaluators=[str(evaluator.pk)], filter="span_kind = 'LLM'"),
    )
    page = response.content.decode()
    assert page.count('<span class="badge accent result-label">incorrect</span>') == 2
    assert "It &lt;em&gt;dodges&lt;/em&gt; the question." in page
    assert "The 2 newest matching, sampled items" in page
    assert "Nothing was written." in page
    assert not Annotation.objects.exists() and not Task.objects.exists()
    assert not TaskRun.objects.exists()


def test_the_form_warns_how_many_recent_matches_would_be_skipped_and_why(
    logged_in, provider, fake_openai
):
    fake_openai.answer("correct", "fine")
    evaluator = judge()
    factories.trace(start=_ago(hours=1))
    factories.ingest(
        [factories.span_record(kind="LLM", name="llm", output_value=None, start=_ago(hours=2))]
    )
    form = _form(evaluators=[str(evaluator.pk)], filter="span_kind = 'LLM'")
    mappings = logged_in.post("/tasks/form/variables/", form).content.decode()
    assert "1 of the 2 newest matching spans would be skipped" in mappings
    assert 'missing variable {output}: output has no value <span class="muted">(1)</span>' in (
        mappings
    )
    tested = logged_in.post("/tasks/form/test/", form).content.decode()
    assert '<span class="badge warn">skipped</span>' in tested
    assert "1 of the 2 newest matching item" in tested
    assert len(fake_openai.requests) == 1  # the skipped one is not sent to the judge
    fine = logged_in.post(
        "/tasks/form/variables/", {**form, "filter": "span_kind = 'LLM' and output IS NOT NULL"}
    ).content.decode()
    assert "would be skipped" not in fine


def test_test_task_shows_problems_instead_of_running(logged_in, provider):
    factories.trace(start=_ago(hours=1))
    page = logged_in.post("/tasks/form/test/", _form()).content.decode()
    assert "Choose at least one evaluator." in page
    evaluator = code_check()
    bad = logged_in.post(
        "/tasks/form/test/", _form(evaluators=[str(evaluator.pk)], filter="nope ==")
    ).content.decode()
    assert "Filter:" in bad and "column" in bad
    nothing = logged_in.post(
        "/tasks/form/test/", _form(evaluators=[str(evaluator.pk)], filter="name = 'zzz'")
    ).content.decode()
    assert "no item to test on" in nothing


# --- actions ----------------------------------------------------------------------------------


def test_pause_resume_duplicate_delete(logged_in, provider):
    task = make_task(judge())
    response = logged_in.post(f"/tasks/{task.pk}/pause/", {"next": "/tasks/?project=default"})
    assert response["Location"] == "/tasks/?project=default"
    task.refresh_from_db()
    assert task.status == TaskStatus.PAUSED
    response = logged_in.post(f"/tasks/{task.pk}/resume/", {"next": "https://evil.example/"})
    assert response["Location"] == "/tasks/"
    task.refresh_from_db()
    assert task.status == TaskStatus.ACTIVE
    response = logged_in.post(f"/tasks/{task.pk}/duplicate/")
    copy = Task.objects.get(name="quality (copy)")
    assert response["Location"] == f"/tasks/{copy.pk}/edit/" and copy.is_paused
    confirm = logged_in.get(f"/tasks/{task.pk}/delete/").content.decode()
    assert "Delete task quality?" in confirm and "0 runs" in confirm
    assert logged_in.post(f"/tasks/{task.pk}/delete/")["Location"] == "/tasks/"
    assert list(Task.objects.values_list("name", flat=True)) == ["quality (copy)"]
    assert logged_in.get(f"/tasks/{task.pk}/pause/").status_code == 405


def test_task_detail_lists_all_runs_paginated(logged_in, provider):
    task = make_task(code_check())
    runs = [run_backfill_create(task=task, start=_ago(days=1)) for _ in range(27)]
    page = logged_in.get(f"/tasks/{task.pk}/").content.decode()
    assert f'href="/runs/{runs[-1].pk}/">#{runs[-1].pk}</a>' in page
    assert f'href="/runs/{runs[0].pk}/">#{runs[0].pk}</a>' not in page
    assert "Page 1 of 2" in page and 'href="?page=2"' in page
    second = logged_in.get(f"/tasks/{task.pk}/?page=2").content.decode()
    assert f'href="/runs/{runs[0].pk}/">#{runs[0].pk}</a>' in second


def test_run_backfill_page(logged_in, provider):
    task = make_task(code_check())
    page = logged_in.get(f"/tasks/{task.pk}/backfill/").content.decode()
    assert 'name="start"' in page and 'value="10000"' in page
    start = _ago(days=3).replace(second=0, microsecond=0)
    response = logged_in.post(
        f"/tasks/{task.pk}/backfill/", {"start": _minute(start), "end": "", "max_items": "7"}
    )
    run = TaskRun.objects.get()
    assert response["Location"] == f"/runs/{run.pk}/"
    assert (run.kind, run.max_items, run.data_start) == ("backfill", 7, start)
    bad = logged_in.post(
        f"/tasks/{task.pk}/backfill/",
        {"start": _minute(start), "end": _minute(start - timedelta(hours=1)), "max_items": "0"},
    ).content.decode()
    assert "To: must be after the start" in _errors(bad)
    assert any(e.startswith("At most: Ensure this value is greater") for e in _errors(bad))
    task_pause(task=task)
    paused = logged_in.post(
        f"/tasks/{task.pk}/backfill/", {"start": _minute(start), "max_items": "5"}
    ).content.decode()
    assert "task quality is paused; resume it first" in _errors(paused)
    assert TaskRun.objects.count() == 1


# --- a run's log ------------------------------------------------------------------------------


def _worked_backfill(task, fast_retry):
    run = run_backfill_create(task=task, start=_ago(days=1))
    assert run_work(run_id=run.pk, worker="test", retry=fast_retry) == "finished"
    run.refresh_from_db()
    return run


def test_run_page_shows_counts_progress_cost_and_errors_with_links(
    logged_in, provider, fake_openai, fast_retry
):
    from tests.evalhub.fake_openai import Behavior

    fake_openai.enqueue(Behavior.garbage())
    task = make_task(judge(), filter="span_kind = 'LLM'")
    traces = [factories.trace(start=_ago(hours=h)) for h in (1, 2)]
    run = _worked_backfill(task, fast_retry)
    page = logged_in.get(f"/runs/{run.pk}/").content.decode()
    assert 'data-status="completed">Completed</span>' in page
    assert 'hx-trigger="every 2s"' not in page  # finished: nothing polls
    assert "Cancel run" not in page
    assert '<progress max="2" value="2"' in page and "2 / 2 items · 100.0 %" in page
    for count, label in ((2, "matched"), (2, "sampled"), (1, "succeeded"), (1, "errored")):
        assert re.search(rf">{count}</div><div class=\"label\">{label}<", page), label
    assert "judge tokens" in page and "judge cost" in page
    error = TaskRunLog.objects.get(run=run, level="error")
    trace_id = next(t for t in traces if t[2].span_id == error.target_key)[0].trace.trace_id
    assert f'href="/projects/default/traces/{trace_id}/spans/{error.target_key}/"' in page
    assert error.message and escape(error.message) in page
    assert "Backfill" in page and "took" in page


def test_run_page_polls_while_active_and_stops_when_finished(logged_in, provider, fast_retry):
    task = make_task(code_check())
    factories.trace(start=_ago(hours=1))
    run = run_backfill_create(task=task, start=_ago(days=1))
    page = logged_in.get(f"/runs/{run.pk}/").content.decode()
    assert f'hx-get="/runs/{run.pk}/" hx-trigger="every 2s"' in page
    assert "Cancel run" in page and "listing the items" in page
    poll = logged_in.get(f"/runs/{run.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert poll.lstrip().startswith('<section id="run-live"') and "every 2s" in poll
    run_work(run_id=run.pk, worker="test", retry=fast_retry)
    done = logged_in.get(f"/runs/{run.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert done.lstrip().startswith('<section id="run-live"')
    assert "every 2s" not in done and "Completed" in done


def test_run_log_is_paginated(logged_in, provider):
    task = make_task(code_check())
    run = run_backfill_create(task=task, start=_ago(days=1))
    TaskRunLog.objects.bulk_create(
        TaskRunLog(run=run, level="error", message=f"problem {i:03d}") for i in range(60)
    )
    first = logged_in.get(f"/runs/{run.pk}/").content.decode()
    assert "problem 000" in first and "problem 055" not in first and "Page 1 of 2" in first
    second = logged_in.get(f"/runs/{run.pk}/?page=2").content.decode()
    assert "problem 055" in second and "problem 000" not in second
    # Polling keeps the page the user is on.
    assert f'hx-get="/runs/{run.pk}/?page=2"' in second


def test_cancel_a_run(logged_in, provider):
    task = make_task(code_check())
    run = run_backfill_create(task=task, start=_ago(days=1))
    response = logged_in.post(f"/runs/{run.pk}/cancel/")
    assert response["Location"] == f"/runs/{run.pk}/"
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    again = logged_in.post(f"/runs/{run.pk}/cancel/", follow=True).content.decode()
    assert "only a queued or running run can be cancelled" in again
    assert "cancelled by alice" in again


def test_failed_run_shows_its_reason(logged_in, provider):
    task = make_task(judge())
    run = run_backfill_create(task=task, start=_ago(days=1))
    run_fail(run_id=run.pk, reason="401 <bad key>", pause_task=True)
    page = logged_in.get(f"/runs/{run.pk}/").content.decode()
    assert "<strong>Failed:</strong> 401 &lt;bad key&gt;" in page


# --- View traces --------------------------------------------------------------------------------


def _browser_rows(client, url: str) -> set[str]:
    """The row ids (span, trace or session ids) a trace browser page lists."""
    page = client.get(url).content.decode()
    return set(re.findall(r'name="selected" value="([^"]+)"', page))


def test_view_traces_opens_exactly_the_items_the_run_evaluated(logged_in, provider, fast_retry):
    """The filter matches four traces in the window; the run evaluated two of them (a manual
    run over a selection): View traces shows those two, through a filter one can read."""
    task = make_task(
        code_check(), filter="span_kind = 'AGENT'", granularity="trace", quiet_seconds=0
    )
    traces = [factories.trace(start=_ago(hours=h))[0].trace.trace_id for h in (1, 2, 3, 50)]
    run = run_manual_create(
        project=task.project, granularity="trace", keys=[traces[0], traces[3]], task=task
    )
    assert run_work(run_id=run.pk, worker="test", retry=fast_retry) == "finished"
    url = run_traces_url(run)
    parts = urlsplit(url)
    assert parts.path == "/projects/default/traces/"
    assert parse_qs(parts.query) == {"q": [f"task_run = {run.pk}"], "range": ["all"]}
    page = logged_in.get(f"/runs/{run.pk}/").content.decode()
    assert f'href="{escape(url)}">View traces</a>' in page
    assert _browser_rows(logged_in, url) == {traces[0], traces[3]}
    browser = logged_in.get(url).content.decode()
    assert escape(f"task_run = {run.pk}") in browser  # the filter box shows it, editable
    # The whole project in the same window has all four.
    assert _browser_rows(logged_in, "/projects/default/traces/?range=all") == set(traces)


def test_view_traces_for_spans_and_sessions(logged_in, provider, fast_retry):
    task = make_task(code_check(), granularity="span", filter="span_kind = 'LLM'")
    spans = [factories.trace(start=_ago(hours=1), session_id="s/1")[2] for _ in range(3)]
    run = run_manual_create(
        project=task.project, granularity="span", keys=[spans[1].span_id], task=task
    )
    run_work(run_id=run.pk, worker="test", retry=fast_retry)
    url = run_traces_url(run)
    assert url.startswith("/projects/default/spans/?")
    assert _browser_rows(logged_in, url) == {spans[1].span_id}
    session_task = make_task(code_check(name="c2"), name="s", granularity="session")
    session_run = run_manual_create(
        project=task.project, granularity="session", keys=["s/1"], task=session_task
    )
    run_work(run_id=session_run.pk, worker="test", retry=fast_retry)
    session_url = run_traces_url(session_run)
    assert session_url.startswith("/projects/default/sessions/?")
    assert _browser_rows(logged_in, session_url) == {"s/1"}


def test_run_page_lists_its_items_paged_and_by_outcome(
    logged_in, provider, fake_openai, fast_retry, monkeypatch
):
    from evalhub.tasks import selectors

    monkeypatch.setattr(selectors, "RUN_ITEMS_PAGE", 2)
    fake_openai.answer("correct", "It says 30 days.")
    task = make_task(judge(), filter="span_kind = 'LLM'")
    fine = [factories.trace(start=_ago(hours=h))[2] for h in (1, 2, 3)]
    broken = factories.ingest(
        [factories.span_record(kind="LLM", name="llm", output_value=None, start=_ago(hours=4))]
    )[0]
    run = _worked_backfill(task, fast_retry)
    page = logged_in.get(f"/runs/{run.pk}/").content.decode()
    assert 'Items <span class="muted">(4)</span>' in page
    assert 'data-outcome="succeeded"' in page and '>Succeeded <span class="muted">3</span>' in page
    assert '>Skipped <span class="muted">1</span>' in page
    # The first page has two items (newest listed first), with their results and links.
    first = re.findall(r'data-item="(\d+)"', page)
    assert len(set(first)) == 2
    assert "It says 30 days." in page and '<span class="badge">correct</span>' in page
    span = fine[0]
    pane = f"/projects/default/traces/{span.trace.trace_id}/spans/{span.span_id}/"
    assert f'href="{pane}?result=correctness"' in page
    next_link = re.search(r'href="(/runs/\d+/\?after=\d+)"', page).group(1)
    second = logged_in.get(next_link).content.decode()
    assert set(re.findall(r'data-item="(\d+)"', second)).isdisjoint(first)
    # Only the skipped one, with its reason; an htmx request gets the list alone.
    skipped = logged_in.get(
        f"/runs/{run.pk}/?outcome=skipped",
        headers={"HX-Request": "true", "HX-Target": "run-items"},
    ).content.decode()
    assert skipped.lstrip().startswith('<section id="run-items"')
    assert broken.span_id in skipped and "skipped: missing variable {output}" in skipped
    assert fine[0].span_id not in skipped
    # Bad values fall back to all items, never a 500.
    for query in ("outcome=nope", "after=-1", "after=x", f"after={2**70}"):
        assert logged_in.get(f"/runs/{run.pk}/?{query}").status_code == 200


def test_the_span_pane_highlights_the_result_a_run_item_links_to(logged_in, provider, fast_retry):
    task = make_task(code_check(), filter="span_kind = 'LLM'")
    span = factories.trace(start=_ago(hours=1))[2]
    run = _worked_backfill(task, fast_retry)
    assert run.succeeded == 1
    pane = f"/projects/default/traces/{span.trace.trace_id}/spans/{span.span_id}/"
    page = logged_in.get(f"{pane}?result=mentions_refund").content.decode()
    assert re.search(
        r'<li class="eval[^"]*highlight[^"]*"[^>]*>\s*<strong>[^<]*mentions_refund', page
    )
    plain = logged_in.get(pane).content.decode()
    assert "highlight" not in re.findall(r'<li class="eval[^"]*"', plain)[0]


# --- "Evaluate with…" in the trace browser ------------------------------------------------------


def test_trace_browser_bulk_bar_loads_the_evaluate_choices(logged_in, provider):
    evaluator = judge()
    task = make_task(code_check())
    make_task(judge(name="elsewhere"), project="other", name="not-here")
    factories.trace()
    page = logged_in.get("/projects/default/traces/?range=all").content.decode()
    assert 'hx-get="/tasks/evaluate/default/traces/options/" hx-trigger="load"' in page
    options = logged_in.get("/tasks/evaluate/default/traces/options/").content.decode()
    assert f'<option value="evaluator:{evaluator.pk}">correctness</option>' in options
    assert f'<option value="task:{task.pk}">quality</option>' in options
    assert "not-here" not in options
    assert 'formaction="/tasks/evaluate/default/traces/" data-needs-selection disabled' in options
    assert logged_in.get("/tasks/evaluate/default/nope/options/").status_code == 404


def test_evaluate_selected_rows_makes_a_manual_run(logged_in, provider, fast_retry):
    check = code_check()
    a, b = factories.trace(), factories.trace()
    response = logged_in.post(
        "/tasks/evaluate/default/traces/",
        {
            "selected": [a[0].trace.trace_id, b[0].trace.trace_id],
            "evaluate_with": f"evaluator:{check.pk}",
            "next": "/projects/default/traces/?q=x",
        },
    )
    run = TaskRun.objects.get()
    assert response["Location"] == f"/runs/{run.pk}/"
    assert (run.kind, run.task, run.sampled, run.config["granularity"]) == (
        RunKind.MANUAL,
        None,
        2,
        "trace",
    )
    task = make_task(judge(), filter="span_kind = 'LLM'")
    response = logged_in.post(
        "/tasks/evaluate/default/spans/",
        {"selected": [a[1].span_id], "evaluate_with": f"task:{task.pk}"},
    )
    run = TaskRun.objects.get(task=task)
    assert response["Location"] == f"/runs/{run.pk}/"
    assert run.config["granularity"] == "span" and run.sampled == 1


def test_evaluate_selected_rejections_go_back_with_a_message(logged_in, provider):
    check = code_check()
    other = make_task(judge(), project="other")
    factories.trace()
    back = "/projects/default/traces/?q=x"
    cases = [
        ({"evaluate_with": f"evaluator:{check.pk}"}, "Could not evaluate: select at least one row"),
        (
            {"selected": ["nope"], "evaluate_with": f"evaluator:{check.pk}"},
            "not in project default: nope",
        ),
        ({"selected": ["x"], "evaluate_with": ""}, "Choose an evaluator or a task"),
        ({"selected": ["x"], "evaluate_with": f"task:{other.pk}"}, "Choose an evaluator or a task"),
    ]
    for data, message in cases:
        response = logged_in.post("/tasks/evaluate/default/traces/", {**data, "next": back})
        assert response["Location"] == back
        shown = logged_in.get("/tasks/").content.decode()
        assert message in shown, message
    assert not TaskRun.objects.exists()
    assert logged_in.post("/tasks/evaluate/nope/traces/", {}).status_code == 404
