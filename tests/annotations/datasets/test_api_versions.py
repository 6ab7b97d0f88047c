"""Dataset uploads and versions over the API: every change a version, browse/diff/download
any version, malformed uploads refused by row with nothing stored."""

from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotations.datasets.models import Dataset, DatasetExample, DatasetVersion
from annotations.datasets.services import dataset_create
from tests import factories

pytestmark = pytest.mark.django_db

URL = "/v1/datasets"


def _upload(client, auth, **body):
    return client.post(
        f"{URL}/upload?sync=true", json.dumps(body), content_type="application/json", headers=auth
    )


def _file(client, auth, filename, data, **fields):
    form = {"file": SimpleUploadedFile(filename, data), "action": "create", "name": "t", **fields}
    return client.post(f"{URL}/upload", form, headers=auth)


def _examples(client, auth, dataset, version=None):
    query = {"version_id": version} if version else {}
    return client.get(f"{URL}/{dataset}/examples", query, headers=auth).json()["data"]


def test_json_upload_then_edit_and_delete_make_versions(client, auth):
    created = _upload(
        client,
        auth,
        action="create",
        name="qa",
        inputs=[{"q": "a"}, {"q": "b"}],
        outputs=[{"a": 1}, {"a": 2}],
        metadata=[{"m": True}, {}],
    )
    assert created.status_code == 200, created.content
    first = created.json()["data"]
    assert (first["num_created_examples"], first["num_deleted_examples"]) == (2, 0)
    examples = _examples(client, auth, "qa")["examples"]
    assert [(e["input"], e["output"], e["metadata"]) for e in examples] == [
        ({"q": "a"}, {"a": 1}, {"m": True}),
        ({"q": "b"}, {"a": 2}, {}),
    ]

    edit = client.post(
        f"{URL}/qa/examples/edit",
        {"examples": [{"id": examples[0]["id"], "input": {"q": "A"}, "output": {"a": 1}}]},
        content_type="application/json",
        headers=auth,
    )
    assert edit.status_code == 200, edit.content
    removed = client.post(
        f"{URL}/qa/examples/delete",
        {"example_ids": [examples[1]["id"]]},
        content_type="application/json",
        headers=auth,
    )
    third = removed.json()["data"]["version_id"]
    assert [e["input"] for e in _examples(client, auth, "qa")["examples"]] == [{"q": "A"}]
    # Every older version reads as it was.
    assert [e["input"] for e in _examples(client, auth, "qa", first["version_id"])["examples"]] == [
        {"q": "a"},
        {"q": "b"},
    ]
    versions = client.get(f"{URL}/qa/versions", headers=auth).json()["data"]
    assert [v["version_id"] for v in versions] == [
        third,
        edit.json()["data"]["version_id"],
        first["version_id"],
    ]
    diff = client.get(
        f"{URL}/qa/versions/{third}/diff", {"against": first["version_id"]}, headers=auth
    ).json()["data"]
    assert [r["input"] for r in diff["removed"]] == [{"q": "b"}]
    assert [(c["before"]["input"], c["after"]["input"]) for c in diff["changed"]] == [
        ({"q": "a"}, {"q": "A"})
    ]
    assert diff["added"] == []
    old_csv = client.get(f"{URL}/qa/csv", {"version_id": first["version_id"]}, headers=auth)
    assert old_csv.status_code == 200
    assert old_csv.content.decode().count("\n") == 3  # header + two examples

    # A version of another dataset, and an example the dataset does not have.
    assert client.get(f"{URL}/qa/examples", {"version_id": "999"}, headers=auth).status_code == 404
    gone = client.post(
        f"{URL}/qa/examples/delete",
        {"example_ids": [examples[1]["id"]]},
        content_type="application/json",
        headers=auth,
    )
    assert gone.status_code == 404
    assert gone.json()["detail"] == f"example {examples[1]['id']} is not in dataset 'qa'"


def test_update_keeps_equal_rows_and_deletes_the_rest(client, auth):
    _upload(client, auth, action="create", name="u", inputs=[{"x": 1}, {"x": 2}])
    keep = DatasetExample.objects.order_by("id").first()
    updated = _upload(client, auth, action="update", name="u", inputs=[{"x": 1}, {"x": 3}])
    data = updated.json()["data"]
    assert (data["num_created_examples"], data["num_deleted_examples"]) == (1, 1)
    now = _examples(client, auth, "u")["examples"]
    assert [(e["id"], e["input"]) for e in now] == [
        (str(keep.pk), {"x": 1}),
        (now[1]["id"], {"x": 3}),
    ]
    taken = _upload(client, auth, action="create", name="u", inputs=[{"x": 1}])
    assert taken.status_code == 409


