import base64
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotations.models import Annotation
from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories
from tracing.models import Session, Span, Trace
from tracing.store.metadata import metadata_merge

pytestmark = pytest.mark.django_db


def patch_metadata(client, auth, project, data):
    return client.patch(
        f"/v1/projects/{project}/spans/metadata",
        json.dumps({"data": data}),
        content_type="application/json",
        headers=auth,
    )


def delete_many(client, auth, project, span_ids):
    return client.post(
        f"/v1/projects/{project}/spans/delete",
        json.dumps({"span_ids": span_ids}),
        content_type="application/json",
        headers=auth,
    )


def annotate(span: Span) -> None:
    annotations_upsert(
        items=[AnnotationInput(target_kind="SPAN", target_id=span.span_id, name="q", score=1)]
    )


def test_metadata_merge_is_rfc7386_except_null_is_kept():
    target = {"a": 1, "nested": {"x": 1, "y": {"deep": True}}, "list": [1, 2], "gone": "v"}
    patch = {"nested": {"y": {"more": 2}, "z": 3}, "list": [3], "gone": None, "new": {"k": None}}
    assert metadata_merge(target, patch) == {
        "a": 1,
        "nested": {"x": 1, "y": {"deep": True, "more": 2}, "z": 3},
        "list": [3],
        "gone": None,
        "new": {"k": None},
    }
    assert target["nested"] == {"x": 1, "y": {"deep": True}}  # the target is not mutated
    assert metadata_merge({"a": "scalar"}, {"a": {"b": 1}}) == {"a": {"b": 1}}


def test_patch_metadata_merges_per_span_and_reports_errors(client, auth):
    root, retriever, llm = factories.trace(
        project="shop", metadata={"user": {"tier": "free", "region": "eu"}, "v": 1}
    )
    other = factories.trace(project="elsewhere")[0]
    response = patch_metadata(
        client,
        auth,
        "shop",
        [
            {"span_id": root.span_id, "metadata": {"user": {"tier": "pro"}, "v": None}},
            {"span_id": "ffffffffffffffff", "metadata": {"a": 1}},
            {"span_id": retriever.span_id, "metadata": {"reviewed": True}},
            {"span_id": llm.span_id, "metadata": ["not", "an", "object"]},
            {"span_id": other.span_id, "metadata": {"a": 1}},
        ],
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["spans_processed"], body["spans_updated"], body["spans_failed"]) == (5, 2, 3)
    errors = {e["span_id"]: e["error_message"] for e in body["errors"]}
    assert set(errors) == {"ffffffffffffffff", llm.span_id, other.span_id}
    assert "not found" in errors["ffffffffffffffff"]
    assert errors[llm.span_id] == "metadata patch must be a JSON object, not an array"

    root.refresh_from_db()
    assert root.metadata == {"user": {"tier": "pro", "region": "eu"}, "v": None}
    retriever.refresh_from_db()
    assert retriever.metadata == {"reviewed": True}
    llm.refresh_from_db()
    assert llm.metadata == {"user": {"tier": "free", "region": "eu"}, "v": 1}
    other.refresh_from_db()
    assert other.metadata == {}


def test_a_null_patch_is_an_error_not_a_reset(client, auth):
    span = factories.trace(metadata={"keep": 1})[0]
    body = patch_metadata(client, auth, "default", [{"span_id": span.span_id, "metadata": None}])
    assert body.json()["errors"] == [
        {"span_id": span.span_id, "error_message": "metadata patch must be a JSON object, not null"}
    ]
    span.refresh_from_db()
    assert span.metadata == {"keep": 1}


def test_patches_for_one_span_apply_in_order(client, auth):
    span = factories.trace()[0]
    response = patch_metadata(
        client,
        auth,
        "default",
        [
            {"span_id": span.span_id, "metadata": {"a": 1}},
            {"span_id": span.span_id, "metadata": {"b": 2}},
        ],
    )
    assert response.json()["spans_updated"] == 2
    span.refresh_from_db()
    assert span.metadata == {"a": 1, "b": 2}


def test_patching_1000_spans_takes_a_few_queries(client, auth):
    spans = []
    for _ in range(334):
        spans.extend(factories.trace(project="big"))
    data = [{"span_id": s.span_id, "metadata": {"batch": 7}} for s in spans[:1000]]
    with CaptureQueriesContext(connection) as queries:
        response = patch_metadata(client, auth, "big", data)
    assert response.json()["spans_updated"] == 1000
    assert len(queries.captured_queries) < 15
    assert Span.objects.filter(project__name="big", metadata__batch=7).count() == 1000


def test_patch_metadata_bad_requests(client, auth):
    span = factories.trace()[0]
    too_many = [{"span_id": span.span_id, "metadata": {}}] * 1001
    assert patch_metadata(client, auth, "default", too_many).status_code == 422
    assert (
        patch_metadata(client, auth, "nope", [{"span_id": "a", "metadata": {}}]).status_code == 404
    )
    bad = {"Authorization": "Bearer nope"}
    assert (
        patch_metadata(
            client, bad, "default", [{"span_id": span.span_id, "metadata": {"a": 1}}]
        ).status_code
        == 401
    )
    span.refresh_from_db()
    assert span.metadata == {}


