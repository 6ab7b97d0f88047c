"""The alignment workspace pages: the draft form, a run's comparison, save, golden, roles."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotations.datasets.models import Dataset
from evalhub.alignment.models import AlignmentRun
from evalhub.alignment.services import alignment_run_work
from evalhub.identity.roles import annotator_role_grant
from tests.evalhub.calibration.helpers import labelled_spans, oracle_reply
from tests.evalhub.tasks.factories import judge

pytestmark = pytest.mark.django_db(transaction=True)

PEOPLE = ["correct", "correct", "incorrect", "incorrect"]


@pytest.fixture
def writer(client, django_user_model):  # type: ignore[no-untyped-def]
    user = django_user_model.objects.create_user(username="wendy", password="pw")
    client.force_login(user)
    return client


@pytest.fixture
def labelled(provider):  # type: ignore[no-untyped-def]
    evaluator = judge("Correctness", provider_id=provider.pk)
    labelled_spans([(h, "correct", 1) for h in PEOPLE], name="Correctness")
    return evaluator


def _post_draft(client, **changes):  # type: ignore[no-untyped-def]
    data = {
        "project": "default",
        "template": "Q: {input}\nA: {output}\nStrictly: correct or incorrect?",
        "choices": "correct = 1\nincorrect = 0",
        "max_items": "500",
        "system_prompt": "",
        "model": "",
        "provider": "",
    } | changes
    return client.post(reverse("alignment:workspace", args=["Correctness"]), data)


def test_the_draft_form_runs_and_the_run_page_compares(
    writer, labelled, fake_openai, alignment_dispatched
):
    page = writer.get(reverse("alignment:workspace", args=["Correctness"]))
    assert page.status_code == 200 and b"Is it correct?" in page.content  # v1's template
    response = _post_draft(writer)
    run = AlignmentRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("alignment:run", args=["Correctness", run.pk])
    assert alignment_dispatched == [run.pk]
    queued = writer.get(response["Location"]).content.decode()
    assert 'hx-trigger="every 2s"' in queued and "0 of 4" in queued
    fake_openai.reply = oracle_reply(
        {f"question {i}": label for i, label in enumerate(PEOPLE)}, default="correct"
    )
    alignment_run_work(run_id=run.pk)
    html = writer.get(response["Location"]).content.decode()
    assert 'hx-trigger="every 2s"' not in html
    assert 'data-verdict="better"' in html
    assert 'data-flip="fixed"' in html and html.count('data-flip="fixed"') == 2
    fixed_only = writer.get(response["Location"], {"flips": "broken"}).content.decode()
    assert 'data-flip="fixed"' not in fixed_only
    saved = writer.post(reverse("alignment:save", args=["Correctness", run.pk]))
    assert saved["Location"] == reverse("evaluators:detail", args=["Correctness"])
    assert labelled.versions.count() == 2
    golden = writer.post(
        reverse("alignment:golden", args=["Correctness", run.pk]), {"name": "golden"}
    )
    assert golden.status_code == 302 and Dataset.objects.get(name="golden").examples.count() == 4


def test_bad_drafts_are_form_errors_and_nothing_runs(writer, labelled, alignment_dispatched):
    for changes, message in (
        ({"choices": "correct = high"}, b"line 1: the score must be a number"),
        ({"template": ""}, b"This field is required"),
        ({"project": "<script>nope</script>"}, b"Select a valid choice"),
        ({"max_items": "-3"}, b"greater than or equal to 1"),
        ({"choices": "only"}, b"choice"),
    ):
        response = _post_draft(writer, **changes)
        assert response.status_code == 400, changes
        assert message in response.content, (changes, response.content[-2000:])
    assert not AlignmentRun.objects.exists() and alignment_dispatched == []


def test_unknown_runs_and_evaluators_are_404(writer, labelled):
    assert writer.get(reverse("alignment:run", args=["Correctness", 999])).status_code == 404
    assert writer.get(reverse("alignment:workspace", args=["nobody"])).status_code == 404


def test_annotators_can_neither_see_nor_run_a_draft(client, django_user_model, labelled):
    annotator = django_user_model.objects.create_user(username="ann", password="pw")
    annotator_role_grant(user=annotator)
    client.force_login(annotator)
    assert client.get(reverse("alignment:workspace", args=["Correctness"])).status_code == 403
    assert _post_draft(client).status_code == 403
    assert not AlignmentRun.objects.exists()
