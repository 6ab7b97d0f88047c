"""The datasets API (/v1/datasets): every route, and its answers to bad input."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from annotations.datasets import api as api_datasets
from annotations.datasets.models import Dataset, DatasetExample
from annotations.datasets.services import dataset_create
from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories

pytestmark = pytest.mark.django_db
T0 = factories.BASE_TIME
URL = "/v1/datasets"


def send(client, method, url, auth, body=None):  # type: ignore[no-untyped-def]
    return getattr(client, method)(
        url,
        json.dumps(body) if body is not None else None,
        content_type="application/json",
        headers=auth,
    )


@pytest.fixture
def shop(db):  # type: ignore[no-untyped-def]
    """Two traces in "shop" (one failing, with a reference) and one in "other"."""
    ok = factories.trace(project="shop", start=T0, metadata={"reference": "gold"})
    bad = factories.trace(project="shop", start=T0 + timedelta(minutes=1), status_code="ERROR")
    other = factories.trace(project="other", start=T0)
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN",
                target_id=ok[2].span_id,
                name="correctness",
                label="correct",
                score=1.0,
            )
        ]
    )
    return {"ok": ok, "bad": bad, "other": other}


def _detail(response) -> str:  # type: ignore[no-untyped-def]
    return response.json()["detail"]


# --- create --------------------------------------------------------------------------------------


def test_create_from_span_ids(client, auth, shop):
    llm = shop["ok"][2]
    response = send(
        client,
        "post",
        URL,
        auth,
        {"name": "golden", "description": "d", "span_ids": [llm.span_id, shop["bad"][0].span_id]},
    )
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    dataset = Dataset.objects.get()
    assert data == {
        "id": api_datasets.dataset_global_id(dataset.pk),  # a Phoenix GlobalID
        "name": "golden",
        "description": "d",
        "metadata": {},
        "example_count": 2,
        "created_at": dataset.created_at.isoformat(),
        "updated_at": dataset.updated_at.isoformat(),
    }
    first = dataset.examples.order_by("id").first()
    assert first.source_span_id == llm.span_id
    assert first.labels["correctness"]["label"] == "correct"
    assert first.expected_output == "gold"


def test_create_from_a_filter_in_a_project(client, auth, shop):
    response = send(
        client,
        "post",
        URL,
        auth,
        {"name": "errors", "project": "shop", "filter": "status_code = 'ERROR'"},
    )
    assert response.status_code == 200, response.content
    assert response.json()["data"]["example_count"] == 2
    assert set(DatasetExample.objects.values_list("source_span_id", flat=True)) == {
        shop["bad"][0].span_id,
        shop["bad"][2].span_id,
    }


def test_create_with_expected_output_from_an_annotation(client, auth, shop):
    llm = shop["ok"][2]
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN", target_id=llm.span_id, name="fixed", explanation="better"
            )
        ]
    )
    response = send(
        client,
        "post",
        URL,
        auth,
        {"name": "d", "span_ids": [llm.span_id], "expected_output_from": "fixed"},
    )
    assert response.status_code == 200
    assert DatasetExample.objects.get().expected_output == "better"


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"name": " ", "span_ids": ["x"]}, 400, "name: must not be empty"),
        ({"name": "x" * 256, "span_ids": ["x"]}, 400, "name: is longer than 255 characters"),
        ({"name": "d"}, 400, "span_ids: give span_ids or a filter (with project)"),
        (
            {"name": "d", "span_ids": ["a"], "filter": "x", "project": "shop"},
            400,
            "span_ids: give span_ids or filter, not both",
        ),
        ({"name": "d", "span_ids": []}, 400, "span_ids: must not be empty"),
        ({"name": "d", "span_ids": [" "]}, 400, "span_ids: every span id must be a non-empty"),
        ({"name": "d", "filter": "status_code = 'OK'"}, 400, "project: required with filter"),
        ({"name": "d", "filter": " ", "project": "shop"}, 400, "filter: must not be empty"),
        (
            {"name": "d", "filter": "latncy_ms > 1", "project": "shop"},
            400,
            "filter: unknown field 'latncy_ms' at column 1",
        ),
        (
            {"name": "d", "filter": "latency_ms >= 0", "project": "nope"},
            404,
            "project 'nope' not found",
        ),
        ({"span_ids": ["a"]}, 422, "name: Field required"),
        ({"name": "d", "span_ids": "abc"}, 422, "span_ids: Input should be a valid list"),
        (
            {"name": "d", "span_ids": ["a"], "expected_output_from": "x" * 256},
            400,
            "expected_output_from: is longer than 255 characters",
        ),
    ],
)
def test_create_refuses_bad_input_naming_the_field(client, auth, shop, body, status, detail):
    response = send(client, "post", URL, auth, body)
    assert response.status_code == status, response.content
    assert _detail(response).startswith(detail)
    assert not Dataset.objects.exists()


def test_create_with_unknown_span_ids_lists_them_and_writes_nothing(client, auth, shop):
    known = shop["ok"][0].span_id
    response = send(
        client, "post", URL, auth, {"name": "d", "span_ids": ["nope-1", known, "nope-2"]}
    )
    assert response.status_code == 404
    assert _detail(response) == "spans not found: nope-1, nope-2"
    # Spans of another project than the one named are not found either.
    response = send(
        client,
        "post",
        URL,
        auth,
        {"name": "d", "project": "shop", "span_ids": [shop["other"][0].span_id]},
    )
    assert response.status_code == 404
    assert _detail(response) == f"spans not found in project 'shop': {shop['other'][0].span_id}"
    assert not Dataset.objects.exists() and not DatasetExample.objects.exists()


def test_create_with_a_taken_name_is_409(client, auth, shop):
    dataset_create(name="taken")
    response = send(
        client, "post", URL, auth, {"name": "taken", "span_ids": [shop["ok"][0].span_id]}
    )
    assert response.status_code == 409
    assert _detail(response) == "a dataset named 'taken' already exists"
    assert not DatasetExample.objects.exists()


def test_a_filter_matching_too_many_spans_is_refused(client, auth, shop, monkeypatch):
    monkeypatch.setattr(api_datasets, "MAX_EXAMPLES_PER_ADD", 2)
    response = send(
        client, "post", URL, auth, {"name": "d", "project": "shop", "filter": "latency_ms >= 0"}
    )
    assert response.status_code == 400
    assert _detail(response) == "filter: matches more than 2 spans; narrow it down"
    assert not Dataset.objects.exists()


def test_too_many_span_ids_are_refused(client, auth, shop, monkeypatch):
    monkeypatch.setattr(api_datasets, "MAX_SPAN_IDS", 1)
    response = send(client, "post", URL, auth, {"name": "d", "span_ids": ["a", "b"]})
    assert response.status_code == 400
    assert _detail(response) == "span_ids: at most 1 span ids at once"


def test_every_route_needs_an_api_key(client, shop):
    dataset = dataset_create(name="d").dataset
    for method, url in (
        ("get", URL),
        ("post", URL),
        ("get", f"{URL}/{dataset.pk}"),
        ("delete", f"{URL}/{dataset.pk}"),
        ("get", f"{URL}/{dataset.pk}/examples"),
        ("post", f"{URL}/{dataset.pk}/examples"),
    ):
        body = {"name": "x", "span_ids": ["a"]} if method == "post" else None
        response = send(client, method, url, {}, body)
        assert response.status_code == 401, (method, url)
        assert "API key" in _detail(response)


# --- read ------------------------------------------------------------------------------------------


def test_list_datasets_newest_first_with_counts_a_page_at_a_time(client, auth, shop):
    older = dataset_create(name="older", spans=[s.pk for s in shop["ok"]]).dataset
    newer = dataset_create(name="newer").dataset
    response = client.get(URL, {"limit": 1}, headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert [(d["id"], d["name"], d["example_count"]) for d in body["data"]] == [
        (api_datasets.dataset_global_id(newer.pk), "newer", 0)
    ]
    assert body["next_cursor"] == str(older.pk)
    rest = client.get(URL, {"limit": 1, "cursor": body["next_cursor"]}, headers=auth).json()
    assert [(d["name"], d["example_count"]) for d in rest["data"]] == [("older", 3)]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"cursor": "abc"}, "cursor 'abc' is not valid"),
        ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
        ({"limit": 1001}, "limit: Input should be less than or equal to 1000"),
    ],
)
def test_list_refuses_a_bad_page(client, auth, params, detail):
    response = client.get(URL, params, headers=auth)
    assert response.status_code == 422
    assert _detail(response) == detail


def test_get_a_dataset_by_id_or_name(client, auth, shop):
    dataset = dataset_create(name="refunds", spans=[shop["ok"][0].pk]).dataset
    by_id = client.get(f"{URL}/{dataset.pk}", headers=auth)
    by_name = client.get(f"{URL}/refunds", headers=auth)
    assert by_id.status_code == by_name.status_code == 200
    assert by_id.json() == by_name.json()
    assert by_id.json()["data"]["example_count"] == 1
    missing = client.get(f"{URL}/nope", headers=auth)
    assert missing.status_code == 404
    assert _detail(missing) == "dataset 'nope' not found"


def test_examples_a_page_at_a_time(client, auth, shop):
    spans = shop["ok"]
    dataset = dataset_create(name="d", spans=[s.pk for s in spans]).dataset
    response = client.get(f"{URL}/{dataset.pk}/examples", {"limit": 2}, headers=auth)
    assert response.status_code == 200
    body = response.json()
    first = DatasetExample.objects.order_by("id").first()
    assert body["data"]["dataset_id"] == api_datasets.dataset_global_id(dataset.pk)
    assert body["data"]["version_id"] == str(dataset.versions.get().pk)
    # Phoenix's example shape: input and expected output are JSON objects.
    assert body["data"]["examples"][0] == {
        "id": str(first.pk),
        "node_id": str(first.pk),
        "input": {"input": "What is the refund policy?"},
        "output": {"output": "gold"},
        "metadata": {"reference": "gold"},
        "updated_at": first.revisions.get().created_at.isoformat(),
        "expected_output": "gold",
        "labels": {},
        "span_id": spans[0].span_id,
        "trace_id": spans[0].trace.trace_id,
        "project": "shop",
        "created_at": first.created_at.isoformat(),
    }
    assert [e["span_id"] for e in body["data"]["examples"]] == [s.span_id for s in spans[:2]]
    rest = client.get(
        f"{URL}/{dataset.pk}/examples", {"limit": 2, "cursor": body["next_cursor"]}, headers=auth
    ).json()
    assert [e["span_id"] for e in rest["data"]["examples"]] == [spans[2].span_id]
    assert rest["next_cursor"] is None
    assert rest["data"]["examples"][0]["labels"]["correctness"]["score"] == 1.0


def test_examples_of_an_unknown_dataset_or_with_a_bad_cursor(client, auth):
    assert client.get(f"{URL}/404/examples", headers=auth).status_code == 404
    dataset = dataset_create(name="d").dataset
    response = client.get(f"{URL}/{dataset.pk}/examples", {"cursor": "-1"}, headers=auth)
    assert response.status_code == 422
    assert _detail(response) == "cursor '-1' is not valid"


# --- append and delete ---------------------------------------------------------------------------


def test_append_adds_new_spans_and_skips_those_it_has(client, auth, shop):
    dataset = dataset_create(name="d", spans=[shop["bad"][0].pk]).dataset
    response = send(
        client,
        "post",
        f"{URL}/{dataset.pk}/examples",
        auth,
        {"project": "shop", "filter": "status_code = 'ERROR'"},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["added"], body["skipped"]) == (1, 1)
    assert body["data"]["example_count"] == 2
    response = send(
        client,
        "post",
        f"{URL}/d/examples",
        auth,
        {"span_ids": [shop["ok"][1].span_id, shop["bad"][2].span_id]},
    )
    assert (response.json()["added"], response.json()["skipped"]) == (1, 1)
    assert dataset.examples.count() == 3


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({}, 400, "span_ids: give span_ids or a filter"),
        ({"span_ids": []}, 400, "span_ids: must not be empty"),
        ({"filter": "status_code = 'OK'"}, 400, "project: required with filter"),
        ({"project": "shop", "filter": "status_code =="}, 400, "filter: "),
        ({"span_ids": ["ghost"]}, 404, "spans not found: ghost"),
        ({"project": "nope", "span_ids": ["ghost"]}, 404, "project 'nope' not found"),
        ({"span_ids": ["OK", "ghost"]}, 404, "spans not found: ghost"),
        ({"span_ids": [1]}, 422, "span_ids.0: Input should be a valid string"),
    ],
)
def test_append_refuses_bad_input_and_writes_nothing(client, auth, shop, body, status, detail):
    dataset = dataset_create(name="d").dataset
    body = {
        k: [shop["ok"][0].span_id if v == "OK" else v for v in vs] if k == "span_ids" else vs
        for k, vs in body.items()
    }
    response = send(client, "post", f"{URL}/{dataset.pk}/examples", auth, body)
    assert response.status_code == status, response.content
    assert _detail(response).startswith(detail)
    assert not DatasetExample.objects.exists()


def test_append_to_an_unknown_dataset_is_404(client, auth, shop):
    response = send(
        client, "post", f"{URL}/404/examples", auth, {"span_ids": [shop["ok"][0].span_id]}
    )
    assert response.status_code == 404
    assert _detail(response) == "dataset '404' not found"


def test_delete_returns_the_dataset_and_keeps_the_spans(client, auth, shop):
    dataset = dataset_create(name="d", spans=[shop["ok"][0].pk]).dataset
    response = client.delete(f"{URL}/{dataset.pk}", headers=auth)
    assert response.status_code == 200
    assert response.json()["data"]["name"] == "d"
    assert response.json()["data"]["example_count"] == 1
    assert not Dataset.objects.exists() and not DatasetExample.objects.exists()
    assert client.delete(f"{URL}/{dataset.pk}", headers=auth).status_code == 404
