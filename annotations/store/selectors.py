"""Reads from the annotation store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import F, Model, OrderBy, Q, QuerySet
from django.db.models.functions import Coalesce

from annotations.agreement import Rating, TargetRef, rater_of
from annotations.models import Annotation, AnnotationConfig, AnnotatorKind, TargetKind
from annotations.naming import MACHINE_KINDS, is_human
from evalhub.core.paging import InvalidCursor, Page, page_from_id
from tracing.models import Project, Session, Span, Trace

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 10_000


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
) -> Page[Annotation]:
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
    return page_from_id(query, cursor=cursor, limit=limit)


# --- pages: the annotate form, the settings list, the Annotations tab ---------------------------

AnnotationTarget = Span | Trace | Session

TARGET_OF: dict[type[Model], tuple[str, str, str]] = {
    # model → (target kind, Annotation foreign key, user-facing id field)
    Span: (TargetKind.SPAN, "span", "span_id"),
    Trace: (TargetKind.TRACE, "trace", "trace_id"),
    Session: (TargetKind.SESSION, "session", "session_id"),
}


def annotation_configs_enabled(*, project_id: int) -> list[AnnotationConfig]:
    """The rubrics enabled for a project, by name."""
    return list(
        AnnotationConfig.objects.filter(projectannotationconfig__project_id=project_id).order_by(
            "name"
        )
    )


@dataclass(frozen=True, slots=True)
class AnnotateItem:
    """One rubric on the annotate form: the person's own annotation and everyone else's."""

    config: AnnotationConfig
    mine: Annotation | None
    others: list[Annotation]


@dataclass(frozen=True, slots=True)
class AnnotatePanel:
    target_kind: str  # SPAN / TRACE / SESSION
    target_id: str
    items: list[AnnotateItem]

    @property
    def target(self) -> str:
        """The target kind as the annotate URL spells it (span, trace, session)."""
        return self.target_kind.lower()


def annotate_panel_get(
    *, target: AnnotationTarget, user: User | AnonymousUser, names: Sequence[str] = ()
) -> AnnotatePanel:
    """The annotate form of a span, trace or session: each rubric enabled for its project (or
    only those in ``names``), with ``user``'s annotation under it (identified by the username)
    and the others' of the same name."""
    kind, fk, id_field = TARGET_OF[type(target)]
    configs = annotation_configs_enabled(project_id=target.project_id)
    if names:
        configs = [config for config in configs if config.name in names]
    by_name: dict[str, list[Annotation]] = {}
    if configs:
        for annotation in (
            Annotation.objects.filter(
                **{fk: target},
                name__in=[c.name for c in configs],
                document_position__isnull=True,  # a span's own, not its documents'
            )
            .select_related("user")
            .order_by("name", "identifier", "id")
        ):
            by_name.setdefault(annotation.name, []).append(annotation)
    username = user.get_username() if user.is_authenticated else None
    items = []
    for config in configs:
        annotations = by_name.get(config.name, [])
        mine = next(
            (a for a in annotations if a.identifier == username and is_human(a.annotator_kind)),
            None,
        )
        items.append(
            AnnotateItem(config=config, mine=mine, others=[a for a in annotations if a is not mine])
        )
    return AnnotatePanel(target_kind=kind, target_id=getattr(target, id_field), items=items)


ANNOTATION_SORTS: dict[str, tuple[str, tuple[str | OrderBy, ...]]] = {
    "newest": ("Newest first", ("-created_at", "-id")),
    "oldest": ("Oldest first", ("created_at", "id")),
    "updated": ("Recently updated", ("-updated_at", "-id")),
    "name": ("Name", ("name", "-created_at", "-id")),
    "score_desc": ("Score, high to low", (F("score").desc(nulls_last=True), "-id")),
    "score_asc": ("Score, low to high", (F("score").asc(nulls_last=True), "-id")),
}
DEFAULT_ANNOTATION_SORT = "newest"
BROWSE_PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class AnnotationFilters:
    """The Annotations tab's filters; an empty value does not filter."""

    name: str = ""
    annotator_kind: str = ""
    source: str = ""
    author: str = ""  # an identifier, or the username of an annotation without one
    target_kind: str = ""
    q: str = ""  # free text: name, label, explanation, author, or a target's exact id

    @property
    def active(self) -> bool:
        return any(getattr(self, f) for f in self.__slots__)


