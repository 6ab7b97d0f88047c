"""The shadow pages: start a shadow (from a definition or an alignment run), the comparison
after a real run, promote and discard, bad input as form errors, roles and CSRF."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotations.store.services import AnnotationInput, annotations_upsert
from evalhub.alignment.models import AlignmentRun, AlignmentStatus
from evalhub.identity.roles import annotator_role_grant
from evalhub.shadow.models import ShadowResult, ShadowStatus, ShadowVersion
from evalhub.tasks.continuous import continuous_run_plan
from evalhub.tasks.engine import run_work
from tests import factories
from tests.evalhub.shadow.helpers import CANDIDATE, strict_reply
from tests.evalhub.tasks.factories import judge, make_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(provider, fake_openai, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr("evalhub.tasks.runs.run_dispatch", lambda run_id: None)
    fake_openai.reply = strict_reply({"question 0": "correct"})
    return make_task(judge(provider_id=provider.pk), filter="span_kind = 'LLM'")


@pytest.fixture
def writer(client, django_user_model):  # type: ignore[no-untyped-def]
    client.force_login(django_user_model.objects.create_user(username="wendy", password="pw"))
    return client


def _start(client, task, **data):  # type: ignore[no-untyped-def]
    evaluator = task.task_evaluators.get().evaluator
    fields = {"evaluator": str(evaluator.pk), "alignment_run": "", "candidate": ""} | data
    return client.post(reverse("shadow:list", args=[task.pk]), fields)


def test_start_run_compare_and_promote(writer, task, fast_retry):
    page = writer.get(reverse("tasks:detail", args=[task.pk]))
    assert reverse("shadow:list", args=[task.pk]) in page.content.decode()
    response = _start(writer, task, candidate=json.dumps(CANDIDATE))
    shadow = ShadowVersion.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("shadow:compare", args=[task.pk, shadow.pk])
    spans = [factories.trace(input_value=f"question {i}")[2] for i in range(3)]
    run = continuous_run_plan(task_id=task.pk, now=timezone.now() + timedelta(seconds=1))
    assert run_work(run_id=run.pk, worker="test", retry=fast_retry) == "finished"
    annotations_upsert(
        items=[AnnotationInput("SPAN", spans[1].span_id, "correctness", label="incorrect")]
    )
    compare = writer.get(reverse("shadow:compare", args=[task.pk, shadow.pk]))
    text = compare.content.decode()
    assert compare.status_code == 200
    assert 'data-verdict="better"' in text
    assert 'data-flip-count="fixed"' in text and text.count('data-flip="') == 2
    trace_link = reverse("detail:trace", args=["default", spans[1].trace.trace_id])
    assert f"{trace_link}?span={spans[1].span_id}" in text
    only_fixed = writer.get(
        reverse("shadow:compare", args=[task.pk, shadow.pk]), {"flips": "fixed"}
    )
    assert only_fixed.content.decode().count('data-flip="') == 1
    by_day = writer.get(reverse("shadow:compare", args=[task.pk, shadow.pk]), {"bucket": "day"})
    assert by_day.status_code == 200
    promoted = writer.post(reverse("shadow:promote", args=[task.pk, shadow.pk]), follow=True)
    assert "Promoted: v2 of correctness" in promoted.content.decode()
    shadow.refresh_from_db()
    assert shadow.status == ShadowStatus.PROMOTED and shadow.promoted_version.number == 2
    # Promoted once only; the buttons are gone.
    again = writer.post(reverse("shadow:promote", args=[task.pk, shadow.pk]), follow=True)
    assert "Not promoted" in again.content.decode()
    assert task.task_evaluators.get().evaluator.versions.count() == 2


def test_start_from_an_alignment_run_and_discard(writer, task, provider, fast_retry):
    evaluator = task.task_evaluators.get().evaluator
    alignment = AlignmentRun.objects.create(
        evaluator=evaluator,
        project=task.project,
        base_version=evaluator.versions.get(),
        draft={**CANDIDATE, "provider_id": provider.pk},
        status=AlignmentStatus.COMPLETED,
    )
    assert _start(writer, task, alignment_run=str(alignment.pk)).status_code == 302
    shadow = ShadowVersion.objects.get()
    assert shadow.alignment_run == alignment
    assert shadow.candidate["template"] == CANDIDATE["template"]
    factories.trace()
    run = continuous_run_plan(task_id=task.pk, now=timezone.now() + timedelta(seconds=1))
    assert run_work(run_id=run.pk, worker="test", retry=fast_retry) == "finished"
    assert ShadowResult.objects.count() == 1
    page = writer.post(reverse("shadow:discard", args=[task.pk, shadow.pk]), follow=True)
    assert "Discarded the shadow and its 1 results." in page.content.decode()
    assert not ShadowResult.objects.exists()
    listing = writer.get(reverse("shadow:list", args=[task.pk])).content.decode()
    assert f'data-shadow="{shadow.pk}"' in listing and "Discarded" in listing


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"candidate": "{not json"}, "not JSON"),
        ({"candidate": "[1, 2]"}, "an object"),
        ({"candidate": json.dumps({"kind": "LLM"})}, "template"),
        ({}, "give a candidate definition or an alignment run"),
        ({"evaluator": "999999", "candidate": json.dumps(CANDIDATE)}, "Select a valid choice"),
    ],
)
def test_bad_input_is_a_form_error_and_nothing_is_written(writer, task, data, error):
    response = _start(writer, task, **data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not ShadowVersion.objects.exists()


def test_a_second_running_shadow_is_refused(writer, task):
    assert _start(writer, task, candidate=json.dumps(CANDIDATE)).status_code == 302
    other = {**CANDIDATE, "template": "{input} {output} strictly?"}
    response = _start(writer, task, candidate=json.dumps(other))
    assert (
        response.status_code == 400 and "already has a running shadow" in response.content.decode()
    )
    assert ShadowVersion.objects.count() == 1


def test_unknown_tasks_and_shadows_are_404(writer, task):
    assert writer.get(reverse("shadow:list", args=[999999])).status_code == 404
    assert writer.get(reverse("shadow:compare", args=[task.pk, 999999])).status_code == 404
    assert writer.post(reverse("shadow:promote", args=[task.pk, 999999])).status_code == 404


def test_annotators_are_refused_and_csrf_is_checked(client, django_user_model, task):
    annotator = django_user_model.objects.create_user(username="ann", password="pw")
    annotator_role_grant(user=annotator)
    client.force_login(annotator)
    assert client.get(reverse("shadow:list", args=[task.pk])).status_code == 403
    assert _start(client, task, candidate=json.dumps(CANDIDATE)).status_code == 403
    assert not ShadowVersion.objects.exists()
    member = django_user_model.objects.create_user(username="mia", password="pw")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    assert _start(strict, task, candidate=json.dumps(CANDIDATE)).status_code == 403
    assert not ShadowVersion.objects.exists()
    evaluator = task.task_evaluators.get().evaluator
    shadow = ShadowVersion.objects.create(
        task=task, evaluator=evaluator, candidate=CANDIDATE, base_version=evaluator.versions.get()
    )
    assert strict.post(reverse("shadow:promote", args=[task.pk, shadow.pk])).status_code == 403
    assert client.post(reverse("shadow:discard", args=[task.pk, shadow.pk])).status_code == 403
    shadow.refresh_from_db()
    assert shadow.is_running
