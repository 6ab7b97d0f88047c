"""The demo's evaluators and task (evalhub.tasks.demo, called by ``seed_demo``): the demo's LLM
results are the results of a task made from the template library, and its run leads to them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from annotations.models import Annotation, AnnotationSource
from evalhub.evaluators.models import Evaluator
from evalhub.tasks.demo import DEMO_TASK
from evalhub.tasks.models import RunStatus, Task, TaskStatus
from evalhub.tasks.views.run import run_traces_url
from tracing.demo import demo_seed

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_the_demo_has_its_evaluators_and_a_task_whose_results_it_shows(client):
    demo_seed(traces=40, project="demo", now=NOW)
    evaluators = {e.name: e for e in Evaluator.objects.all()}
    assert set(evaluators) == {"Correctness", "Hallucination"}
    assert evaluators["Correctness"].template_key == "qa_correctness"
    assert evaluators["Hallucination"].template_key == "hallucination"

    task = Task.objects.get(project__name="demo", name=DEMO_TASK)
    assert task.status == TaskStatus.PAUSED and "AI provider" in task.paused_reason
    assert [te.evaluator.name for te in task.task_evaluators.all()] == [
        "Correctness",
        "Hallucination",
    ]
    (run,) = task.runs.all()
    assert run.status == RunStatus.COMPLETED
    results = Annotation.objects.filter(project__name="demo", annotator_kind="LLM")
    assert results.exists()
    assert set(results.values_list("source", flat=True)) == {AnnotationSource.TASK}
    assert {a.metadata["run_id"] for a in results} == {run.pk}
    evaluated = set(results.values_list("span__span_id", flat=True))
    assert set(run.items.values_list("target_key", flat=True)) == evaluated
    assert (run.sampled, run.done, run.evaluated, run.succeeded) == (
        len(evaluated),
        len(evaluated),
        results.count(),
        results.count(),
    )

    client.force_login(get_user_model().objects.create_user("alice"))
    listing = client.get("/evaluators/").content.decode()
    assert "No evaluators yet" not in listing
    assert "Correctness" in listing and "Hallucination" in listing
    # The run leads to exactly what it evaluated.
    browser = client.get(run_traces_url(run) + "&size=200").content.decode()
    assert set(re.findall(r'name="selected" value="([^"]+)"', browser)) == evaluated
    run_page = client.get(f"/runs/{run.pk}/").content.decode()
    assert f'Items <span class="muted">({len(evaluated)})</span>' in run_page


def test_seeding_the_demo_again_finds_its_evaluators_task_and_run():
    demo_seed(traces=30, project="demo", now=NOW)
    task = Task.objects.get(name=DEMO_TASK)
    run = task.runs.get()
    items = sorted(run.items.values_list("target_key", "results"))
    annotations = sorted(Annotation.objects.values_list("span__span_id", "name", "label"))

    demo_seed(traces=30, project="demo", now=NOW + timedelta(days=1))
    assert Evaluator.objects.count() == 2 and Task.objects.count() == 1
    assert task.runs.get() == run
    assert sorted(run.items.values_list("target_key", "results")) == items
    assert sorted(Annotation.objects.values_list("span__span_id", "name", "label")) == annotations
    # A second demo project gets its own task with the same evaluators.
    demo_seed(traces=10, project="other demo", now=NOW)
    assert Evaluator.objects.count() == 2
    assert Task.objects.filter(name=DEMO_TASK).count() == 2
