import json

import pytest

from annotations.models import Annotation
from tests import factories

pytestmark = pytest.mark.django_db


def post(client, url, body, auth, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.post(
        f"{url}?{query}" if query else url,
        json.dumps(body) if not isinstance(body, str) else body,
        content_type="application/json",
        headers=auth,
    )


def span_annotation(span_id, name="correctness", **result):
    return {
        "span_id": span_id,
        "name": name,
        "annotator_kind": "LLM",
        "result": result or {"label": "correct", "score": 1.0, "explanation": "matches"},
        "metadata": {"judge": "gpt"},
    }


def test_post_span_annotations_sync_returns_ids_and_stores_them(client, auth):
    spans = factories.trace()
    response = post(
        client,
        "/v1/span_annotations",
        {"data": [span_annotation(s.span_id) for s in spans]},
        auth,
        sync="true",
    )
    assert response.status_code == 200, response.content
    ids = [row["id"] for row in response.json()["data"]]
    assert len(ids) == 3
    stored = Annotation.objects.get(pk=int(ids[2]))
    assert stored.span == spans[2]
    assert (stored.label, stored.score, stored.explanation) == ("correct", 1.0, "matches")
    assert (stored.annotator_kind, stored.source, stored.metadata) == (
        "LLM",
        "API",
        {"judge": "gpt"},
    )


def test_post_without_sync_writes_and_answers_without_ids(client, auth):
    span = factories.trace()[0]
    response = post(client, "/v1/span_annotations", {"data": [span_annotation(span.span_id)]}, auth)
    assert response.status_code == 200
    assert response.json() == {"data": []}
    assert Annotation.objects.filter(span=span).count() == 1


def test_the_api_key_user_is_recorded(client, django_user_model):
    from evalhub.identity.services import api_key_create

    user = django_user_model.objects.create_user("alice", password="x")
    _, raw = api_key_create(name="alice", scope="write", user=user)
    span = factories.trace()[0]
    response = post(
        client,
        "/v1/span_annotations",
        {"data": [span_annotation(span.span_id)]},
        {"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 200
    assert Annotation.objects.get().user == user


def test_same_name_and_identifier_updates_other_identifier_adds(client, auth):
    span = factories.trace()[0]
    body = {"data": [span_annotation(span.span_id, label="a")]}
    first = post(client, "/v1/span_annotations", body, auth, sync="true").json()["data"][0]["id"]
    body["data"][0]["result"] = {"score": 0.0}
    again = post(client, "/v1/span_annotations", body, auth, sync="true").json()["data"][0]["id"]
    assert again == first
    assert Annotation.objects.get().label is None
    body["data"][0]["identifier"] = "second-opinion"
    post(client, "/v1/span_annotations", body, auth)
    assert Annotation.objects.count() == 2


def test_an_unknown_span_is_404_naming_it_and_nothing_is_written(client, auth):
    spans = factories.trace()
    body = {"data": [span_annotation(s.span_id) for s in spans]}
    body["data"].insert(1, span_annotation("00000000deadbeef"))
    response = post(client, "/v1/span_annotations", body, auth, sync="true")
    assert response.status_code == 404
    assert "00000000deadbeef" in response.json()["detail"]
    assert not Annotation.objects.exists()


def test_more_than_1000_items_are_rejected(client, auth):
    span = factories.trace()[0]
    body = {"data": [span_annotation(span.span_id, name=f"n{i}") for i in range(1001)]}
    response = post(client, "/v1/span_annotations", body, auth)
    assert response.status_code == 422
    assert "1000" in response.json()["detail"]
    assert not Annotation.objects.exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda item: item.pop("name"), "data.1.name"),
        (lambda item: item.update(name=" "), "data[1].name"),
        (lambda item: item.update(annotator_kind="ROBOT"), "data[1].annotator_kind"),
        (lambda item: item.update(result={}), "data[1].result"),
        (lambda item: item.pop("result"), "data[1].result"),
        (lambda item: item.update(metadata="x"), "data.1.metadata"),
    ],
)
def test_bad_items_are_422_naming_the_field(client, auth, change, expected):
    spans = factories.trace()
    items = [span_annotation(spans[0].span_id), span_annotation(spans[1].span_id)]
    change(items[1])
    response = post(client, "/v1/span_annotations", {"data": items}, auth)
    assert response.status_code == 422, response.content
    assert expected in response.json()["detail"]
    assert not Annotation.objects.exists()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_score_is_rejected(client, auth, literal):
    """NaN and Infinity are not JSON: the body is refused (400) naming the field."""
    span = factories.trace()[0]
    item = json.dumps({"span_id": span.span_id, "name": "n", "annotator_kind": "CODE"})
    raw = '{"data": [' + item[:-1] + ', "result": {"score": ' + literal + "}}]}"
    response = post(client, "/v1/span_annotations", raw, auth)
    assert response.status_code == 400
    assert response.json()["detail"] == f"data[0].result.score: {literal} is not a JSON number"
    assert not Annotation.objects.exists()


