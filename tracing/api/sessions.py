"""Phoenix-compatible session routes (``/v1``): list a project's sessions, read one, delete.

Shapes follow the Phoenix REST API (``SessionData``: ``id``, ``session_id``, ``project_id``,
``start_time``, ``end_time``, ``traces``, token counts) so ``client.sessions`` of
``arize-phoenix-client`` works unchanged. A session is named by its ``session.id`` or by its
``id`` (a GlobalID); ``session.id`` is unique per project only, so one that several projects use
must be named by its ``id``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema
from ninja.errors import HttpError

from evalhub.core.paging import Page, Pages, paged
from tracing.api.mutations import project_from_path
from tracing.models import Session, Trace
from tracing.store.services import sessions_delete
from tracing.store.sessions import (
    SessionAmbiguous,
    session_get,
    session_global_id,
    session_list,
    session_traces,
    sessions_resolve,
)

router = Router(tags=["sessions"])

MAX_BATCH = 1000


class SessionTraceOut(Schema):
    id: str
    trace_id: str
    start_time: str
    end_time: str


class SessionOut(Schema):
    id: str = Field(..., description="GlobalID of the session (base64 of 'ProjectSession:<n>')")
    session_id: str
    project_id: str
    start_time: str
    end_time: str
    traces: list[SessionTraceOut]
    token_count_prompt: int
    token_count_completion: int
    token_count_total: int


class SessionOneOut(Schema):
    data: SessionOut


class SessionsDeleteBody(Schema):
    session_identifiers: list[str] = Field(..., min_length=1, max_length=MAX_BATCH)


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def _session_out(session: Session, traces: list[Trace]) -> dict[str, Any]:
    return {
        "id": session_global_id(session),
        "session_id": session.session_id,
        "project_id": str(session.project_id),
        "start_time": _iso(session.start_time),
        "end_time": _iso(session.end_time),
        "traces": [
            {
                "id": str(trace.pk),
                "trace_id": trace.trace_id,
                "start_time": _iso(trace.start_time),
                "end_time": _iso(trace.end_time),
            }
            for trace in traces
        ],
        "token_count_prompt": session.prompt_tokens,
        "token_count_completion": session.completion_tokens,
        "token_count_total": session.total_tokens,
    }


def _session_or_error(identifier: str) -> Session:
    try:
        session = session_get(identifier)
    except SessionAmbiguous as exc:
        raise HttpError(409, f"session_id: {exc}") from None
    if session is None:
        raise HttpError(404, f"session {identifier!r} not found")
    return session


@router.get("/projects/{name:project}/sessions", response=list[SessionOut])
@paged()
def sessions_list(request: HttpRequest, project: str) -> Pages:
    """A project's sessions, newest first, with their traces (oldest first)."""
    found = project_from_path(project)

    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        page = session_list(project=found, cursor=cursor, limit=limit)
        traces = session_traces([s.pk for s in page.items])
        return page.map(lambda s: _session_out(s, traces.get(s.pk, [])))

    return pages


@router.post("/sessions/delete", response={204: None})
def sessions_delete_many(request: HttpRequest, body: SessionsDeleteBody) -> HttpResponse:
    """Delete sessions by ``session.id`` or ``id``, with their traces, spans and annotations;
    unknown identifiers are skipped. A ``session.id`` that several projects use is refused
    (409) and nothing is deleted."""
    try:
        found = sessions_resolve(identifiers=body.session_identifiers)
    except SessionAmbiguous as exc:
        raise HttpError(409, f"session_identifiers: {exc}") from None
    sessions_delete(sessions=list(found.values()))
    return HttpResponse(status=204)


@router.get("/sessions/{name:session_identifier}", response=SessionOneOut)
def session_detail(request: HttpRequest, session_identifier: str) -> dict[str, Any]:
    """One session by its ``session.id`` or its ``id``, with its traces."""
    session = _session_or_error(session_identifier)
    return {"data": _session_out(session, session_traces([session.pk]).get(session.pk, []))}


@router.delete("/sessions/{name:session_identifier}", response={204: None})
def session_delete(request: HttpRequest, session_identifier: str) -> HttpResponse:
    """Delete a session for good, with its traces, spans and annotations."""
    sessions_delete(sessions=[_session_or_error(session_identifier)])
    return HttpResponse(status=204)
