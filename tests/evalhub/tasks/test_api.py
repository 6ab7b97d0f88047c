"""The /v1 task and run routes."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from annotations.models import Annotation
from evalhub.tasks.engine import run_work
from evalhub.tasks.models import RunStatus, Task, TaskRun
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


@pytest.fixture(autouse=True)
def _project():
    """Tasks attach to an existing project."""
    return factories.project("default")


@pytest.fixture
def api(client, auth):
    """``api("post", url, body)`` → the response, with the API key and JSON."""

    def call(method, url, body=None, **params):
        kwargs = {"headers": auth}
        if body is not None:
            kwargs |= {"data": body, "content_type": "application/json"}
        if params:
            url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
        return getattr(client, method)(url, **kwargs)

    return call


def _iso(value: datetime) -> str:
    return value.isoformat()


def _ms(value: datetime) -> datetime:
    """Times in answers have millisecond precision."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _create(api, **fields):
    body = {"name": "quality", "project": "default", "evaluators": ["mentions_refund"]} | fields
    response = api("post", "/v1/tasks", body)
    assert response.status_code == 201, response.content
    return response.json()


# --- auth -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/v1/tasks"),
        ("post", "/v1/tasks"),
        ("get", "/v1/tasks/1"),
        ("patch", "/v1/tasks/1"),
        ("delete", "/v1/tasks/1"),
        ("post", "/v1/tasks/1/pause"),
        ("post", "/v1/tasks/1/resume"),
        ("post", "/v1/tasks/1/runs"),
        ("get", "/v1/tasks/1/runs"),
        ("get", "/v1/runs/1"),
        ("get", "/v1/runs/1/items"),
        ("get", "/v1/tasks/1/runs/1/items"),
        ("post", "/v1/runs/1/cancel"),
    ],
)
def test_every_route_needs_an_api_key(client, method, url):
    response = getattr(client, method)(url, content_type="application/json")
    assert response.status_code == 401
    assert "API key" in response.json()["detail"]


# --- tasks ------------------------------------------------------------------------------------


def test_create_with_every_field_then_get(api, provider):
    factories.project("shop")
    evaluator = judge()
    check = code_check()
    response = api(
        "post",
        "/v1/tasks",
        {
            "name": " grounded ",
            "project": "shop",
            "evaluators": [
                {"evaluator": "correctness", "variables": {"input": "metadata.question"}},
                check.pk,
            ],
            "granularity": "trace",
            "filter": "span_kind == 'LLM'",
            "sampling_rate": 25,
            "continuous": False,
            "interval_seconds": 60,
            "quiet_seconds": 120,
            "provider": "fake",
            "model": "judge-large",
            "tracing": True,
            "description": "Is it grounded?",
        },
    )
    assert response.status_code == 201, response.content
    task = response.json()
    assert task["tracing"] is True
    assert task["name"] == "grounded" and task["project"] == "shop"
    assert task["evaluators"] == [
        {
            "evaluator": "correctness",
            "evaluator_id": evaluator.pk,
            "annotation_name": "correctness",
            "variables": {"input": "metadata.question"},
        },
        {
            "evaluator": "mentions_refund",
            "evaluator_id": check.pk,
            "annotation_name": "mentions_refund",
            "variables": {},
        },
    ]
    assert (task["granularity"], task["filter"], task["sampling_rate"]) == (
        "trace",
        "span_kind == 'LLM'",
        25.0,
    )
    assert (task["continuous"], task["interval_seconds"], task["quiet_seconds"]) == (
        False,
        60,
        120,
    )
    assert (task["provider"], task["provider_id"], task["model"]) == (
        "fake",
        provider.pk,
        "judge-large",
    )
    assert task["status"] == "active" and task["backfill_run_id"] is None
    assert task["description"] == "Is it grounded?"
    assert datetime.fromisoformat(task["created_at"]).tzinfo is not None

    fetched = api("get", f"/v1/tasks/{task['id']}").json()
    assert fetched == {k: v for k, v in task.items() if k != "backfill_run_id"}
    assert Task.objects.get(pk=task["id"]).task_evaluators.count() == 2