@dataclass(frozen=True, slots=True)
class AnnotationBrowsePage:
    rows: list[Annotation]
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def annotation_browse(*, project: Project, filters: AnnotationFilters) -> QuerySet[Annotation]:
    """A project's annotations matching ``filters``, each with what its row shows: the target's
    ids and name (``span_key``, ``span_trace_key``, ``span_name``, ``trace_key``, ``trace_name``,
    ``session_key``) and the author's ``username``. Unordered."""
    query = Annotation.objects.filter(project=project)
    if filters.name:
        query = query.filter(name=filters.name)
    if filters.annotator_kind:
        query = query.filter(annotator_kind=filters.annotator_kind)
    if filters.source:
        query = query.filter(source=filters.source)
    if filters.target_kind:
        query = query.filter(target_kind=filters.target_kind)
    if filters.author:
        query = query.filter(
            Q(identifier=filters.author) | Q(identifier="", user__username=filters.author)
        )
    if filters.q:
        text = filters.q
        query = query.filter(
            Q(name__icontains=text)
            | Q(label__icontains=text)
            | Q(explanation__icontains=text)
            | Q(identifier__icontains=text)
            | Q(user__username__icontains=text)
            | Q(span__span_id=text)
            | Q(trace__trace_id=text)
            | Q(session__session_id=text)
        )
    return query.annotate(
        span_key=F("span__span_id"),
        span_trace_key=F("span__trace__trace_id"),
        span_name=F("span__name"),
        trace_key=F("trace__trace_id"),
        trace_name=F("trace__root_span_name"),
        session_key=F("session__session_id"),
        username=F("user__username"),
    )


def annotation_browse_page(
    *,
    project: Project,
    filters: AnnotationFilters,
    sort: str = DEFAULT_ANNOTATION_SORT,
    page: int = 1,
    size: int = BROWSE_PAGE_SIZE,
) -> AnnotationBrowsePage:
    """Page ``page`` (from 1) of ``annotation_browse`` in the order ``sort`` names (one of
    ``ANNOTATION_SORTS``). No count: a page knows only whether another follows."""
    if sort not in ANNOTATION_SORTS:
        raise ValueError(f"sort must be one of {', '.join(ANNOTATION_SORTS)}")
    if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError("page must be 1 or more and size between 1 and {MAX_PAGE_SIZE}")
    query = annotation_browse(project=project, filters=filters).order_by(*ANNOTATION_SORTS[sort][1])
    start = (page - 1) * size
    rows = list(query[start : start + size + 1])
    return AnnotationBrowsePage(rows=rows[:size], number=page, has_next=len(rows) > size)


def annotation_names(*, project: Project, annotator_kind: str | None = None) -> list[str]:
    """Every annotation name used in the project (by one kind of annotator), sorted."""
    query = Annotation.objects.filter(project=project)
    if annotator_kind is not None:
        query = query.filter(annotator_kind=annotator_kind)
    return sorted(query.order_by().values_list("name", flat=True).distinct())


def annotation_authors(*, project: Project, limit: int = 500) -> list[str]:
    """Who annotated in the project: identifiers, and usernames of annotations without one."""
    identifiers = (
        Annotation.objects.filter(project=project)
        .exclude(identifier="")
        .order_by()
        .values_list("identifier", flat=True)
        .distinct()[:limit]
    )
    usernames = (
        Annotation.objects.filter(project=project, identifier="", user__isnull=False)
        .order_by()
        .values_list("user__username", flat=True)
        .distinct()[:limit]
    )
    return sorted({*identifiers, *usernames})


