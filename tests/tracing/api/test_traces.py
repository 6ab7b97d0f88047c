from datetime import timedelta
from urllib.parse import urlencode

import pytest

from tests import factories

pytestmark = pytest.mark.django_db

T0 = factories.BASE_TIME


def _get(client, auth, project="default", **params):
    return client.get(
        f"/v1/projects/{project}/traces?{urlencode(params, doseq=True)}", headers=auth
    )


def test_traces_in_phoenix_shape_newest_first(client, auth):
    older = factories.trace(start=T0)
    newer = factories.trace(start=T0 + timedelta(minutes=1))
    body = _get(client, auth).json()
    assert body["next_cursor"] is None
    assert [t["trace_id"] for t in body["data"]] == [
        newer[0].trace.trace_id,
        older[0].trace.trace_id,
    ]
    trace = body["data"][0]
    stored = newer[0].trace
    assert trace["id"] == str(stored.pk)
    assert trace["project_id"] == str(stored.project_id)
    assert trace["start_time"] == stored.start_time.isoformat()
    assert trace["end_time"] == stored.end_time.isoformat()
    assert trace["token_count_prompt"] == 100
    assert trace["token_count_completion"] == 20
    assert trace["token_count_total"] == 120
    assert "spans" not in trace


def test_include_spans(client, auth):
    root, retriever, llm = factories.trace()
    trace = _get(client, auth, include_spans="true").json()["data"][0]
    assert [s["span_id"] for s in trace["spans"]] == [root.span_id, retriever.span_id, llm.span_id]
    assert trace["spans"][1] == {
        "id": str(retriever.pk),
        "span_id": retriever.span_id,
        "parent_id": root.span_id,
        "name": "retrieve",
        "span_kind": "RETRIEVER",
        "status_code": "OK",
        "start_time": retriever.start_time.isoformat(),
        "end_time": retriever.end_time.isoformat(),
    }


def test_sort_by_latency_and_page(client, auth):
    latencies = [300, 100, 500, 200, 400]
    for i, latency in enumerate(latencies):
        factories.trace(start=T0 + timedelta(seconds=i), llm_latency_ms=latency)
    seen = []
    page = _get(client, auth, sort="latency_ms", order="asc", limit=2).json()
    seen += page["data"]
    while page["next_cursor"]:
        page = _get(
            client, auth, sort="latency_ms", order="asc", limit=2, cursor=page["next_cursor"]
        ).json()
        seen += page["data"]
    assert [t["latency_ms"] for t in seen] == [300, 400, 500, 600, 700]
    # A cursor of one ordering is refused by another.
    first = _get(client, auth, sort="latency_ms", limit=2).json()
    response = _get(client, auth, sort="start_time", cursor=first["next_cursor"])
    assert response.status_code == 400


def test_time_window_error_session_and_latency_filters(client, auth):
    a = factories.trace(start=T0, session_id="s-a", status_code="ERROR", llm_latency_ms=1000)
    b = factories.trace(start=T0 + timedelta(minutes=1), session_id="s-b")
    c = factories.trace(start=T0 + timedelta(minutes=2))

    def ids(**params):
        response = _get(client, auth, **params)
        assert response.status_code == 200, response.content
        return [t["trace_id"] for t in response.json()["data"]]

    ta, tb, tc = (x[0].trace.trace_id for x in (a, b, c))
    assert ids(start_time=(T0 + timedelta(minutes=1)).isoformat()) == [tc, tb]
    assert ids(end_time=(T0 + timedelta(minutes=1)).isoformat()) == [ta]
    assert ids(error="true") == [ta]
    assert ids(error="false") == [tc, tb]
    assert ids(session_identifier=["s-a", "s-b"]) == [tb, ta]
    assert ids(min_latency_ms=1000) == [ta]
    assert ids(max_latency_ms=1000) == [tc, tb]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "name"}, "sort"),
        ({"order": "sideways"}, "order"),
        ({"limit": "0"}, "limit"),
        ({"start_time": "soon"}, "start_time"),
        ({"min_latency_ms": "-1"}, "min_latency_ms"),
    ],
)
def test_bad_parameters_are_422_naming_them(client, auth, params, field):
    factories.project("default")
    response = _get(client, auth, **params)
    assert response.status_code == 422
    assert field in response.json()["detail"]


def test_bad_cursor_and_unknown_project(client, auth):
    factories.project("default")
    response = _get(client, auth, cursor="%%%")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("cursor")
    response = _get(client, auth, project="ghost")
    assert response.status_code == 404
    assert "'ghost'" in response.json()["detail"]


def test_a_filter_lists_the_traces_with_a_matching_span_or_root_span(client, auth):
    slow = factories.trace(start=T0, llm_latency_ms=3000)
    fast = factories.trace(start=T0 + timedelta(minutes=1), llm_latency_ms=100)
    failed = factories.trace(start=T0 + timedelta(minutes=2), status_code="ERROR")

    def listed(**params):  # type: ignore[no-untyped-def]
        response = _get(client, auth, **params)
        assert response.status_code == 200, response.content
        return [t["trace_id"] for t in response.json()["data"]]

    # The LLM span is a child: the trace is listed when any of its spans matches.
    assert listed(filter="span_kind = 'LLM' and latency_ms > 2000") == [slow[0].trace.trace_id]
    assert listed(filter="span_kind = 'LLM' and latency_ms > 2000", root_spans_only="true") == []
    assert listed(filter="status_code = 'ERROR'", root_spans_only="true") == [
        failed[0].trace.trace_id
    ]
    assert listed(filter="name = 'retrieve'", limit=2) == [
        failed[0].trace.trace_id,
        fast[0].trace.trace_id,
    ]
    bad = _get(client, auth, filter="latncy_ms > 1")
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("filter: unknown field 'latncy_ms'")