def test_list_filters_by_project_and_pages_newest_first(api):
    code_check()
    factories.project("other")
    ids = [_create(api, name=f"t{i}")["id"] for i in range(5)]
    _create(api, name="elsewhere", project="other")

    first = api("get", "/v1/tasks", project="default", limit=2).json()
    assert [t["id"] for t in first["data"]] == [ids[4], ids[3]]
    second = api("get", "/v1/tasks", project="default", limit=2, cursor=first["next_cursor"])
    third = api(
        "get", "/v1/tasks", project="default", limit=2, cursor=second.json()["next_cursor"]
    ).json()
    assert [t["id"] for t in second.json()["data"]] == [ids[2], ids[1]]
    assert [t["id"] for t in third["data"]] == [ids[0]] and third["next_cursor"] is None
    everything = api("get", "/v1/tasks").json()["data"]
    assert everything[0]["name"] == "elsewhere" and len(everything) == 6

    unknown = api("get", "/v1/tasks", project="nope")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "project 'nope' not found"}
    bad = api("get", "/v1/tasks", cursor="garbage")
    assert bad.status_code == 400 and bad.json()["detail"].startswith("cursor:")
    assert api("get", "/v1/tasks", limit=0).status_code == 422


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": "  "}, "name", "is required"),
        ({"project": "nope"}, "project", "no project named 'nope'"),
        ({"evaluators": []}, "evaluators", "choose at least one evaluator"),
        ({"evaluators": ["nope"]}, "evaluators", "no evaluator 'nope'"),
        (
            {"evaluators": [{"evaluator": "mentions_refund", "variables": {"x": "y"}}]},
            "evaluators",
            "",
        ),
        ({"filter": "span_kind =="}, "filter", ""),
        ({"sampling_rate": 150}, "sampling_rate", "must be from 0 to 100 (%)"),
        ({"granularity": "turn"}, "granularity", "must be one of span, trace, session"),
        ({"interval_seconds": 1}, "interval_seconds", "must be from 5 s"),
        ({"quiet_seconds": -1}, "quiet_seconds", "must be from 0"),
        ({"provider": "nope"}, "provider", "no provider 'nope'"),
    ],
)
def test_an_invalid_task_is_a_422_naming_the_field(api, changes, field, message):
    code_check()
    body = {"name": "quality", "project": "default", "evaluators": ["mentions_refund"]} | changes
    response = api("post", "/v1/tasks", body)
    assert response.status_code == 422, response.content
    assert response.json()["field"] == field
    assert response.json()["detail"].startswith(f"{field}: {message}")
    assert Task.objects.count() == 0


def test_malformed_bodies_are_422s_naming_the_field(api):
    code_check()
    missing = api("post", "/v1/tasks", {"name": "q", "project": "default"})
    assert missing.status_code == 422 and missing.json()["detail"].startswith("evaluators:")
    typo = api(
        "post",
        "/v1/tasks",
        {"name": "q", "project": "default", "evaluators": ["mentions_refund"], "sampling": 5},
    )
    assert typo.status_code == 422 and typo.json()["detail"].startswith("sampling:")
    wrong_type = api(
        "post",
        "/v1/tasks",
        {
            "name": "q",
            "project": "default",
            "evaluators": ["mentions_refund"],
            "interval_seconds": "often",
        },
    )
    assert wrong_type.status_code == 422
    assert wrong_type.json()["detail"].startswith("interval_seconds:")
    assert Task.objects.count() == 0


def test_a_taken_name_is_refused(api):
    code_check()
    _create(api)
    response = api(
        "post",
        "/v1/tasks",
        {"name": "quality", "project": "default", "evaluators": ["mentions_refund"]},
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": "name: project default already has a task named quality",
        "field": "name",
    }


def test_a_judge_without_provider_is_refused_naming_provider(api):
    judge()
    response = api(
        "post", "/v1/tasks", {"name": "q", "project": "default", "evaluators": ["correctness"]}
    )
    assert response.status_code == 422 and response.json()["field"] == "provider"


def test_patch_changes_only_what_it_gives(api, provider):
    code_check()
    judge()
    factories.project("other")
    task = _create(api, filter="span_kind == 'LLM'", quiet_seconds=30, provider="fake")
    url = f"/v1/tasks/{task['id']}"

    response = api("patch", url, {"sampling_rate": 10, "description": "ten percent"})
    assert response.status_code == 200, response.content
    patched = response.json()
    assert (patched["sampling_rate"], patched["description"]) == (10.0, "ten percent")
    assert patched["filter"] == "span_kind == 'LLM'" and patched["quiet_seconds"] == 30
    assert [e["evaluator"] for e in patched["evaluators"]] == ["mentions_refund"]

    patched = api(
        "patch",
        url,
        {
            "evaluators": ["correctness", {"evaluator": "mentions_refund"}],
            "quiet_seconds": None,
            "provider": None,
            "project": "other",
            "granularity": "trace",
        },
    ).json()
    assert [e["evaluator"] for e in patched["evaluators"]] == ["correctness", "mentions_refund"]
    assert patched["quiet_seconds"] is None and patched["effective_quiet_seconds"] == 60
    assert patched["provider"] is None and patched["project"] == "other"

    before = api("get", url).json()
    for body, field in (
        ({"filter": "nonsense ((", "sampling_rate": 50}, "filter"),
        ({"continuous": None}, "continuous"),
        ({"evaluators": ["correctness", "correctness"]}, "evaluators"),
        ({"project": "nope"}, "project"),
        ({"status": "paused"}, "status"),
    ):
        refused = api("patch", url, body)
        assert refused.status_code == 422, body
        assert refused.json()["detail"].startswith(f"{field}:")
    assert api("get", url).json() == before  # nothing was written
    assert api("patch", "/v1/tasks/999999", {"name": "x"}).status_code == 404


