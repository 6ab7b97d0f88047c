import pytest

from annotations.models import Annotation
from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories
from tracing.models import Project, Session, Span, Trace

pytestmark = pytest.mark.django_db


def test_create_then_get_by_id_and_by_name(client, auth):
    response = client.post(
        "/v1/projects",
        {"name": "support-bot", "description": "the help desk agent"},
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 200, response.content
    created = response.json()["data"]
    assert created["name"] == "support-bot"
    assert created["description"] == "the help desk agent"
    assert created["id"] == str(Project.objects.get(name="support-bot").pk)

    by_id = client.get(f"/v1/projects/{created['id']}", headers=auth).json()["data"]
    by_name = client.get("/v1/projects/support-bot", headers=auth).json()["data"]
    assert by_id == by_name == created


def test_duplicate_name_is_a_conflict(client, auth):
    factories.project("taken")
    response = client.post(
        "/v1/projects", {"name": "taken"}, content_type="application/json", headers=auth
    )
    assert response.status_code == 409
    assert "name" in response.json()["detail"]
    assert "taken" in response.json()["detail"]
    assert Project.objects.filter(name="taken").count() == 1


def test_empty_name_is_rejected_naming_the_field(client, auth):
    response = client.post(
        "/v1/projects", {"name": "  "}, content_type="application/json", headers=auth
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("name")
    response = client.post("/v1/projects", {}, content_type="application/json", headers=auth)
    assert response.status_code == 422
    assert "name" in response.json()["detail"]


def test_list_pages_with_a_cursor_and_filters_by_name(client, auth):
    for name in ["alpha", "beta", "gamma", "alphabet"]:
        factories.project(name)
    first = client.get("/v1/projects?limit=3", headers=auth).json()
    assert len(first["data"]) == 3
    assert first["next_cursor"]
    second = client.get(f"/v1/projects?limit=3&cursor={first['next_cursor']}", headers=auth).json()
    assert second["next_cursor"] is None
    names = [p["name"] for p in first["data"] + second["data"]]
    assert sorted(names) == ["alpha", "alphabet", "beta", "gamma"]

    filtered = client.get("/v1/projects?name_contains=ALPHA", headers=auth).json()
    assert sorted(p["name"] for p in filtered["data"]) == ["alpha", "alphabet"]


def test_list_rejects_a_bad_cursor(client, auth):
    response = client.get("/v1/projects?cursor=not-a-cursor", headers=auth)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("cursor")


def test_unknown_project_is_404_naming_it(client, auth):
    for method in (client.get, client.delete):
        response = method("/v1/projects/nope", headers=auth)
        assert response.status_code == 404
        assert "'nope'" in response.json()["detail"]


def test_update_description(client, auth):
    project = factories.project("p")
    response = client.put(
        f"/v1/projects/{project.pk}",
        {"description": "new words"},
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 200
    assert response.json()["data"]["description"] == "new words"
    project.refresh_from_db()
    assert project.description == "new words"


def test_delete_removes_traces_spans_sessions_and_annotations_of_that_project_only(client, auth):
    spans = factories.trace(project="doomed", session_id="s-1")
    kept = factories.trace(project="kept", session_id="s-1")
    annotations_upsert(
        items=[
            AnnotationInput(target_kind="SPAN", target_id=spans[0].span_id, name="q", label="ok"),
            AnnotationInput(target_kind="SPAN", target_id=kept[0].span_id, name="q", label="ok"),
        ]
    )
    response = client.delete("/v1/projects/doomed", headers=auth)
    assert response.status_code == 204
    assert not Project.objects.filter(name="doomed").exists()
    assert not Span.objects.filter(span_id__in=[s.span_id for s in spans]).exists()
    assert not Trace.objects.filter(project__name="doomed").exists()
    assert Session.objects.filter(session_id="s-1").count() == 1
    assert Annotation.objects.count() == 1
    assert Span.objects.filter(project__name="kept").count() == 3


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"api_key": "wrong"}],
    ids=["missing", "wrong-bearer", "wrong-api-key"],
)
def test_routes_need_a_valid_api_key(client, api_key, headers):
    factories.project("p")
    for method, url in [
        (client.get, "/v1/projects"),
        (client.get, "/v1/projects/p"),
        (client.get, "/v1/projects/p/spans"),
        (client.get, "/v1/projects/p/traces"),
        (client.get, "/v1/projects/p/spans/export"),
        (client.delete, "/v1/projects/p"),
    ]:
        response = method(url, headers=headers)
        assert response.status_code == 401, url
        assert "API key" in response.json()["detail"]
    response = client.post("/v1/projects", {"name": "x"}, content_type="application/json")
    assert response.status_code == 401
    assert Project.objects.filter(name="p").exists()


def test_api_key_header_is_accepted(client, api_key):
    factories.project("p")
    response = client.get("/v1/projects/p", headers={"api_key": api_key})
    assert response.status_code == 200


def test_openapi_schema_lists_the_routes(client, auth):
    assert client.get("/openapi.json").status_code == 401
    response = client.get("/openapi.json", headers=auth)
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/v1/projects",
        "/v1/projects/{project}",
        "/v1/projects/{project}/spans",
        "/v1/projects/{project}/spans/export",
        "/v1/projects/{project}/traces",
        "/v1/spans",
    ]:
        assert path in paths
    evaluations = response.json()["components"]["schemas"]["SpansLogIn"]["properties"]
    assert "evaluations" in evaluations