def test_a_wrong_api_key_is_401(client, auth):
    span = factories.trace()[0]
    body = {"data": [span_annotation(span.span_id)]}
    bad = {"Authorization": "Bearer ehk_wrong"}
    assert post(client, "/v1/span_annotations", body, bad).status_code == 401
    response = client.get(
        f"/v1/projects/default/span_annotations?span_ids={span.span_id}", headers=bad
    )
    assert response.status_code == 401
    assert "detail" in response.json()
    assert not Annotation.objects.exists()


def test_trace_and_session_annotations(client, auth):
    root = factories.trace(session_id="conv-1")[0]
    response = post(
        client,
        "/v1/trace_annotations",
        {
            "data": [
                {
                    "trace_id": root.trace.trace_id,
                    "name": "ok",
                    "annotator_kind": "HUMAN",
                    "result": {"label": "yes"},
                }
            ]
        },
        auth,
        sync="true",
    )
    assert response.status_code == 200
    assert Annotation.objects.get(pk=int(response.json()["data"][0]["id"])).trace == root.trace

    response = post(
        client,
        "/v1/session_annotations",
        {
            "data": [
                {
                    "session_id": "conv-1",
                    "name": "csat",
                    "annotator_kind": "HUMAN",
                    "result": {"score": 5},
                    "identifier": "u1",
                }
            ]
        },
        auth,
        sync="true",
    )
    assert response.status_code == 200
    stored = Annotation.objects.get(pk=int(response.json()["data"][0]["id"]))
    assert (stored.session.session_id, stored.score, stored.identifier) == ("conv-1", 5.0, "u1")

    missing = post(
        client,
        "/v1/trace_annotations",
        {
            "data": [
                {
                    "trace_id": "f" * 32,
                    "name": "ok",
                    "annotator_kind": "HUMAN",
                    "result": {"label": "y"},
                }
            ]
        },
        auth,
    )
    assert missing.status_code == 404
    assert "f" * 32 in missing.json()["detail"]
    missing = post(
        client,
        "/v1/session_annotations",
        {
            "data": [
                {
                    "session_id": "nope",
                    "name": "ok",
                    "annotator_kind": "HUMAN",
                    "result": {"label": "y"},
                }
            ]
        },
        auth,
    )
    assert missing.status_code == 404
    assert "nope" in missing.json()["detail"]


def test_a_session_id_in_two_projects_is_rejected(client, auth):
    factories.trace(project="a", session_id="same")
    factories.trace(project="b", session_id="same")
    response = post(
        client,
        "/v1/session_annotations",
        {
            "data": [
                {
                    "session_id": "same",
                    "name": "csat",
                    "annotator_kind": "HUMAN",
                    "result": {"score": 1},
                }
            ]
        },
        auth,
    )
    assert response.status_code == 422
    assert "several projects" in response.json()["detail"]