def test_pause_resume_and_delete(api):
    code_check()
    task = _create(api)
    url = f"/v1/tasks/{task['id']}"
    paused = api("post", f"{url}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    run = api("post", f"{url}/runs", {"data_start_time": _iso(timezone.now() - timedelta(days=1))})
    assert run.status_code == 409
    assert run.json() == {
        "detail": "task quality is paused; resume it first",
        "message": "task quality is paused; resume it first",
        "code": "task_paused",
    }
    resumed = api("post", f"{url}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"

    deleted = api("delete", url)
    assert deleted.status_code == 204 and deleted.content == b""
    assert api("get", url).status_code == 404
    assert api("get", url).json() == {"detail": f"no task #{task['id']}"}
    for method, path in (("delete", url), ("post", f"{url}/pause"), ("post", f"{url}/resume")):
        assert api(method, path).status_code == 404
    assert api("get", "/v1/tasks/abc").status_code == 422


# --- runs -------------------------------------------------------------------------------------


def test_a_backfill_started_by_the_api_reports_its_counts(api, fast_retry):
    code_check()
    task = _create(api, filter="span_kind == 'LLM'", continuous=False)
    base = timezone.now() - timedelta(days=40)
    for day in range(10):
        factories.trace(start=base + timedelta(days=day))
    response = api(
        "post",
        f"/v1/tasks/{task['id']}/runs",
        {
            "data_start_time": _iso(base - timedelta(hours=1)),
            "data_end_time": _iso(base + timedelta(days=8)),
            "max_spans": 5,
        },
    )
    assert response.status_code == 201, response.content
    run_id = response.json()["run_id"]
    queued = api("get", f"/v1/runs/{run_id}").json()
    assert (queued["status"], queued["kind"], queued["active"]) == ("queued", "backfill", True)
    assert queued["started_at"] is None and queued["duration_seconds"] is None

    assert run_work(run_id=run_id, worker="test", retry=fast_retry) == "finished"

    run = api("get", f"/v1/runs/{run_id}").json()
    assert (run["status"], run["active"], run["error"]) == ("completed", False, "")
    assert (run["task_id"], run["task"], run["project"]) == (task["id"], "quality", "default")
    assert run["evaluators"] == ["mentions_refund"] and run["max_spans"] == 5
    counts = run["counts"]
    assert (counts["matched"], counts["sampled"], counts["total"], counts["done"]) == (8, 5, 5, 5)
    assert (counts["evaluated"], counts["succeeded"], counts["errored"]) == (5, 5, 0)
    assert counts["percent"] == 100.0
    assert datetime.fromisoformat(run["data_start_time"]) == _ms(base - timedelta(hours=1))
    assert datetime.fromisoformat(run["data_end_time"]) == _ms(base + timedelta(days=8))
    assert datetime.fromisoformat(run["items_start_time"]) >= base + timedelta(days=3)
    assert run["finished_at"] and run["duration_seconds"] >= 0
    messages = [entry["message"] for entry in run["logs"]]
    assert messages[0].startswith("backfill queued:")
    assert "8 items match; 5 in the sample and the cap" in messages
    assert run["logs_total"] == len(messages) and run["logs_next_after"] is None
    assert Annotation.objects.filter(name="mentions_refund").count() == 5

    # The log a page at a time.
    first = api("get", f"/v1/runs/{run_id}", logs_limit=1).json()
    assert [e["message"] for e in first["logs"]] == messages[:1]
    rest = api(
        "get", f"/v1/runs/{run_id}", logs_limit=100, logs_after=first["logs_next_after"]
    ).json()
    assert [e["message"] for e in rest["logs"]] == messages[1:]
    assert api("get", f"/v1/runs/{run_id}", logs_limit=5000).status_code == 422


def test_a_run_with_errors_shows_them_in_its_log(api, provider, fake_openai, fast_retry):
    judge()
    task = _create(api, evaluators=["correctness"], filter="span_kind == 'LLM'")
    factories.trace(start=timezone.now() - timedelta(hours=2))
    factories.trace(start=timezone.now() - timedelta(hours=1))
    fake_openai.enqueue(Behavior.garbage())
    run_id = api(
        "post",
        f"/v1/tasks/{task['id']}/runs",
        {"data_start_time": _iso(timezone.now() - timedelta(days=1))},
    ).json()["run_id"]
    run_work(run_id=run_id, worker="test", retry=fast_retry, concurrency=1)
    run = api("get", f"/v1/runs/{run_id}").json()
    assert run["status"] == "completed"
    assert (run["counts"]["succeeded"], run["counts"]["errored"]) == (1, 1)
    assert run["counts"]["prompt_tokens"] > 0
    errors = api("get", f"/v1/runs/{run_id}", logs_level="error").json()
    assert errors["logs_total"] == 1
    assert errors["logs"][0]["evaluator"] == "correctness"
    assert errors["logs"][0]["target_kind"] == "span" and errors["logs"][0]["target_key"]


def test_a_runs_items_with_results_outcomes_and_pages(api, provider, fake_openai, fast_retry):
    judge()
    task = _create(api, evaluators=["correctness"], filter="span_kind == 'LLM'")
    spans = [factories.trace(start=timezone.now() - timedelta(hours=h))[2] for h in (1, 2)]
    no_output = factories.span_record(
        kind="LLM", name="llm", output_value=None, start=timezone.now() - timedelta(hours=3)
    )
    factories.ingest([no_output])
    fake_openai.answer("correct", "Right.")
    fake_openai.enqueue(Behavior.garbage())
    run_id = api(
        "post",
        f"/v1/tasks/{task['id']}/runs",
        {"data_start_time": _iso(timezone.now() - timedelta(days=1))},
    ).json()["run_id"]
    run_work(run_id=run_id, worker="test", retry=fast_retry, concurrency=1)

    body = api("get", f"/v1/tasks/{task['id']}/runs/{run_id}/items").json()
    assert body["next_cursor"] is None
    items = body["data"]
    assert [i["target_id"] for i in items] == [
        spans[0].span_id,
        spans[1].span_id,
        no_output.span_id,
    ]
    assert {i["outcome"] for i in items} == {"succeeded", "errored", "skipped"}
    succeeded = next(i for i in items if i["outcome"] == "succeeded")
    (result,) = succeeded["results"]
    assert (result["evaluator"], result["label"], result["score"]) == (
        "correctness",
        "correct",
        1.0,
    )
    assert result["explanation"] == "Right." and result["latency_ms"] >= 0
    errored = next(i for i in items if i["outcome"] == "errored")
    assert errored["results"][0]["error"].startswith("the provider's response cannot be read")
    skipped = next(i for i in items if i["outcome"] == "skipped")
    assert skipped["reason"] == "missing variable {output}: output has no value"
    assert skipped["target_kind"] == "span" and skipped["finished_at"]

    first = api("get", f"/v1/runs/{run_id}/items", limit=2).json()
    assert [i["id"] for i in first["data"]] == [i["id"] for i in items[:2]]
    rest = api("get", f"/v1/runs/{run_id}/items", limit=2, cursor=first["next_cursor"]).json()
    assert [i["id"] for i in rest["data"]] == [items[2]["id"]] and rest["next_cursor"] is None
    only = api("get", f"/v1/runs/{run_id}/items", outcome="skipped").json()["data"]
    assert [i["id"] for i in only] == [skipped["id"]]
    log = api("get", f"/v1/runs/{run_id}", logs_level="warning").json()["logs"]
    assert [(e["message"], e["count"]) for e in log] == [(f"skipped: {skipped['reason']}", 1)]

    assert api("get", f"/v1/runs/{run_id}/items", outcome="nope").status_code == 400
    assert api("get", f"/v1/runs/{run_id}/items", cursor="x").status_code == 400
    assert api("get", f"/v1/runs/{run_id}/items", cursor="9" * 40).status_code == 400
    assert api("get", f"/v1/runs/{run_id}/items", limit=0).status_code == 422
    assert api("get", "/v1/runs/999999/items").status_code == 404
    other = _create(api, name="other", evaluators=["correctness"])
    assert api("get", f"/v1/tasks/{other['id']}/runs/{run_id}/items").status_code == 404


def test_runs_are_listed_newest_first_a_page_at_a_time(api):
    code_check()
    task = _create(api)
    url = f"/v1/tasks/{task['id']}/runs"
    start = _iso(timezone.now() - timedelta(days=1))
    ids = [api("post", url, {"data_start_time": start}).json()["run_id"] for _ in range(3)]
    first = api("get", url, limit=2).json()
    assert [r["id"] for r in first["data"]] == [ids[2], ids[1]]
    assert first["data"][0]["counts"]["total"] == 0 and "logs" not in first["data"][0]
    second = api("get", url, limit=2, cursor=first["next_cursor"]).json()
    assert [r["id"] for r in second["data"]] == [ids[0]] and second["next_cursor"] is None
    assert api("get", "/v1/tasks/999999/runs").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "code", "detail"),
    [
        ({"data_start_time": "+1d"}, 400, "range_in_future", "the range starts in the future"),
        (
            {"data_start_time": "-1d", "data_end_time": "-2d"},
            400,
            "invalid_range",
            "data_start_time must be before data_end_time",
        ),
        ({"data_start_time": "-1d", "max_spans": 0}, 400, "invalid_max_spans", "max_spans must"),
        (
            {"data_start_time": "2026-01-01T00:00:00"},
            400,
            "invalid_range",
            "give times with a time zone",
        ),
    ],
)
def test_a_refused_run_carries_its_code(api, body, status, code, detail):
    code_check()
    task = _create(api)
    now, body = timezone.now(), dict(body)
    for key, value in body.items():
        if isinstance(value, str) and value[0] in "+-" and value.endswith("d"):
            body[key] = _iso(now + timedelta(days=int(value[:-1])))
    response = api("post", f"/v1/tasks/{task['id']}/runs", body)
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert response.json()["detail"].startswith(detail)
    assert response.json()["message"] == response.json()["detail"]
    assert TaskRun.objects.count() == 0


