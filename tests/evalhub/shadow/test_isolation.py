"""A shadow's results never show as the evaluator's: after a real run (the engine, the fake
judge) the candidate's label is nowhere the evaluator's results are read — the filter
language, the trace browser's badges, Score trends, agreement, exports, the Phoenix-compatible
API and monitors — while the active version's results are, in each of them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db.models import Q
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotations.store.selectors import agreement_ratings
from annotations.store.services import AnnotationInput, annotations_upsert
from evalhub.calibration.selectors import calibration_pairs
from evalhub.monitors.metrics import metric_window
from evalhub.shadow.models import ShadowResult
from evalhub.shadow.services import shadow_start
from evalhub.tasks.continuous import continuous_run_plan
from evalhub.tasks.engine import run_work
from evalhub.trends.selectors import score_trends
from tests import factories
from tests.evalhub.shadow.helpers import CANDIDATE, strict_reply
from tests.evalhub.tasks.factories import judge, make_task
from tracing.query.lists import span_queryset

pytestmark = pytest.mark.django_db

SHADOW_LABEL = "flagged-by-shadow"
SHADOW_CANDIDATE = {
    **CANDIDATE,
    "choices": [{"label": "correct", "score": 1}, {"label": SHADOW_LABEL, "score": 0.25}],
}


@pytest.fixture
def world(provider, fake_openai, monkeypatch, fast_retry):  # type: ignore[no-untyped-def]
    """Three LLM spans judged "correct" by the active version and SHADOW_LABEL by the
    candidate; a person's label on the first (so agreement has pairs)."""
    monkeypatch.setattr("evalhub.tasks.runs.run_dispatch", lambda run_id: None)
    fake_openai.reply = strict_reply(default=SHADOW_LABEL)
    task = make_task(judge(provider_id=provider.pk), filter="span_kind = 'LLM'")
    evaluator = task.task_evaluators.get().evaluator
    shadow_start(task=task, evaluator=evaluator, candidate={**SHADOW_CANDIDATE})
    spans = [factories.trace(start=factories.BASE_TIME + timedelta(hours=i))[2] for i in range(3)]
    run = continuous_run_plan(task_id=task.pk, now=timezone.now() + timedelta(seconds=1))
    assert run_work(run_id=run.pk, worker="test", retry=fast_retry) == "finished"
    annotations_upsert(
        items=[AnnotationInput("SPAN", spans[0].span_id, "correctness", label="correct")]
    )
    # The candidate did judge every span, differently: there is something to leak.
    assert sorted(ShadowResult.objects.values_list("label", flat=True)) == [SHADOW_LABEL] * 3
    return task.project, spans


def test_the_filter_language(world):
    project, spans = world

    def matching(expression: str) -> set[str]:
        found = span_queryset(project=project, filter_expr=expression)
        return set(found.values_list("span_id", flat=True))

    assert matching("eval.correctness.label = 'correct'") == {s.span_id for s in spans}
    assert matching(f"eval.correctness.label = '{SHADOW_LABEL}'") == set()
    assert matching("eval.correctness.score < 1") == set()


def test_the_trace_browser_and_the_trace_page(world, admin_client: Client):
    project, spans = world
    listing = admin_client.get(reverse("tracing:spans", args=[project.name]), {"range": "all"})
    assert listing.status_code == 200
    text = listing.content.decode()
    # The three spans' badges: the active version's result (and the person's on the first).
    assert text.count('class="badge ok" title="correctness: by rule">correctness: correct<') == 3
    assert SHADOW_LABEL not in text
    page = admin_client.get(reverse("detail:trace", args=[project.name, spans[1].trace.trace_id]))
    assert page.status_code == 200 and SHADOW_LABEL not in page.content.decode()


def test_score_trends(world):
    project, _ = world
    trends = score_trends(project=project, start=None, end=None, bucket="day")
    (trend,) = [t for t in trends if t.name == "correctness"]
    assert (trend.labels, trend.total, trend.mean_score) == (["correct"], 3, 1.0)


def test_agreement_and_calibration(world):
    project, _ = world
    ratings = agreement_ratings(project=project, name="correctness")
    assert {r.label for r in ratings} == {"correct"}
    pairs = calibration_pairs(project=project, name="correctness")
    assert [(p.human, p.judge, p.version) for p in pairs] == [("correct", "correct", 1)]


def test_exports(world, admin_client: Client):
    project, spans = world
    for export_format in ("jsonl", "csv"):
        response = admin_client.get(
            reverse("tracing:export", args=[project.name, "spans"]),
            {"format": export_format, "range": "all"},
        )
        assert response.status_code == 200
        body = b"".join(response.streaming_content) if response.streaming else response.content
        text = body.decode()
        assert spans[0].span_id in text and SHADOW_LABEL not in text


def test_the_phoenix_compatible_api(world):
    project, spans = world
    client = Client(headers={"Authorization": f"Bearer {factories.api_key()}"})
    response = client.get(
        f"/v1/projects/{project.name}/span_annotations",
        {"span_ids": [s.span_id for s in spans]},
    )
    assert response.status_code == 200, response.content
    data = json.loads(response.content)["data"]
    machine = [a for a in data if a["annotator_kind"] == "LLM"]
    assert len(machine) == 3 and {a["result"]["label"] for a in machine} == {"correct"}


def test_monitors(world):
    project, _ = world
    window = {
        "project": project,
        "filter_q": Q(),
        "start": factories.BASE_TIME - timedelta(hours=1),
        "end": factories.BASE_TIME + timedelta(days=1),
        "result_name": "correctness",
    }
    shadow = metric_window(metric="eval_label_rate", label=SHADOW_LABEL, **window)
    active = metric_window(metric="eval_label_rate", label="correct", **window)
    mean = metric_window(metric="eval_mean_score", **window)
    assert {k: (s.samples, s.value) for k, s in shadow.items()} == {"": (3, 0.0)}
    assert {k: (s.samples, s.value) for k, s in active.items()} == {"": (3, 1.0)}
    assert {k: (s.samples, s.value) for k, s in mean.items()} == {"": (3, 1.0)}
