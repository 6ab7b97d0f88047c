"""Disagreements routed to a review queue: judge against person, person against person."""

from __future__ import annotations

import pytest

from annotations.queues.models import LabelingQueueItem
from annotations.queues.services import queue_create
from annotations.rubrics.services import annotation_config_create
from annotations.store.services import AnnotationInput, annotations_upsert
from tests.evalhub.calibration.helpers import labelled_spans
from tests.evalhub.tasks.factories import judge

pytestmark = pytest.mark.django_db


def test_judge_and_people_disagreements_go_to_the_review_queue(client, auth):
    judge("Correctness")
    spans = labelled_spans(
        [("good", "good", 1), ("bad", "good", 1), ("good", "bad", 1), ("good", "good", 1)]
    )
    # Two people disagree on the last item, where the judge agrees with the first.
    annotations_upsert(
        items=[
            AnnotationInput("SPAN", spans[3].span_id, "Correctness", label="bad", identifier="bo")
        ]
    )
    config = annotation_config_create(
        name="Correctness", kind="CATEGORICAL", values=[{"label": "good"}, {"label": "bad"}]
    )
    review = queue_create(name="review", item_kind="SPAN", configs=[config])
    url = "/v1/evaluators/Correctness/disagreements/route"
    body = {"project": "default", "queue_id": review.pk}
    first = client.post(url, body, content_type="application/json", headers=auth).json()
    # Judge vs person: items 1 and 2, and item 3 (bo's "bad" against the judge's "good").
    assert (first["disagreements"], first["added"]) == (3, 3)
    queued = set(
        LabelingQueueItem.objects.filter(queue=review).values_list("span__span_id", flat=True)
    )
    assert queued == {spans[1].span_id, spans[2].span_id, spans[3].span_id}
    again = client.post(
        url, body | {"people": True}, content_type="application/json", headers=auth
    ).json()
    assert (again["added"], again["already_queued"]) == (0, 3)
    traces = queue_create(name="trace review", item_kind="TRACE", configs=[config])
    other = client.post(
        url, body | {"queue_id": traces.pk}, content_type="application/json", headers=auth
    ).json()
    assert (other["added"], other["other_kind"]) == (0, 3)
    missing = client.post(
        url, body | {"queue_id": 999}, content_type="application/json", headers=auth
    )
    assert missing.status_code == 404 and "queue_id" in missing.json()["detail"]