def test_tables_csv_gzip_jsonl_parquet(client, auth):
    csv_data = gzip.compress(b'question,answer,topic\nwhy?,because,x\nhow?,"so, it is",y\n')
    response = _file(
        client,
        auth,
        "t.csv",
        csv_data,
        **{"input_keys[]": ["question"], "output_keys[]": ["answer"], "metadata_keys[]": ["topic"]},
    )
    assert response.status_code == 200, response.content
    examples = _examples(client, auth, "t")["examples"]
    assert examples[1]["output"] == {"answer": "so, it is"}

    jsonl = b'{"q": "a", "n": 1}\n\n{"q": "b", "n": 2}\n'
    assert _file(client, auth, "j.jsonl", jsonl, name="j").status_code == 200
    assert [e["input"] for e in _examples(client, auth, "j")["examples"]] == [
        {"q": "a", "n": 1},
        {"q": "b", "n": 2},
    ]

    buffer = io.BytesIO()
    pq.write_table(pa.table({"q": ["p1"], "gold": ["g1"]}), buffer)
    response = _file(
        client,
        auth,
        "p.parquet",
        buffer.getvalue(),
        name="p",
        **{"input_keys[]": ["q"], "output_keys[]": ["gold"]},
    )
    assert response.status_code == 200, response.content
    assert _examples(client, auth, "p")["examples"][0]["output"] == {"gold": "g1"}


@pytest.mark.parametrize(
    ("filename", "data", "detail"),
    [
        ("bad.csv", b"a,b\n1,2\n3,4,5\n", "file: row 2: expected 2 fields, got 3"),
        ("bad.jsonl", b'{"a": 1}\n[1, 2]\n', "file: row 2: must be a JSON object"),
        ("bad.jsonl", b'{"a": 1}\n{"a": \n', "file: row 2: not JSON"),
        ("bad.parquet", b"PAR1 not really", "file: not a readable Parquet file"),
        ("bad.csv", b"a,b\n1,2\n", "file: columns not found: missing"),
    ],
)
def test_a_malformed_upload_is_refused_by_row_and_nothing_is_stored(
    client, auth, filename, data, detail
):
    fields = {"input_keys[]": ["missing"]} if "columns" in detail else {}
    response = _file(client, auth, filename, data, **fields)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)
    assert not Dataset.objects.exists() and not DatasetExample.objects.exists()


def test_bad_json_uploads(client, auth):
    cases = [
        ({"inputs": []}, "inputs: must be a non-empty list of JSON objects"),
        ({"inputs": [{"a": 1}, "text"]}, "inputs: row 2: must be a JSON object"),
        (
            {"inputs": [{"a": 1}], "outputs": [{}, {}]},
            "outputs: must be a list as long as inputs (1)",
        ),
        (
            {"inputs": [{"a": 1}], "action": "merge"},
            "action: must be one of create, append, update",
        ),
        ({"inputs": [{"a": 1}], "name": " "}, "name: must not be empty"),
    ]
    for body, detail in cases:
        response = _upload(client, auth, **{"name": "n", **body})
        assert response.status_code == 400, body
        assert response.json()["detail"].startswith(detail), response.json()
    assert not Dataset.objects.exists()


def test_adding_spans_makes_a_version_with_json_objects(client, auth):
    *_, llm = factories.trace(project="shop")
    dataset = dataset_create(name="spans", spans=[llm.pk]).dataset
    version = DatasetVersion.objects.get(dataset=dataset)
    example = _examples(client, auth, dataset.pk)["examples"][0]
    assert example["input"] == {"input": llm.input_value}
    assert _examples(client, auth, dataset.pk)["version_id"] == str(version.pk)
    deleted = client.delete(f"{URL}/spans/versions/{version.pk}", headers=auth)
    assert deleted.json()["data"]["deleted"] is True


def test_a_deleted_example_leaves_counts_and_its_span_can_come_back(client, auth):
    from annotations.datasets.services import dataset_examples_add

    *_, llm = factories.trace(project="shop")
    dataset = dataset_create(name="spans", spans=[llm.pk]).dataset
    example = DatasetExample.objects.get(dataset=dataset)
    removed = client.post(
        f"{URL}/spans/examples/delete",
        {"example_ids": [str(example.pk)]},
        content_type="application/json",
        headers=auth,
    )
    assert removed.status_code == 200
    assert client.get(f"{URL}/spans", headers=auth).json()["data"]["example_count"] == 0
    # Added again from the trace browser: a new example, in a new version.
    again = dataset_examples_add(dataset=dataset, spans=[llm.pk])
    assert (again.added, again.skipped) == (1, 0)
    assert client.get(f"{URL}/spans", headers=auth).json()["data"]["example_count"] == 1
    assert DatasetVersion.objects.filter(dataset=dataset).count() == 3
