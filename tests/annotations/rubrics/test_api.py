import json

import pytest

from annotations.models import AnnotationConfig, ProjectAnnotationConfig
from annotations.rubrics.services import annotation_config_create, project_annotation_config_enable
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/v1/annotation_configs"

CORRECTNESS = {
    "type": "CATEGORICAL",
    "name": "correctness",
    "description": "Is the answer right?",
    "optimization_direction": "MAXIMIZE",
    "values": [{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
}


def send(client, method, url, auth, body=None):
    return getattr(client, method)(
        url,
        json.dumps(body) if body is not None else None,
        content_type="application/json",
        headers=auth,
    )


def test_create_categorical_returns_phoenix_shape(client, auth):
    response = send(client, "post", URL, auth, CORRECTNESS)
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    config = AnnotationConfig.objects.get()
    assert data == {
        "id": str(config.pk),
        "type": "CATEGORICAL",
        "name": "correctness",
        "description": "Is the answer right?",
        "optimization_direction": "MAXIMIZE",
        "values": [{"label": "correct", "score": 1.0}, {"label": "incorrect", "score": 0.0}],
    }


def test_create_continuous_and_freeform(client, auth):
    continuous = send(
        client,
        "post",
        URL,
        auth,
        {"type": "CONTINUOUS", "name": "relevance", "lower_bound": 0, "upper_bound": 10},
    ).json()["data"]
    assert continuous["type"] == "CONTINUOUS"
    assert (continuous["lower_bound"], continuous["upper_bound"]) == (0.0, 10.0)
    assert continuous["optimization_direction"] == "NONE"
    assert "values" not in continuous
    freeform = send(client, "post", URL, auth, {"type": "FREEFORM", "name": "feedback"})
    assert freeform.json()["data"]["type"] == "FREEFORM"


def test_duplicate_name_is_409_and_writes_nothing(client, auth):
    send(client, "post", URL, auth, CORRECTNESS)
    response = send(client, "post", URL, auth, {"type": "FREEFORM", "name": "correctness"})
    assert response.status_code == 409
    assert "'correctness' already exists" in response.json()["detail"]
    assert AnnotationConfig.objects.get().kind == "CATEGORICAL"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({**CORRECTNESS, "values": []}, "values: a CATEGORICAL config needs at least one value"),
        (
            {**CORRECTNESS, "values": [{"label": "a"}, {"label": "a"}]},
            "values[1].label: 'a' appears more than once",
        ),
        (
            {"type": "CONTINUOUS", "name": "r", "lower_bound": 1, "upper_bound": 0},
            "lower_bound: must be less than upper_bound",
        ),
        ({"type": "BINARY", "name": "r"}, "type: must be one of CATEGORICAL, CONTINUOUS"),
    ],
)
def test_invalid_config_is_400_with_the_reason_and_writes_nothing(client, auth, body, detail):
    response = send(client, "post", URL, auth, body)
    assert response.status_code == 400
    assert detail in response.json()["detail"]
    assert not AnnotationConfig.objects.exists()


def test_list_pages_with_cursor(client, auth):
    for i in range(3):
        annotation_config_create(name=f"c{i}", kind="FREEFORM")
    first = client.get(URL, {"limit": 2}, headers=auth).json()
    assert [c["name"] for c in first["data"]] == ["c2", "c1"]
    second = client.get(URL, {"limit": 2, "cursor": first["next_cursor"]}, headers=auth).json()
    assert [c["name"] for c in second["data"]] == ["c0"]
    assert second["next_cursor"] is None
    assert client.get(URL, {"cursor": "nope"}, headers=auth).status_code == 422


def test_get_by_id_and_by_name(client, auth):
    config = annotation_config_create(name="feedback", kind="FREEFORM")
    by_id = client.get(f"{URL}/{config.pk}", headers=auth)
    by_name = client.get(f"{URL}/feedback", headers=auth)
    assert by_id.status_code == by_name.status_code == 200
    assert by_id.json() == by_name.json()
    assert by_id.json()["data"]["name"] == "feedback"


