"""Reads of sessions for the Phoenix-compatible API: one session by any of its names, a
project's sessions a page at a time, and the traces of sessions."""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Sequence

from tracing.models import Project, Session, Trace
from tracing.store.selectors import (
    DEFAULT_PAGE_SIZE,
    InvalidCursor,
    Page,
    cursor_datetime,
    cursor_decode,
    cursor_encode,
    global_id_pk,
    keyset_after,
)

# Phoenix names a session node ``ProjectSession``; ``Session`` is taken too.
_NODE_TYPES = ("ProjectSession", "Session")


class SessionAmbiguous(ValueError):
    """A ``session.id`` that several projects use, named without its project."""


def session_global_id(session: Session) -> str:
    """The session's ``id`` in the API: a Phoenix GlobalID, ``base64("ProjectSession:<pk>")``,
    so it cannot be mistaken for a ``session.id`` that is a number."""
    return base64.b64encode(f"ProjectSession:{session.pk}".encode()).decode()


def sessions_resolve(
    *, identifiers: Sequence[str], project: Project | None = None
) -> dict[str, Session]:
    """The sessions that ``identifiers`` name, by identifier; unknown ones are left out.

    An identifier is a session's ``session.id`` (a match wins) or its ``id`` as the API gives it
    (a GlobalID). Without ``project``, a ``session.id`` used in several projects raises
    ``SessionAmbiguous`` rather than naming them all.
    """
    wanted = list(dict.fromkeys(str(i) for i in identifiers))
    query = Session.objects.select_related("project")
    if project is not None:
        query = query.filter(project=project)
    by_key: dict[str, list[Session]] = defaultdict(list)
    for session in query.filter(session_id__in=wanted):
        by_key[session.session_id].append(session)
    found: dict[str, Session] = {}
    pks: dict[str, int] = {}
    for identifier in wanted:
        matches = by_key.get(identifier)
        if matches:
            if len(matches) > 1:
                raise SessionAmbiguous(
                    f"session {identifier!r} is in several projects; name it by its id"
                )
            found[identifier] = matches[0]
            continue
        for node_type in _NODE_TYPES:
            pk = global_id_pk(identifier, node_type)
            if pk is not None:
                pks[identifier] = pk
                break
    by_pk = {s.pk: s for s in query.filter(pk__in=set(pks.values()))}
    for identifier, pk in pks.items():
        if pk in by_pk:
            found[identifier] = by_pk[pk]
    return found


def session_get(identifier: str) -> Session | None:
    """The session ``identifier`` names (see ``sessions_resolve``), or ``None``."""
    return sessions_resolve(identifiers=[identifier]).get(str(identifier))


def session_list(
    *, project: Project, cursor: str | None = None, limit: int = DEFAULT_PAGE_SIZE
) -> Page[Session]:
    """A project's sessions, newest start first, ``limit`` at a time (keyset cursor)."""
    query = Session.objects.select_related("project").filter(
        project=project, start_time__isnull=False
    )
    if cursor:
        raw_start, last_id = cursor_decode(cursor, "session", 2)
        if not isinstance(last_id, int):
            raise InvalidCursor("cursor is not valid")
        query = query.filter(
            keyset_after("start_time", cursor_datetime(raw_start), last_id, descending=True)
        )
    rows = list(query.order_by("-start_time", "-id")[: limit + 1])
    if len(rows) > limit:
        last = rows[limit - 1]
        return Page(rows[:limit], cursor_encode("session", last.start_time, last.pk))
    return Page(rows, None)


def session_traces(session_pks: Sequence[int]) -> dict[int, list[Trace]]:
    """The traces of each session, oldest first."""
    traces: dict[int, list[Trace]] = defaultdict(list)
    for trace in (
        Trace.objects.filter(session_id__in=list(session_pks))
        .only("id", "trace_id", "start_time", "end_time", "session_id")
        .order_by("start_time", "id")
    ):
        assert trace.session_id is not None
        traces[trace.session_id].append(trace)
    return traces