def test_get_span_annotations_pages_and_filters(client, auth):
    spans = factories.trace(project="shop")
    ids = [s.span_id for s in spans]
    for name in ["a", "b", "note"]:
        post(
            client,
            "/v1/span_annotations",
            {"data": [span_annotation(i, name=name) for i in ids]},
            auth,
        )
    factories.trace(project="other")

    base = (
        f"/v1/projects/shop/span_annotations?span_ids={ids[0]}&span_ids={ids[1]}&span_ids={ids[2]}"
    )
    seen, cursor, pages = [], None, 0
    while True:
        url = f"{base}&exclude_annotation_names=note&limit=4" + (
            f"&cursor={cursor}" if cursor else ""
        )
        response = client.get(url, headers=auth)
        assert response.status_code == 200, response.content
        body = response.json()
        seen.extend(body["data"])
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 2
    assert len(seen) == 6
    assert len({row["id"] for row in seen}) == 6
    assert {row["name"] for row in seen} == {"a", "b"}
    assert {row["span_id"] for row in seen} == set(ids)
    row = seen[0]
    assert set(row) == {
        "id",
        "span_id",
        "name",
        "annotator_kind",
        "result",
        "metadata",
        "identifier",
        "source",
        "user_id",
        "created_at",
        "updated_at",
    }
    assert row["result"] == {"label": "correct", "score": 1.0, "explanation": "matches"}
    assert row["source"] == "API"
    assert row["identifier"] == ""

    only = client.get(f"{base}&include_annotation_names=note", headers=auth).json()
    assert {r["name"] for r in only["data"]} == {"note"}
    assert only["next_cursor"] is None

    by_id = client.get(
        f"/v1/projects/{spans[0].project_id}/span_annotations?span_ids={ids[0]}", headers=auth
    )
    assert len(by_id.json()["data"]) == 3

    other = client.get(f"/v1/projects/other/span_annotations?span_ids={ids[0]}", headers=auth)
    assert other.json() == {"data": [], "next_cursor": None}
    assert (
        client.get(
            f"/v1/projects/nope/span_annotations?span_ids={ids[0]}", headers=auth
        ).status_code
        == 404
    )
    assert client.get("/v1/projects/shop/span_annotations", headers=auth).status_code == 422
    assert client.get(f"{base}&cursor=garbage", headers=auth).status_code == 422


def test_get_trace_and_session_annotations(client, auth):
    root = factories.trace(project="shop", session_id="c1")[0]
    post(
        client,
        "/v1/trace_annotations",
        {
            "data": [
                {
                    "trace_id": root.trace.trace_id,
                    "name": "t",
                    "annotator_kind": "CODE",
                    "result": {"score": 0.5},
                }
            ]
        },
        auth,
    )
    post(
        client,
        "/v1/session_annotations",
        {
            "data": [
                {
                    "session_id": "c1",
                    "name": "s",
                    "annotator_kind": "HUMAN",
                    "result": {"label": "good"},
                }
            ]
        },
        auth,
    )
    traces = client.get(
        f"/v1/projects/shop/trace_annotations?trace_ids={root.trace.trace_id}", headers=auth
    ).json()
    assert [(r["trace_id"], r["name"], r["result"]["score"]) for r in traces["data"]] == [
        (root.trace.trace_id, "t", 0.5)
    ]
    sessions = client.get(
        "/v1/projects/shop/session_annotations?session_ids=c1", headers=auth
    ).json()
    assert [(r["session_id"], r["result"]["label"]) for r in sessions["data"]] == [("c1", "good")]


def test_agreement_reports_the_pairs_and_how_they_were_found(client, auth):
    """People labelled traces, the judge scored their root spans: the pairs say so."""
    roots = [factories.trace(project="shop")[0] for _ in range(2)]
    for root, human, judge in zip(roots, ["good", "bad"], ["good", "good"], strict=True):
        judged = post(
            client,
            "/v1/span_annotations",
            {"data": [span_annotation(root.span_id, "quality", label=judge)]},
            auth,
            sync="true",
        )
        labelled = post(
            client,
            "/v1/trace_annotations",
            {
                "data": [
                    {
                        "trace_id": root.trace.trace_id,
                        "name": "quality",
                        "annotator_kind": "HUMAN",
                        "identifier": "alice",
                        "result": {"label": human},
                    }
                ]
            },
            auth,
            sync="true",
        )
        assert judged.status_code == labelled.status_code == 200
    body = client.get("/v1/projects/shop/agreement", headers=auth).json()
    assert (body["pairs"], body["same_target_pairs"], body["root_span_pairs"]) == (2, 0, 2)
    assert body["unpaired"] == 0 and "root span" in body["rule"]
    ((name, pairs),) = [(entry["name"], entry["pairs"]) for entry in body["names"]]
    assert name == "quality"
    (pair,) = pairs
    assert pair["a"] == {"label": "alice", "kind": "HUMAN"}
    assert pair["b"] == {"label": "quality", "kind": "LLM"}
    assert (pair["pairs"], pair["root_span_pairs"], pair["percent_agreement"]) == (2, 2, 0.5)
    # alice: good bad, judge: good good → p_o = 1/2 = p_e, kappa 0
    assert pair["kappa"] == 0.0 and pair["disagreements"] == 1
    assert client.get("/v1/projects/shop/agreement?name=other", headers=auth).json()["pairs"] == 0
    assert client.get("/v1/projects/nope/agreement", headers=auth).status_code == 404
