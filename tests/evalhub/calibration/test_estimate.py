"""Estimates before a run: calls, tokens from the rendered prompts, cost from the price table,
duration at the provider's limits; the backfill API, the task form's and the alignment
workspace's estimate."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.urls import reverse

from annotations.store.services import AnnotationInput, annotations_upsert
from evalhub.calibration.estimate import (
    CHARS_PER_TOKEN,
    DEFAULT_LATENCY_S,
    JudgeInput,
    run_estimate,
)
from evalhub.evaluators.running import evaluation_prepare
from evalhub.evaluators.selectors import evaluator_version_latest
from evalhub.providers.models import Provider
from tests import factories
from tests.evalhub.calibration.helpers import labelled_spans
from tests.evalhub.tasks.factories import code_check, judge, make_task
from tracing.models import ModelPrice
from tracing.store.pricing import price_cache_clear

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def prices():  # type: ignore[no-untyped-def]
    price_cache_clear()
    ModelPrice.objects.create(
        model_prefix="judge-small", prompt_per_million=2, completion_per_million=8
    )
    yield
    price_cache_clear()


def test_tokens_cost_and_duration_from_the_rendered_prompts(provider):
    provider.max_concurrency, provider.requests_per_minute = 4, 0
    provider.save()
    evaluator = judge("Correctness", provider_id=provider.pk)
    spans = labelled_spans([("correct", None, 1)] * 3)
    version = evaluator_version_latest(evaluator=evaluator)
    prepared = [evaluation_prepare(version=version, span=span) for span in spans]
    chars = sum(
        sum(len(m["content"]) for m in p.request.messages)
        + len(__import__("json").dumps(p.request.tools))
        for p in prepared
    )
    estimate = run_estimate(items=100, judges=[JudgeInput(version=version)], spans=spans)
    (one,) = estimate.judges
    assert (estimate.items, estimate.judge_calls, one.sampled, one.skipped) == (100, 100, 3, 0)
    assert one.prompt_tokens_per_call == pytest.approx(chars / 3 / CHARS_PER_TOKEN)
    assert estimate.prompt_tokens == math.ceil(chars / 3 / CHARS_PER_TOKEN * 100)
    # The judge explains its answers (JUDGE's default): 80 completion tokens assumed.
    assert one.completion_tokens_per_call == 80 and not one.completion_from_history
    assert estimate.cost == pytest.approx(
        (estimate.prompt_tokens * 2 + estimate.completion_tokens * 8) / 1e6
    )
    # 100 calls of 2 s, 4 at a time.
    assert estimate.seconds == pytest.approx(100 * DEFAULT_LATENCY_S / 4)
    assert estimate.providers[0].limited_by == "concurrency"


def test_recorded_results_give_completion_tokens_and_latency_and_the_rate_limit_binds(provider):
    provider.max_concurrency, provider.requests_per_minute = 50, 60
    provider.save()
    evaluator = judge("Correctness", provider_id=provider.pk)
    spans = labelled_spans([("correct", None, 1)] * 2)
    annotations_upsert(
        items=[
            AnnotationInput(
                "SPAN",
                span.span_id,
                "Correctness",
                annotator_kind="LLM",
                label="correct",
                metadata={"completion_tokens": tokens, "latency_ms": 500},
            )
            for span, tokens in zip(spans, (30, 50), strict=True)
        ]
    )
    version = evaluator_version_latest(evaluator=evaluator)
    estimate = run_estimate(items=120, judges=[JudgeInput(version=version)], spans=spans)
    (one,) = estimate.judges
    assert one.completion_tokens_per_call == 40 and one.completion_from_history
    assert one.latency_s == 0.5
    # 120 calls at 60 a minute: 2 minutes, though 50 at once would take 1.2 s.
    assert estimate.seconds == pytest.approx(120.0)
    assert estimate.providers[0].limited_by == "requests per minute"


def test_unpriced_models_skips_and_code_evaluators(provider):
    evaluator = judge("Correctness", provider_id=provider.pk, model="mystery-model")
    code = code_check()
    spans = labelled_spans([("correct", None, 1)] * 2)
    empty = factories.trace(output_value=None)[0]  # no output: the judge would skip it
    estimate = run_estimate(
        items=10,
        judges=[
            JudgeInput(version=evaluator_version_latest(evaluator=evaluator)),
            JudgeInput(version=evaluator_version_latest(evaluator=code)),
        ],
        spans=[*spans, empty, empty],
    )
    (one,) = estimate.judges  # code calls no model
    assert (one.skipped, one.calls) == (2, 5)
    assert estimate.cost is None and estimate.unpriced == ["mystery-model"]


def test_no_provider_is_said_not_raised(db):
    Provider.objects.all().delete()
    evaluator = judge("Correctness")
    estimate = run_estimate(
        items=5,
        judges=[JudgeInput(version=evaluator_version_latest(evaluator=evaluator))],
        spans=[],
    )
    assert "no LLM provider" in estimate.judges[0].error and estimate.judge_calls == 0


def test_the_backfill_estimate_api_counts_the_sampled_window(client, auth, provider):
    evaluator = judge("Correctness", provider_id=provider.pk)
    for hour in range(6):
        factories.trace(start=factories.BASE_TIME + timedelta(hours=hour))
    task = make_task(evaluator, filter="span_kind = 'LLM'", sampling_rate=100.0)
    url = f"/v1/tasks/{task.pk}/backfill-estimate"
    body = {
        "data_start_time": (factories.BASE_TIME - timedelta(days=1)).isoformat(),
        "max_spans": 4,
    }
    answer = client.post(url, body, content_type="application/json", headers=auth).json()
    assert (answer["items"], answer["capped"], answer["judge_calls"]) == (4, True, 4)
    assert answer["tokens"] > 0 and answer["cost"] > 0 and answer["seconds"] > 0
    everything = client.post(
        url, body | {"max_spans": 100}, content_type="application/json", headers=auth
    ).json()
    assert (everything["items"], everything["capped"]) == (6, False)
    for bad, field in (
        ({"max_spans": 0}, "max_spans"),
        ({"data_end_time": (factories.BASE_TIME - timedelta(days=2)).isoformat()}, "data_end_time"),
        ({"data_start_time": "not a time"}, "data_start_time"),
    ):
        response = client.post(url, body | bad, content_type="application/json", headers=auth)
        assert response.status_code == 422 and field in str(response.json()["detail"])
    missing = client.post(
        "/v1/tasks/99999/backfill-estimate", body, content_type="application/json", headers=auth
    )
    assert missing.status_code == 404


def test_the_task_form_and_the_alignment_workspace_show_their_estimates(
    client, django_user_model, provider
):
    client.force_login(django_user_model.objects.create_user(username="wes", password="pw"))
    evaluator = judge("Correctness", provider_id=provider.pk)
    labelled_spans([("correct", "correct", 1)] * 3)
    form = {
        "name": "t",
        "project": "default",
        "evaluators": [str(evaluator.pk)],
        "granularity": "span",
        "filter": "",
        "sampling_rate": "100",
        "interval_seconds": "30",
        "backfill-start": "2026-11-01T00:00",
        "backfill-max_items": "1000",
    }
    html = client.post(reverse("calibration:task-estimate"), form).content.decode()
    # 3 traces of 3 spans; the retriever spans have no output, which the judge reads.
    assert "data-estimate-items>9" in html and "data-estimate-calls>6<" in html
    bad = client.post(reverse("calibration:task-estimate"), form | {"filter": "latency_ms >"})
    assert b"Filter" in bad.content and b"data-estimate" not in bad.content
    draft = {
        "project": "default",
        "template": "Is {output} a good answer to {input}?",
        "choices": "correct = 1\nincorrect = 0",
        "max_items": "2",
    }
    html = client.post(reverse("alignment:estimate", args=["Correctness"]), draft).content.decode()
    assert "data-estimate-items>2 <span" in html and "capped" in html
    none = client.post(reverse("alignment:estimate", args=["Correctness"]), draft | {"choices": ""})
    assert b"form-error" in none.content


def test_the_task_forms_test_run_is_estimated_before_it_runs(client, django_user_model, provider):
    client.force_login(django_user_model.objects.create_user(username="wes", password="pw"))
    evaluator = judge("Correctness", provider_id=provider.pk)
    labelled_spans([("correct", "correct", 1)] * 3)
    page = client.get(reverse("tasks:new")).content.decode()
    assert "data-test-estimate" in page and 'id="test-estimate"' in page
    form = {
        "name": "t",
        "project": "default",
        "evaluators": [str(evaluator.pk)],
        "granularity": "span",
        "filter": "",
        "sampling_rate": "100",
        "interval_seconds": "30",
        "estimate": "test",  # no backfill window: the test's few items
    }
    html = client.post(reverse("calibration:task-estimate"), form).content.decode()
    # 9 spans match; the test run evaluates at most 5 of them, one judge call each at most.
    assert 'id="test-estimate"' in html and "data-estimate-items>5 <span" in html
    assert "capped" in html and "data-estimate-duration" in html and "data-estimate-cost" in html
    bad = client.post(reverse("calibration:task-estimate"), form | {"sampling_rate": "x"})
    assert b"form-error" in bad.content and b"data-estimate-items" not in bad.content
