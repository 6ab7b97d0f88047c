"""The annotator role: only their queues, in the browser and through their API key."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse

from annotations.models import AnnotationConfig
from annotations.queues.models import LabelingQueue, LabelingQueueItem
from annotations.queues.services import queue_create, queue_items_add
from annotations.rubrics.services import annotation_config_create
from evalhub.identity.roles import (
    ANNOTATOR_GROUP,
    annotator_role_grant,
    annotator_role_revoke,
    is_annotator,
)
from evalhub.identity.services import api_key_create
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def correctness():
    return annotation_config_create(
        name="correctness",
        kind="CATEGORICAL",
        values=[{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
    )


@pytest.fixture
def annotator(django_user_model):
    user = django_user_model.objects.create_user(username="ann", is_staff=True)
    annotator_role_grant(user=user)
    return user


@pytest.fixture
def queues(annotator, correctness):
    mine = queue_create(
        name="mine", item_kind="TRACE", configs=[correctness], assignees=[annotator]
    )
    theirs = queue_create(name="theirs", item_kind="TRACE", configs=[correctness])
    root = factories.trace()[0]
    for queue in (mine, theirs):
        queue_items_add(queue=queue, trace_ids=[root.trace.trace_id])
    return mine, theirs


@pytest.fixture
def annotator_client(client, annotator):
    client.force_login(annotator)
    return client


@pytest.fixture
def annotator_key(annotator) -> dict[str, str]:
    _, raw = api_key_create(name="ann's key", scope="write", user=annotator)
    return {"Authorization": f"Bearer {raw}"}


def test_grant_and_revoke(django_user_model):
    user = django_user_model.objects.create_user(username="x")
    assert not is_annotator(user)
    assert annotator_role_grant(user=user) is True
    assert annotator_role_grant(user=user) is False
    assert is_annotator(django_user_model.objects.get(pk=user.pk))
    assert annotator_role_revoke(user=user) is True
    assert not is_annotator(django_user_model.objects.get(pk=user.pk))


def test_the_group_exists_for_the_admin_and_the_command_grants_it(django_user_model):
    assert Group.objects.filter(name=ANNOTATOR_GROUP).exists()  # made by the migration
    django_user_model.objects.create_user(username="y")
    call_command("annotator_role", "y")
    assert is_annotator(django_user_model.objects.get(username="y"))
    call_command("annotator_role", "y", "--revoke")
    assert not is_annotator(django_user_model.objects.get(username="y"))


def test_a_superuser_is_never_restricted(django_user_model):
    boss = django_user_model.objects.create_superuser(username="boss", password="x" * 12)
    annotator_role_grant(user=boss)
    assert not is_annotator(boss)


@pytest.mark.parametrize(
    "url",
    [
        "/settings/providers/",
        "/settings/annotation-configs/",
        "/evaluators/",
        "/evaluators/new/",
        "/tasks/",
        "/projects/",
        "/projects/default/traces/",
        "/admin/",
        "/queues/new/",
    ],
)
def test_annotators_get_403_outside_their_queue_pages(annotator_client, queues, url):
    response = annotator_client.get(url)
    assert response.status_code == 403
    assert "Not available to annotators" in response.content.decode()


def test_annotators_cannot_change_queues_or_add_items(annotator_client, queues, correctness):
    mine, _ = queues
    for url in (
        reverse("annotations:queue-edit", args=[mine.pk]),
        reverse("annotations:queue-add", args=[mine.pk]),
    ):
        assert annotator_client.get(url).status_code == 403
    response = annotator_client.post(
        reverse("annotations:queue-add-selected", args=["default"]),
        {"labeling_queue": mine.pk, "selected": ["x"]},
    )
    assert response.status_code == 403
    response = annotator_client.post(
        "/projects/default/traces/delete/", {"selected": ["x"], "confirmed": "1"}
    )
    assert response.status_code == 403
    assert LabelingQueueItem.objects.filter(queue=mine).count() == 1


def test_annotators_see_only_their_queues_and_label_them(annotator_client, queues, correctness):
    mine, theirs = queues
    home = annotator_client.get("/")
    assert home.status_code == 302
    assert home["Location"] == reverse("annotations:queues")
    listing = annotator_client.get(reverse("annotations:queues")).content.decode()
    assert "mine" in listing
    assert "theirs" not in listing
    assert 'href="/projects/"' not in listing  # the navigation shows only the queues
    assert annotator_client.get(reverse("annotations:queue", args=[theirs.pk])).status_code == 404
    assert annotator_client.get(reverse("annotations:queue", args=[mine.pk])).status_code == 200
    location = annotator_client.get(reverse("annotations:queue-label", args=[mine.pk]))["Location"]
    page = annotator_client.get(location)
    assert page.status_code == 200
    assert 'href="/projects/' not in page.content.decode()  # no links to pages they cannot open
    done = annotator_client.post(
        location, {"action": "submit", f"config_{correctness.pk}": "correct"}
    )
    assert done.status_code == 302


def test_an_annotators_api_key_reaches_only_the_queue_api(client, queues, annotator_key):
    mine, _ = queues
    blocked = [
        ("post", "/v1/annotation_configs", {"type": "FREEFORM", "name": "sneaky"}),
        ("delete", "/v1/annotation_configs/correctness", None),
        ("get", "/v1/projects", None),
        ("post", "/v1/projects", {"name": "new"}),
        ("post", "/v1/traces", {"resourceSpans": []}),
        ("get", "/v1/evaluators", None),
    ]
    for method, url, body in blocked:
        response = getattr(client, method)(
            url,
            json.dumps(body) if body is not None else None,
            content_type="application/json",
            headers=annotator_key,
        )
        assert response.status_code == 403, (method, url, response.content)
        assert "of ann, an annotator" in response.json()["detail"]
    assert AnnotationConfig.objects.count() == 1

    listed = client.get("/v1/annotation_queues", headers=annotator_key)
    assert listed.status_code == 200
    assert [q["name"] for q in listed.json()["data"]] == ["mine"]
    assert (
        client.get(f"/v1/annotation_queues/{mine.pk}/progress", headers=annotator_key).status_code
        == 200
    )
    create = client.post(
        "/v1/annotation_queues",
        json.dumps({"name": "x", "item_kind": "SPAN", "configs": ["correctness"]}),
        content_type="application/json",
        headers=annotator_key,
    )
    assert create.status_code == 403
    add = client.post(
        f"/v1/annotation_queues/{mine.pk}/items",
        json.dumps({"trace_ids": ["abc"]}),
        content_type="application/json",
        headers=annotator_key,
    )
    assert add.status_code == 403
    assert LabelingQueue.objects.count() == 2


def test_other_keys_and_users_are_not_restricted(client, queues, auth):
    response = client.get("/v1/projects", headers=auth)
    assert response.status_code == 200
    listed = client.get("/v1/annotation_queues", headers=auth).json()["data"]
    assert sorted(q["name"] for q in listed) == ["mine", "theirs"]