def test_delete_one_span_by_id_or_global_id(client, auth):
    root, retriever, llm = factories.trace(session_id="conv")
    annotate(retriever)
    response = client.delete(f"/v1/spans/{retriever.span_id}", headers=auth)
    assert response.status_code == 204
    assert not Span.objects.filter(pk=retriever.pk).exists()
    assert not Annotation.objects.exists()
    trace = Trace.objects.get(pk=root.trace_id)
    assert trace.span_count == 2
    assert Session.objects.get(session_id="conv").span_count == 2

    global_id = base64.b64encode(f"Span:{llm.pk}".encode()).decode()
    assert client.delete(f"/v1/spans/{global_id}", headers=auth).status_code == 204
    assert list(Span.objects.values_list("span_id", flat=True)) == [root.span_id]

    missing = client.delete("/v1/spans/0123456789abcdef", headers=auth)
    assert missing.status_code == 404
    assert "0123456789abcdef" in missing.json()["detail"]
    assert (
        client.delete(
            f"/v1/spans/{root.span_id}", headers={"Authorization": "Bearer x"}
        ).status_code
        == 401
    )
    assert Span.objects.filter(pk=root.pk).exists()


def test_delete_many_recomputes_traces_and_sessions(client, auth):
    first = factories.trace(project="shop", session_id="conv", status_code="ERROR")
    second = factories.trace(project="shop", session_id="conv")
    elsewhere = factories.trace(project="other")
    for span in first + second:
        annotate(span)
    response = delete_many(
        client,
        auth,
        "shop",
        [first[2].span_id, *[s.span_id for s in second], "unknown00000000", elsewhere[0].span_id],
    )
    assert response.status_code == 200
    assert response.json() == {
        "deleted": 4,
        "deleted_span_ids": [first[2].span_id, *[s.span_id for s in second]],
    }
    assert Span.objects.filter(pk=elsewhere[0].pk).exists()
    assert Annotation.objects.filter(span__in=second).count() == 0
    assert Annotation.objects.count() == 2

    trace = Trace.objects.get(pk=first[0].trace_id)
    # The ERROR root and the retriever stay; the LLM span (an error, with the tokens) went.
    assert (trace.span_count, trace.error_count, trace.total_tokens) == (2, 1, 0)
    assert trace.root_span_id == first[0].span_id
    assert not Trace.objects.filter(pk=second[0].trace_id).exists()
    session = Session.objects.get(session_id="conv")
    assert (session.trace_count, session.span_count) == (1, 2)

    response = delete_many(client, auth, "shop", [s.span_id for s in first[:2]])
    assert response.json() == {"deleted": 2, "deleted_span_ids": [s.span_id for s in first[:2]]}
    assert not Session.objects.filter(session_id="conv").exists()
    assert not Annotation.objects.exists()
    assert delete_many(client, auth, "shop", ["x"] * 1001).status_code == 422
    assert delete_many(client, auth, "missing-project", ["x"]).status_code == 404


def test_delete_by_the_ids_the_span_listing_gives(client, auth):
    root, retriever, llm = factories.trace(project="shop")
    other = factories.trace(project="elsewhere")[0]
    listed = client.get("/v1/projects/shop/spans", headers=auth).json()["data"]
    ids = {span["context"]["span_id"]: span["id"] for span in listed}
    assert ids[llm.span_id] == str(llm.pk)

    global_id = base64.b64encode(f"Span:{retriever.pk}".encode()).decode()
    response = delete_many(
        client,
        auth,
        "shop",
        # The listing's id, a GlobalID, the same span twice (both forms), another project's
        # span by id, and ids that are no span: a huge number and text that is not base64.
        [ids[llm.span_id], global_id, llm.span_id, str(other.pk), "9" * 40, "Span:1"],
    )
    assert response.status_code == 200
    assert response.json() == {
        "deleted": 2,
        "deleted_span_ids": [llm.span_id, retriever.span_id],
    }
    assert list(Span.objects.filter(project__name="shop").values_list("pk", flat=True)) == [root.pk]
    assert Span.objects.filter(pk=other.pk).exists()

    # One span, by the listing's id; a span_id that looks like a number is a span_id first.
    assert client.delete(f"/v1/spans/{root.pk}", headers=auth).status_code == 204
    assert not Span.objects.filter(pk=root.pk).exists()
    numeric = factories.trace(project="shop")[0]
    Span.objects.filter(pk=numeric.pk).update(span_id=str(other.pk))
    assert client.delete(f"/v1/spans/{other.pk}", headers=auth).status_code == 204
    assert not Span.objects.filter(pk=numeric.pk).exists()
    assert Span.objects.filter(pk=other.pk).exists()
    assert client.delete(f"/v1/spans/{'9' * 40}", headers=auth).status_code == 404
