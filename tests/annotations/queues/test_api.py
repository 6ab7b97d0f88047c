"""The labeling queue API (/v1/annotation_queues): create, list, add items, items, progress,
and bad input that names the field and writes nothing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from annotations.queues.labelling import queue_item_next, queue_item_skip, queue_item_submit
from annotations.queues.models import LabelingQueue, LabelingQueueItem
from annotations.rubrics.services import annotation_config_create
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/v1/annotation_queues"


def send(client, method, url, auth, body=None):
    return getattr(client, method)(
        url,
        json.dumps(body) if body is not None else None,
        content_type="application/json",
        headers=auth,
    )


@pytest.fixture
def correctness():
    return annotation_config_create(
        name="correctness",
        kind="CATEGORICAL",
        values=[{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
    )


@pytest.fixture
def people(django_user_model):
    return [django_user_model.objects.create_user(username=n) for n in ("ann", "bob")]


@pytest.fixture
def roots():
    return [
        factories.trace(start=factories.BASE_TIME + timedelta(minutes=i), llm_latency_ms=400 * i)[0]
        for i in range(5)
    ]


@pytest.fixture
def queue_id(client, auth, correctness, people):
    response = send(
        client,
        "post",
        URL,
        auth,
        {
            "name": "review",
            "instructions": "Check the answer.",
            "item_kind": "TRACE",
            "assignment_mode": "ALL",
            "configs": ["correctness"],
            "assignees": ["ann", "bob"],
        },
    )
    assert response.status_code == 200, response.content
    return response.json()["data"]["id"]


def test_create_and_list(client, auth, queue_id):
    listed = send(client, "get", URL, auth).json()["data"]
    assert len(listed) == 1
    queue = listed[0]
    assert queue["id"] == queue_id
    assert queue["name"] == "review"
    assert queue["item_kind"] == "TRACE"
    assert queue["assignment_mode"] == "ALL"
    assert queue["configs"] == ["correctness"]
    assert queue["assignees"] == ["ann", "bob"]
    by_name = send(client, "get", f"{URL}/review", auth).json()["data"]
    assert by_name["id"] == queue_id


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"item_kind": "DATASET"}, 400, "item_kind"),
        ({"assignment_mode": "SOMETIMES"}, 400, "assignment_mode"),
        ({"configs": []}, 400, "configs"),
        ({"configs": ["correctness", "tone", "style"]}, 400, "configs"),
        ({"assignees": ["ann", "nobody"]}, 400, "assignees"),
        ({"name": "  "}, 400, "name"),
        ({"name": None}, 422, "name"),
        ({"configs": "correctness"}, 422, "configs"),
    ],
)
def test_bad_queues_are_refused_naming_the_field(
    client, auth, correctness, people, change, status, field
):
    body = {"name": "q", "item_kind": "SPAN", "configs": ["correctness"], **change}
    response = send(client, "post", URL, auth, body)
    assert response.status_code == status, response.content
    assert response.json()["detail"].startswith(field)
    assert not LabelingQueue.objects.exists()


def test_unknown_configs_and_users_are_all_listed(client, auth, correctness):
    response = send(
        client,
        "post",
        URL,
        auth,
        {"name": "q", "item_kind": "SPAN", "configs": ["tone", "correctness", "style"]},
    )
    assert response.json()["detail"] == "configs: unknown annotation configs: tone, style"


def test_a_taken_name_is_409_and_configs_go_by_name_or_id(client, auth, queue_id, correctness):
    body = {"name": "review", "item_kind": "SPAN", "configs": [str(correctness.pk)]}
    response = send(client, "post", URL, auth, body)
    assert response.status_code == 409
    assert response.json()["detail"] == "a queue named 'review' already exists"
    created = send(client, "post", URL, auth, {**body, "name": "other"})
    assert created.json()["data"]["configs"] == ["correctness"]


def test_add_items_by_ids_and_by_filter(client, auth, queue_id, roots):
    url = f"{URL}/{queue_id}/items"
    by_ids = send(client, "post", url, auth, {"trace_ids": [roots[0].trace.trace_id]})
    assert by_ids.status_code == 200
    assert by_ids.json()["data"] == {"added": 1, "already_queued": 0}

    by_filter = send(
        client,
        "post",
        url,
        auth,
        {"project": "default", "filter": "span_kind = 'LLM' and latency_ms >= 800", "limit": 2},
    )
    assert by_filter.status_code == 200, by_filter.content
    assert by_filter.json()["data"] == {"added": 2, "already_queued": 0}
    assert LabelingQueueItem.objects.filter(queue_id=queue_id).count() == 3

    again = send(client, "post", url, auth, {"project": "default", "filter": ""})
    assert again.json()["data"] == {"added": 2, "already_queued": 3}


@pytest.mark.parametrize(
    ("body", "status", "start"),
    [
        ({"span_ids": ["abc"]}, 400, "span_ids: this queue takes traces"),
        ({"trace_ids": []}, 400, "trace_ids: must not be empty"),
        ({"trace_ids": ["ok", 5]}, 422, "trace_ids.1"),
        ({}, 400, "trace_ids: send the items as trace_ids"),
        ({"filter": "latncy_ms > 1", "project": "default"}, 400, "filter: unknown field"),
        ({"filter": "latency_ms > 1"}, 400, "project: a filter needs"),
        ({"filter": "", "project": "default", "trace_ids": ["x"]}, 400, "filter: send either"),
        ({"filter": "", "project": "default", "limit": 0}, 400, "limit: must be"),
        ({"filter": "", "project": "default", "sample_percent": 0}, 400, "sample_percent"),
        ({"trace_ids": ["x"], "limit": 3}, 400, "limit: only with a filter"),
        ({"filter": "", "project": "nope"}, 404, "project 'nope' not found"),
    ],
)
def test_bad_items_are_refused_and_nothing_is_added(
    client, auth, queue_id, roots, body, status, start
):
    response = send(client, "post", f"{URL}/{queue_id}/items", auth, body)
    assert response.status_code == status, response.content
    assert response.json()["detail"].startswith(start), response.json()
    assert not LabelingQueueItem.objects.exists()


def test_ids_not_found_are_all_listed_and_nothing_is_added(client, auth, queue_id, roots):
    response = send(
        client,
        "post",
        f"{URL}/{queue_id}/items",
        auth,
        {"trace_ids": [roots[0].trace.trace_id, "missing-1", "missing-2"]},
    )
    assert response.status_code == 404
    assert response.json()["detail"] == "trace_ids: not found: missing-1, missing-2"
    assert not LabelingQueueItem.objects.exists()


def test_an_unknown_queue_is_404(client, auth):
    assert send(client, "get", f"{URL}/404/items", auth).status_code == 404
    response = send(client, "post", f"{URL}/nope/items", auth, {"trace_ids": ["x"]})
    assert response.status_code == 404
    assert response.json()["detail"] == "annotation queue 'nope' not found"


def test_items_with_states_and_progress(client, auth, queue_id, roots, people):
    ann, bob = people
    send(
        client,
        "post",
        f"{URL}/{queue_id}/items",
        auth,
        {"trace_ids": [r.trace.trace_id for r in roots[:3]]},
    )
    queue = LabelingQueue.objects.get(pk=queue_id)
    first = queue_item_next(queue=queue, user=ann)
    queue_item_submit(item=first, user=ann, answers={"correctness": "correct"})
    queue_item_skip(item=queue_item_next(queue=queue, user=bob), user=bob)
    holding = queue_item_next(queue=queue, user=bob)

    page = send(client, "get", f"{URL}/{queue_id}/items?limit=2", auth).json()
    assert [item["id"] for item in page["data"]] == [first.pk, first.pk + 1]
    assert page["data"][0]["states"] == [
        {"user": "ann", "state": "COMPLETED"},
        {"user": "bob", "state": "SKIPPED"},
    ]
    assert page["data"][0]["state"] == "COMPLETED"
    assert page["data"][0]["target_id"] == roots[0].trace.trace_id
    assert page["data"][0]["project"] == "default"
    rest = send(client, "get", f"{URL}/{queue_id}/items?cursor={page['next_cursor']}", auth).json()
    assert [item["id"] for item in rest["data"]] == [first.pk + 2]
    assert rest["next_cursor"] is None
    held = next(i for i in page["data"] + rest["data"] if i["id"] == holding.pk)
    assert held["reserved_by"] == "bob"

    pending = send(client, "get", f"{URL}/{queue_id}/items?state=pending", auth).json()["data"]
    assert [i["id"] for i in pending] == [first.pk + 1, first.pk + 2]
    bobs_skipped = send(
        client, "get", f"{URL}/{queue_id}/items?state=SKIPPED&assignee=bob", auth
    ).json()["data"]
    assert [i["id"] for i in bobs_skipped] == [first.pk]
    assert send(client, "get", f"{URL}/{queue_id}/items?state=DONE", auth).status_code == 422
    assert send(client, "get", f"{URL}/{queue_id}/items?assignee=zed", auth).status_code == 422
    assert send(client, "get", f"{URL}/{queue_id}/items?cursor=abc", auth).status_code == 422

    progress = send(client, "get", f"{URL}/{queue_id}/progress", auth).json()["data"]
    assert {k: progress[k] for k in ("items", "total", "completed", "skipped", "pending")} == {
        "items": 3,
        "total": 6,
        "completed": 1,
        "skipped": 1,
        "pending": 4,
    }
    assert progress["annotators"] == [
        {"user": "ann", "assignee": True, "total": 3, "completed": 1, "skipped": 0, "pending": 2},
        {"user": "bob", "assignee": True, "total": 3, "completed": 0, "skipped": 1, "pending": 2},
    ]
