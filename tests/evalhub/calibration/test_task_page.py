"""A task's Calibration page: sampling and disagreement routing set in a form (errors for bad
input, nothing saved), and the routing running by itself as labels arrive."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotations.queues.models import LabelingQueueItem
from annotations.queues.services import queue_create
from annotations.rubrics.services import annotation_config_create
from annotations.store.services import AnnotationInput, annotations_upsert
from evalhub.calibration.models import CalibrationSampling, DisagreementRouting
from evalhub.calibration.routing import disagreement_routing_set
from tests.evalhub.calibration.helpers import labelled_spans
from tests.evalhub.tasks.factories import judge, make_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(provider):  # type: ignore[no-untyped-def]
    config = annotation_config_create(
        name="Correctness", kind="CATEGORICAL", values=[{"label": "good"}, {"label": "bad"}]
    )
    task = make_task(judge("Correctness", provider_id=provider.pk))
    return {
        "task": task,
        "labels": queue_create(name="calibration", item_kind="SPAN", configs=[config]),
        "review": queue_create(name="review", item_kind="SPAN", configs=[config]),
        "traces": queue_create(name="traces", item_kind="TRACE", configs=[config]),
    }


@pytest.fixture
def writer(client, django_user_model):  # type: ignore[no-untyped-def]
    client.force_login(django_user_model.objects.create_user(username="wendy"))
    return client


def test_bad_input_is_a_form_error_and_nothing_is_saved(writer, setup):
    url = reverse("calibration:task", args=[setup["task"].pk])
    page = writer.get(url)
    assert page.status_code == 200 and b"Route disagreements" in page.content
    for data, field, message in [
        ({"sampling": "on", "queue": setup["labels"].pk}, "rate_percent", "Give the share"),
        ({"sampling": "on", "rate_percent": "150", "queue": setup["labels"].pk},
         "rate_percent", "less than or equal to 100"),
        ({"sampling": "on", "rate_percent": "abc", "queue": setup["labels"].pk},
         "rate_percent", "Enter a number"),
        ({"sampling": "on", "rate_percent": "2"}, "queue", "Choose the labeling queue"),
        ({"sampling": "on", "rate_percent": "2", "queue": setup["traces"].pk},
         "queue", "Select a valid choice"),
        ({"routing": "on", "review_queue": setup["review"].pk}, "judge", "judge-vs-person"),
        ({"routing": "on", "judge": "on"}, "review_queue", "Choose the queue"),
    ]:  # fmt: skip
        response = writer.post(url, data)
        html = response.content.decode()
        assert response.status_code == 400, data
        assert f'data-error="{field}"' in html and message in html, (data, html[-3000:])
    assert not CalibrationSampling.objects.exists() and not DisagreementRouting.objects.exists()


def test_the_settings_are_saved_shown_and_turned_off(writer, setup):
    task = setup["task"]
    url = reverse("calibration:task", args=[task.pk])
    data = {
        "sampling": "on", "rate_percent": "2", "queue": setup["labels"].pk, "stratify": "on",
        "routing": "on", "review_queue": setup["review"].pk, "judge": "on", "people": "on",
    }  # fmt: skip
    response = writer.post(url, data)
    assert response.status_code == 302 and response["Location"] == url
    sampling = CalibrationSampling.objects.get(task=task)
    assert (sampling.rate_percent, sampling.queue, sampling.stratify) == (2, setup["labels"], True)
    routing = DisagreementRouting.objects.get(task=task)
    assert (routing.queue, routing.judge, routing.people) == (setup["review"], True, True)
    html = writer.get(url).content.decode()
    assert "data-sampling-state" in html and "Sending 2.0 % of judged items" in html
    assert "data-routing-state" in html
    # htmx: the settings part comes back in place.
    off = writer.post(url, {"routing": "on", "review_queue": setup["review"].pk, "judge": "on"},
                      headers={"HX-Request": "true"})  # fmt: skip
    assert off.status_code == 200 and b"data-saved" in off.content and b"<html" not in off.content
    assert not CalibrationSampling.objects.filter(task=task).exists()
    assert DisagreementRouting.objects.get(task=task).people is False


def test_annotators_cannot_change_it(client, django_user_model, setup):
    from evalhub.identity.roles import annotator_role_grant

    user = django_user_model.objects.create_user(username="ann")
    annotator_role_grant(user=user)
    client.force_login(user)
    url = reverse("calibration:task", args=[setup["task"].pk])
    response = client.post(
        url, {"routing": "on", "review_queue": setup["review"].pk, "judge": "on"}
    )
    assert response.status_code in (302, 403) and not DisagreementRouting.objects.exists()


def test_disagreements_are_routed_as_labels_arrive(
    setup, celery_eager, django_capture_on_commit_callbacks
):
    review = setup["review"]
    disagreement_routing_set(task=setup["task"], queue=review, judge=True, people=True)
    with django_capture_on_commit_callbacks(execute=True):
        spans = labelled_spans(
            [("good", "good", 1), ("bad", "good", 1), ("good", "good", 1)], person="alice"
        )
    # alice disagrees with the judge on the second item: routed as her label arrived.
    queued = lambda: set(  # noqa: E731
        LabelingQueueItem.objects.filter(queue=review).values_list("span__span_id", flat=True)
    )
    assert queued() == {spans[1].span_id}
    # bo disagrees with alice (and the judge) on the third: routed when his label arrives.
    with django_capture_on_commit_callbacks(execute=True):
        annotations_upsert(
            items=[
                AnnotationInput("SPAN", spans[2].span_id, "Correctness", label="bad",
                                identifier="bo"),
                AnnotationInput("SPAN", spans[0].span_id, "Correctness", label="good",
                                identifier="bo"),
            ]
        )  # fmt: skip
    assert queued() == {spans[1].span_id, spans[2].span_id}
    assert DisagreementRouting.objects.get().routed == 2
    # Labels of another name route nothing.
    with django_capture_on_commit_callbacks(execute=True):
        annotations_upsert(
            items=[AnnotationInput("SPAN", spans[0].span_id, "Tone", label="rude", identifier="bo")]
        )
    assert queued() == {spans[1].span_id, spans[2].span_id}


def test_a_judges_root_span_result_routes_the_trace_people_labelled(
    provider, celery_eager, django_capture_on_commit_callbacks
):
    from tests import factories

    config = annotation_config_create(
        name="Correctness", kind="CATEGORICAL", values=[{"label": "good"}, {"label": "bad"}]
    )
    review = queue_create(name="trace review", item_kind="TRACE", configs=[config])
    task = make_task(judge("Correctness", provider_id=provider.pk), granularity="trace")
    disagreement_routing_set(task=task, queue=review, judge=True)
    root = factories.trace()[0]
    trace_id = root.trace.trace_id
    with django_capture_on_commit_callbacks(execute=True):
        annotations_upsert(
            items=[AnnotationInput("TRACE", trace_id, "Correctness", label="bad", identifier="al")]
        )
    assert not LabelingQueueItem.objects.filter(queue=review).exists()  # no judge result yet
    with django_capture_on_commit_callbacks(execute=True):
        annotations_upsert(
            items=[
                AnnotationInput("SPAN", root.span_id, "Correctness", annotator_kind="LLM",
                                label="good", metadata={"version": 1}),
            ]
        )  # fmt: skip
    routed = LabelingQueueItem.objects.filter(queue=review)
    assert list(routed.values_list("trace__trace_id", flat=True)) == [trace_id]