def test_run_input_errors(api, provider):
    code_check()
    task = _create(api)
    url = f"/v1/tasks/{task['id']}/runs"
    assert api("post", url, {}).json()["detail"].startswith("data_start_time:")
    bad_time = api("post", url, {"data_start_time": "last tuesday"})
    assert bad_time.status_code == 422 and bad_time.json()["detail"].startswith("data_start_time")
    start = _iso(timezone.now() - timedelta(days=1))
    assert api("post", "/v1/tasks/999999/runs", {"data_start_time": start}).status_code == 404
    # An LLM evaluator whose provider went away: the task's state is the problem.
    judge()
    judged = _create(api, name="judged", evaluators=["correctness"])
    provider.delete()
    missing = api("post", f"/v1/tasks/{judged['id']}/runs", {"data_start_time": start})
    assert missing.status_code == 409 and missing.json()["code"] == "provider_missing"


def test_create_with_a_backfill_starts_it_or_writes_nothing(api):
    code_check()
    start = timezone.now() - timedelta(days=2)
    task = _create(api, backfill={"data_start_time": _iso(start), "max_spans": 50})
    run = api("get", f"/v1/runs/{task['backfill_run_id']}").json()
    assert (run["kind"], run["task_id"], run["max_spans"]) == ("backfill", task["id"], 50)
    assert datetime.fromisoformat(run["data_start_time"]) == _ms(start)

    refused = api(
        "post",
        "/v1/tasks",
        {
            "name": "other",
            "project": "default",
            "evaluators": ["mentions_refund"],
            "backfill": {"data_start_time": _iso(timezone.now() + timedelta(days=1))},
        },
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "range_in_future"
    assert refused.json()["detail"].startswith("backfill: the range starts in the future")
    assert list(Task.objects.values_list("name", flat=True)) == ["quality"]
    assert TaskRun.objects.count() == 1


def test_cancel(api):
    code_check()
    task = _create(api)
    start = _iso(timezone.now() - timedelta(days=1))
    run_id = api("post", f"/v1/tasks/{task['id']}/runs", {"data_start_time": start}).json()[
        "run_id"
    ]
    cancelled = api("post", f"/v1/runs/{run_id}/cancel")
    assert cancelled.status_code == 200, cancelled.content
    assert (cancelled.json()["status"], cancelled.json()["active"]) == ("cancelled", False)
    assert TaskRun.objects.get(pk=run_id).status == RunStatus.CANCELLED
    again = api("post", f"/v1/runs/{run_id}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "not_active"
    assert api("post", "/v1/runs/999999/cancel").status_code == 404
    assert api("get", "/v1/runs/999999").json() == {"detail": "no run #999999"}


def test_a_task_made_by_the_services_reads_the_same(api):
    task = make_task(code_check(), name="from-services")
    listed = api("get", "/v1/tasks").json()["data"]
    assert [t["name"] for t in listed] == ["from-services"]
    assert listed[0]["id"] == task.pk