_RATING_FIELDS = (
    "name",
    "annotator_kind",
    "identifier",
    "user__username",
    "label",
    "score",
    "target_kind",
    "span__span_id",
    "span__trace__trace_id",
    "span__name",
    "span__parent_id",
    "span__trace__root_span_name",
    "trace__trace_id",
    "trace__root_span_name",
    "session__session_id",
    "metadata__version",
    "span__start_time",
    "trace__start_time",
    "session__start_time",
)


def _machine_version(version: object, annotator_kind: str) -> int | None:
    """The evaluator version a machine's result records in its metadata (a whole number)."""
    if is_human(annotator_kind) or isinstance(version, bool) or not isinstance(version, int):
        return None
    return version


def _ratings(query: QuerySet[Annotation]) -> list[Rating]:
    ratings = []
    for (
        name,
        annotator_kind,
        identifier,
        username,
        label,
        score,
        target_kind,
        span_key,
        span_trace_key,
        span_name,
        span_parent,
        span_trace_name,
        trace_key,
        trace_name,
        session_key,
        version,
        span_time,
        trace_time,
        session_time,
    ) in query.values_list(*_RATING_FIELDS):
        stands_for = None
        if target_kind == TargetKind.SPAN:
            target = TargetRef(target_kind, span_key, span_trace_key, span_name)
            if span_parent is None and not is_human(annotator_kind):
                stands_for = TargetRef(
                    TargetKind.TRACE, span_trace_key, span_trace_key, span_trace_name
                )
        elif target_kind == TargetKind.TRACE:
            target = TargetRef(target_kind, trace_key, trace_key, trace_name)
        else:
            target = TargetRef(target_kind, session_key)
        ratings.append(
            Rating(
                name=name,
                target=target,
                rater=rater_of(
                    annotator_kind=annotator_kind,
                    name=name,
                    identifier=identifier,
                    username=username,
                ),
                label=label,
                score=score,
                stands_for=stands_for,
                version=_machine_version(version, annotator_kind),
                when=span_time or trace_time or session_time,
            )
        )
    return ratings


def agreement_ratings(*, project: Project | None, name: str | None = None) -> list[Rating]:
    """What ``annotations.agreement.agreement`` compares: the people's labels and scores in the
    project (every project for ``None``; of rubric ``name``), and the evaluators' results of
    the same names on the targets people annotated — and, for a trace people annotated, on its
    root span (``annotations.agreement.PAIRING_RULE``)."""
    rated = Q(label__isnull=False) | Q(score__isnull=False)
    in_project = Q(project=project) if project is not None else Q()
    human = Annotation.objects.filter(rated, in_project, annotator_kind=AnnotatorKind.HUMAN)
    if name is not None:
        human = human.filter(name=name)
    ratings = _ratings(human.order_by("id"))
    names = {rating.name for rating in ratings}
    if not names:
        return ratings
    human_traces = human.filter(trace__isnull=False).values("trace")
    on_human_targets = (
        Q(target_kind=TargetKind.SPAN, span__in=human.filter(span__isnull=False).values("span"))
        | Q(target_kind=TargetKind.TRACE, trace__in=human_traces)
        | Q(
            target_kind=TargetKind.SESSION,
            session__in=human.filter(session__isnull=False).values("session"),
        )
        | Q(
            target_kind=TargetKind.SPAN,
            span__parent_id__isnull=True,
            span__trace__in=human_traces,
        )
    )
    evaluators = Annotation.objects.filter(
        rated,
        on_human_targets,
        in_project,
        annotator_kind__in=MACHINE_KINDS,
        name__in=sorted(names),
    )
    return ratings + _ratings(evaluators.order_by("id"))


__all__ = [
    "ANNOTATION_SORTS",
    "BROWSE_PAGE_SIZE",
    "DEFAULT_ANNOTATION_SORT",
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "TARGET_OF",
    "AnnotateItem",
    "AnnotatePanel",
    "AnnotationBrowsePage",
    "AnnotationFilters",
    "AnnotationTarget",
    "InvalidCursor",
    "agreement_ratings",
    "annotate_panel_get",
    "annotation_authors",
    "annotation_browse",
    "annotation_browse_page",
    "annotation_configs_enabled",
    "annotation_list",
    "annotation_names",
    "annotation_queryset",
]
