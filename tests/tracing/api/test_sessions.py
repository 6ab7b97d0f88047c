"""``client.sessions`` of the real ``arize-phoenix-client`` against a live server."""

from datetime import timedelta

import httpx
import pytest
from phoenix.client import Client

from annotations.models import Annotation
from tests import factories
from tracing.models import Session, Span, Trace

pytestmark = pytest.mark.django_db(transaction=True)

T0 = factories.BASE_TIME


@pytest.fixture
def px(live_server, api_key) -> Client:
    return Client(base_url=live_server.url, api_key=api_key)


def _conversation(session_id: str, turns: int, project: str = "chat") -> list[list[Span]]:
    return [
        factories.trace(
            project=project,
            session_id=session_id,
            start=T0 + timedelta(minutes=n),
            input_value=f"question {n}",
            output_value=f"answer {n}",
        )
        for n in range(turns)
    ]


def test_list_get_and_dataframe(px):
    _conversation("conv-a", 3)
    _conversation("conv-b", 1)
    _conversation("elsewhere", 1, project="other")

    sessions = px.sessions.list(project_name="chat")
    assert [s["session_id"] for s in sessions] == ["conv-b", "conv-a"]  # newest first
    conv_a = sessions[1]
    assert len(conv_a["traces"]) == 3
    assert conv_a["project_id"] == str(Session.objects.get(session_id="conv-a").project_id)
    assert conv_a["token_count_total"] > 0
    assert conv_a["start_time"] < conv_a["end_time"]

    # By id (a GlobalID) and by session.id, the same session.
    assert px.sessions.get(session_id=conv_a["id"]) == conv_a
    assert px.sessions.get(session_id="conv-a") == conv_a
    # list(limit=) pages through the cursor.
    assert [s["session_id"] for s in px.sessions.list(project_name="chat", limit=1)] == ["conv-b"]

    frame = px.sessions.get_sessions_dataframe(project_name="chat")
    assert list(frame["session_id"]) == ["conv-b", "conv-a"]
    assert list(frame["num_traces"]) == [1, 3]


def test_list_pages_with_a_cursor(px, live_server, api_key):
    for n in range(5):
        _conversation(f"s-{n}", 1)
    url = f"{live_server.url}/v1/projects/chat/sessions"
    headers = {"Authorization": f"Bearer {api_key}"}
    first = httpx.get(url, params={"limit": 2}, headers=headers).json()
    second = httpx.get(
        url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers
    ).json()
    assert [s["session_id"] for s in first["data"]] == ["s-4", "s-3"]
    assert [s["session_id"] for s in second["data"]] == ["s-2", "s-1"]
    bad = httpx.get(url, params={"cursor": "not-a-cursor"}, headers=headers)
    assert bad.status_code == 400 and "cursor" in bad.json()["detail"]


def test_session_turns(px):
    _conversation("turns", 3)
    turns = px.sessions.get_session_turns(session_id="turns")
    assert [t["input"]["value"] for t in turns] == ["question 0", "question 1", "question 2"]
    assert [t["output"]["value"] for t in turns] == ["answer 0", "answer 1", "answer 2"]
    assert all(t["root_span"]["parent_id"] is None for t in turns)


def test_unknown_and_ambiguous_sessions(px):
    with pytest.raises(httpx.HTTPStatusError) as missing:
        px.sessions.get(session_id="nope")
    assert missing.value.response.status_code == 404
    _conversation("shared", 1, project="p1")
    _conversation("shared", 1, project="p2")
    with pytest.raises(httpx.HTTPStatusError) as ambiguous:
        px.sessions.get(session_id="shared")
    assert ambiguous.value.response.status_code == 409
    assert "name it by its id" in ambiguous.value.response.json()["detail"]
    # By its id, each one is reachable.
    ids = [s["id"] for s in px.sessions.list(project_name="p2")]
    assert px.sessions.get(session_id=ids[0])["project_id"] == str(
        Session.objects.get(project__name="p2").project_id
    )


def test_delete_and_bulk_delete(px):
    _conversation("gone", 2)
    _conversation("also-gone", 1)
    _conversation("kept", 1)
    gone = Session.objects.get(session_id="gone")
    Annotation.objects.create(
        project=gone.project, target_kind="SESSION", session=gone, name="q", annotator_kind="LLM"
    )
    px.sessions.delete(session_id="gone")
    assert not Session.objects.filter(session_id="gone").exists()
    assert not Span.objects.filter(session_key="gone").exists()
    assert not Annotation.objects.filter(name="q").exists()

    also = px.sessions.list(project_name="chat")
    also_id = next(s["id"] for s in also if s["session_id"] == "also-gone")
    px.sessions.bulk_delete(session_ids=[also_id, "never-existed"])
    assert list(Session.objects.values_list("session_id", flat=True)) == ["kept"]
    assert Trace.objects.count() == 1 and Span.objects.count() == 3

    with pytest.raises(httpx.HTTPStatusError) as missing:
        px.sessions.delete(session_id="gone")
    assert missing.value.response.status_code == 404


def test_reading_needs_a_key_and_deleting_needs_an_admin(live_server):
    _conversation("private", 1)
    reader = Client(base_url=live_server.url, api_key=factories.api_key("r", scope="read"))
    assert reader.sessions.get(session_id="private")["session_id"] == "private"
    with pytest.raises(httpx.HTTPStatusError) as refused:
        reader.sessions.delete(session_id="private")
    assert refused.value.response.status_code == 403
    anonymous = httpx.get(f"{live_server.url}/v1/sessions/private")
    assert anonymous.status_code == 401
    assert Session.objects.filter(session_id="private").exists()