def test_put_replaces_the_config(client, auth):
    config_id = send(client, "post", URL, auth, CORRECTNESS).json()["data"]["id"]
    body = {**CORRECTNESS, "name": "accuracy", "values": [{"label": "yes", "score": None}]}
    response = send(client, "put", f"{URL}/{config_id}", auth, body)
    assert response.status_code == 200, response.content
    assert response.json()["data"]["values"] == [{"label": "yes", "score": None}]
    config = AnnotationConfig.objects.get()
    assert (config.name, config.values) == ("accuracy", [{"label": "yes", "score": None}])


def test_put_invalid_or_duplicate_changes_nothing(client, auth):
    send(client, "post", URL, auth, CORRECTNESS)
    send(client, "post", URL, auth, {"type": "FREEFORM", "name": "feedback"})
    duplicate = send(client, "put", f"{URL}/feedback", auth, {**CORRECTNESS})
    assert duplicate.status_code == 409
    invalid = send(
        client,
        "put",
        f"{URL}/correctness",
        auth,
        {"type": "CONTINUOUS", "name": "correctness", "lower_bound": 2, "upper_bound": 2},
    )
    assert invalid.status_code == 400
    assert "lower_bound" in invalid.json()["detail"]
    kinds = dict(AnnotationConfig.objects.values_list("name", "kind"))
    assert kinds == {"correctness": "CATEGORICAL", "feedback": "FREEFORM"}


def test_delete_returns_the_config_and_removes_it(client, auth):
    config = annotation_config_create(name="feedback", kind="FREEFORM")
    project_annotation_config_enable(project=factories.project(), config=config)
    response = send(client, "delete", f"{URL}/feedback", auth)
    assert response.status_code == 200
    assert response.json()["data"]["id"] == str(config.pk)
    assert not AnnotationConfig.objects.exists()
    assert not ProjectAnnotationConfig.objects.exists()


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_unknown_config_is_404(client, auth, method):
    body = {"type": "FREEFORM", "name": "x"} if method == "put" else None
    response = send(client, method, f"{URL}/missing", auth, body)
    assert response.status_code == 404
    assert response.json() == {"detail": "annotation config 'missing' not found"}


def test_enable_list_and_disable_per_project(client, auth):
    project = factories.project("support")
    factories.project("sales")
    annotation_config_create(name="feedback", kind="FREEFORM")
    send(client, "post", URL, auth, CORRECTNESS)
    project_url = "/v1/projects/support/annotation_configs"

    assert client.get(project_url, headers=auth).json() == {"data": [], "next_cursor": None}
    enabled = send(client, "post", f"{project_url}/correctness", auth)
    assert enabled.status_code == 200
    assert enabled.json()["data"]["name"] == "correctness"
    assert send(client, "post", f"{project_url}/correctness", auth).status_code == 200

    listed = client.get(f"/v1/projects/{project.pk}/annotation_configs", headers=auth).json()
    assert [c["name"] for c in listed["data"]] == ["correctness"]
    other = client.get("/v1/projects/sales/annotation_configs", headers=auth).json()
    assert other["data"] == []

    disabled = send(client, "delete", f"{project_url}/correctness", auth)
    assert disabled.status_code == 200
    assert client.get(project_url, headers=auth).json()["data"] == []
    assert AnnotationConfig.objects.filter(name="correctness").exists()


def test_project_routes_404_for_unknown_project_or_config(client, auth):
    factories.project("support")
    annotation_config_create(name="feedback", kind="FREEFORM")
    assert client.get("/v1/projects/nope/annotation_configs", headers=auth).status_code == 404
    missing_project = send(client, "post", "/v1/projects/nope/annotation_configs/feedback", auth)
    assert missing_project.json() == {"detail": "project 'nope' not found"}
    missing_config = send(client, "post", "/v1/projects/support/annotation_configs/nope", auth)
    assert missing_config.status_code == 404
    assert not ProjectAnnotationConfig.objects.exists()


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", URL),
        ("post", URL),
        ("get", f"{URL}/x"),
        ("put", f"{URL}/x"),
        ("delete", f"{URL}/x"),
        ("get", "/v1/projects/default/annotation_configs"),
        ("post", "/v1/projects/default/annotation_configs/x"),
        ("delete", "/v1/projects/default/annotation_configs/x"),
    ],
)
def test_routes_need_an_api_key(client, db, method, url):
    body = CORRECTNESS if method in ("post", "put") else None
    response = send(client, method, url, {}, body)
    assert response.status_code == 401
    assert "API key" in response.json()["detail"]
    assert not AnnotationConfig.objects.exists()
