"""Reads from the annotation store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce

from annotations.models import Annotation, AnnotationConfig, TargetKind
from tracing.models import Project

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 10_000


class InvalidCursor(ValueError):
    """A pagination cursor this server did not hand out."""


@dataclass
class AnnotationPage:
    items: list[Annotation]
    next_cursor: str | None


def annotation_queryset(
    *,
    project: Project,
    target_kind: str | None = None,
    span_ids: Sequence[str] | None = None,
    trace_ids: Sequence[str] | None = None,
    session_ids: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    exclude_names: Sequence[str] | None = None,
) -> QuerySet[Annotation]:
    """A project's annotations, newest first, each with ``target_key``: the user-facing
    span_id, trace_id or session_id it is on. ``*_ids`` restrict to those targets (and so to
    that target kind); ``names``/``exclude_names`` keep or drop annotation names."""
    query = Annotation.objects.filter(project=project)
    if target_kind is not None:
        query = query.filter(target_kind=target_kind)
    if span_ids is not None:
        query = query.filter(target_kind=TargetKind.SPAN, span__span_id__in=list(span_ids))
    if trace_ids is not None:
        query = query.filter(target_kind=TargetKind.TRACE, trace__trace_id__in=list(trace_ids))
    if session_ids is not None:
        query = query.filter(
            target_kind=TargetKind.SESSION, session__session_id__in=list(session_ids)
        )
    if names is not None:
        query = query.filter(name__in=list(names))
    if exclude_names:
        query = query.exclude(name__in=list(exclude_names))
    return query.annotate(
        target_key=Coalesce(F("span__span_id"), F("trace__trace_id"), F("session__session_id"))
    ).order_by("-id")


def annotation_list(
    *,
    project: Project,
    target_kind: str | None = None,
    span_ids: Sequence[str] | None = None,
    trace_ids: Sequence[str] | None = None,
    session_ids: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    exclude_names: Sequence[str] | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> AnnotationPage:
    """One page of ``annotation_queryset``, newest first.

    The cursor is the id of the first annotation of the next page, as returned in
    ``next_cursor`` (None on the last page); a cursor stays valid while annotations are added.
    Raises ``InvalidCursor`` for a cursor that is not one, ``ValueError`` for a bad limit.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
    query = annotation_queryset(
        project=project,
        target_kind=target_kind,
        span_ids=span_ids,
        trace_ids=trace_ids,
        session_ids=session_ids,
        names=names,
        exclude_names=exclude_names,
    )
    if cursor:
        try:
            last = int(cursor)
        except ValueError:
            raise InvalidCursor(f"cursor {cursor!r} is not valid") from None
        if last < 1:
            raise InvalidCursor(f"cursor {cursor!r} is not valid")
        query = query.filter(id__lte=last)
    rows = list(query[: limit + 1])
    next_cursor = str(rows[limit].pk) if len(rows) > limit else None
    return AnnotationPage(items=rows[:limit], next_cursor=next_cursor)


@dataclass
class AnnotationConfigPage:
    items: list[AnnotationConfig]
    next_cursor: str | None


def annotation_config_get(id_or_name: str) -> AnnotationConfig | None:
    """The config with this numeric id, else with this name."""
    ident = id_or_name.strip()
    if ident.isdigit():
        config = AnnotationConfig.objects.filter(pk=int(ident)).first()
        if config is not None:
            return config
    return AnnotationConfig.objects.filter(name=ident).first()


def annotation_config_list(
    *, project: Project | None = None, cursor: str | None = None, limit: int = DEFAULT_PAGE_SIZE
) -> AnnotationConfigPage:
    """One page of annotation configs (with ``project``: those enabled for it), newest first.

    The cursor is the id of the first config of the next page, as in ``annotation_list``.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
    query = AnnotationConfig.objects.order_by("-id")
    if project is not None:
        query = query.filter(projects=project)
    if cursor:
        if not cursor.isdigit() or int(cursor) < 1:
            raise InvalidCursor(f"cursor {cursor!r} is not valid")
        query = query.filter(id__lte=int(cursor))
    rows = list(query[: limit + 1])
    next_cursor = str(rows[limit].pk) if len(rows) > limit else None
    return AnnotationConfigPage(items=rows[:limit], next_cursor=next_cursor)


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "AnnotationConfigPage",
    "AnnotationPage",
    "InvalidCursor",
    "annotation_config_get",
    "annotation_config_list",
    "annotation_list",
    "annotation_queryset",
]
