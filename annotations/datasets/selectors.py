"""Reads for datasets: the datasets and their examples (pages and export batches), and the
source spans an export to a dataset takes its examples from.

An example is made from one span. From the spans table that is the span; from the traces table
a trace's root span (its earliest span when the root has not arrived); from the sessions table
the session's first root span. ``ExampleSource`` rows carry what an example copies from
its span, with the labels of the annotations on it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery

from annotations.datasets.models import Dataset, DatasetExample
from annotations.models import Annotation, TargetKind
from annotations.naming import label_key
from evalhub.core.paging import InvalidCursor, Page, page_from_id
from tracing.browser.tabs import Tab
from tracing.models import Project, Session, Span, Trace

DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000
EXPORT_BATCH_SIZE: Final = 1000

SourceKind = Literal["span", "trace", "session"]
SOURCE_OF_TAB: Final[dict[Tab, SourceKind]] = {
    "spans": "span",
    "traces": "trace",
    "sessions": "session",
}


# Examples deleted from a dataset stay for its older versions; counts leave them out.
_LIVE_COUNT: Final = Count("examples", filter=Q(examples__removed_at__isnull=True))


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")


# --- datasets ---------------------------------------------------------------------------------


def dataset_get(id_or_name: str | int, *, by_name: bool = True) -> Dataset | None:
    """The dataset with this numeric id, else (``by_name``) with this name; with
    ``example_count``."""
    ident = str(id_or_name).strip()
    query = dataset_list()
    if ident.isdigit():
        found = query.filter(pk=int(ident)).first()
        if found is not None or not by_name:
            return found
    return query.filter(name=ident).first() if by_name else None


def dataset_list() -> QuerySet[Dataset]:
    """Every dataset, most recently changed first, each with ``example_count``."""
    return Dataset.objects.annotate(example_count=_LIVE_COUNT).order_by("-updated_at", "-id")


def dataset_page(*, cursor: str | None = None, limit: int = DEFAULT_PAGE_SIZE) -> Page[Dataset]:
    """Datasets newest first (by id), ``limit`` at a time, each with ``example_count``.

    The cursor is the id of the first dataset of the next page (``next_cursor``, None on the
    last page). Raises ``InvalidCursor`` and ``ValueError`` for a bad limit.
    """
    _check_limit(limit)
    query = Dataset.objects.annotate(example_count=_LIVE_COUNT).order_by("-id")
    return page_from_id(query, cursor=cursor, limit=limit)


def dataset_names() -> list[str]:
    """The names of all datasets, alphabetically (for choosing one)."""
    return list(Dataset.objects.order_by("name").values_list("name", flat=True))


def annotation_names_recent(*, project: Project, sample: int = 2000) -> list[str]:
    """Keys of the project's most recent annotations of any kind, as an example's ``labels``
    holds them (for choosing the one an expected output comes from)."""
    recent = (
        Annotation.objects.filter(project=project)
        .order_by("-created_at")
        .values_list("name", "annotator_kind")[:sample]
    )
    return sorted({label_key(name, kind) for name, kind in recent})


# --- examples ---------------------------------------------------------------------------------


def dataset_examples(*, dataset: Dataset) -> QuerySet[DatasetExample]:
    """A dataset's examples in the order they were added (not those deleted from it)."""
    return DatasetExample.objects.filter(dataset=dataset, removed_at__isnull=True).order_by("id")


def dataset_examples_page(
    *, dataset: Dataset, cursor: str | None = None, limit: int = DEFAULT_PAGE_SIZE
) -> Page[DatasetExample]:
    """One page of a dataset's examples in the order they were added; the cursor is the id of
    the first example of the next page. Raises ``InvalidCursor``, ``ValueError`` (limit)."""
    _check_limit(limit)
    query = dataset_examples(dataset=dataset)
    return page_from_id(query, cursor=cursor, limit=limit, descending=False)


EXPORT_FIELDS: Final = (
    "id",
    "input",
    "output",
    "expected_output",
    "labels",
    "metadata",
    "source_span_id",
    "source_trace_id",
    "source_project",
    "created_at",
)


def dataset_example_rows_batched(
    *, dataset: Dataset, batch_size: int = EXPORT_BATCH_SIZE
) -> Iterator[list[dict[str, Any]]]:
    """A dataset's examples as ``.values(*EXPORT_FIELDS)`` dicts in id order, in keyset batches:
    memory stays bounded by one batch whatever the size of the dataset."""
    last = 0
    while True:
        rows = list(
            DatasetExample.objects.filter(dataset=dataset, id__gt=last, removed_at__isnull=True)
            .order_by("id")
            .values(*EXPORT_FIELDS)[:batch_size]
        )
        if not rows:
            return
        yield rows
        if len(rows) < batch_size:
            return
        last = rows[-1]["id"]


# --- the spans examples are made from ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceSpans:
    """Span pks to make examples from (in the rows' order) and the keys not found."""

    pks: list[int]
    missing: list[str] = field(default_factory=list)


def _first_span_of_trace() -> Subquery:
    """For a Trace row: its root span's pk (the earliest root), else its earliest span's."""
    return Subquery(
        Span.objects.filter(trace_id=OuterRef("pk"))
        .order_by(F("parent_id").asc(nulls_first=True), "start_time", "id")
        .values("pk")[:1]
    )


def _first_span_of_session() -> Subquery:
    """For a Session row: its first root span (its earliest span when it has no root)."""
    return Subquery(
        Span.objects.filter(session_id=OuterRef("pk"))
        .order_by(F("parent_id").asc(nulls_first=True), "start_time", "id")
        .values("pk")[:1]
    )


def dataset_source_spans_selected(
    *, project: Project, tab: Tab, keys: Sequence[str]
) -> SourceSpans:
    """The spans to make examples of for the rows a user selected in a tab (span, trace or
    session ids of ``project``), in the keys' order; keys not in the project are ``missing``."""
    wanted = list(dict.fromkeys(key for key in keys if key))
    if tab == "spans":
        found = dict(
            Span.objects.filter(project=project, span_id__in=wanted).values_list("span_id", "pk")
        )
    elif tab == "traces":
        found = dict(
            Trace.objects.filter(project=project, trace_id__in=wanted)
            .annotate(source_pk=_first_span_of_trace())
            .values_list("trace_id", "source_pk")
        )
    else:
        found = dict(
            Session.objects.filter(project=project, session_id__in=wanted)
            .annotate(source_pk=_first_span_of_session())
            .values_list("session_id", "source_pk")
        )
    return SourceSpans(
        pks=[found[key] for key in wanted if found.get(key) is not None],
        missing=[key for key in wanted if found.get(key) is None],
    )


def dataset_source_spans_matching(
    *, project: Project, tab: Tab, spans: QuerySet[Span], filtering: bool, limit: int
) -> list[int]:
    """The spans to make examples of for every row of a tab's filtered result, newest first:
    ``spans`` is the tab's filtered span query (``SpanFilterSet.qs`` over ``browse_spans``,
    root spans for the traces tab). At most ``limit + 1`` pks, so a caller can refuse more."""
    if tab in ("spans", "traces"):
        return span_pks_matching(spans=spans, limit=limit)
    sessions = Session.objects.filter(project=project)
    if filtering:
        sessions = sessions.filter(pk__in=spans.order_by().values("session_id"))
    rows = sessions.annotate(source_pk=_first_span_of_session()).order_by("-start_time", "-id")
    return [pk for pk in rows.values_list("source_pk", flat=True)[: limit + 1] if pk is not None]


def span_pks_by_id(*, span_ids: Sequence[str], project: Project | None = None) -> SourceSpans:
    """The pks of these user-facing span ids (in their order, duplicates once), and the ids not
    found (in ``project`` when given)."""
    wanted = list(dict.fromkeys(span_ids))
    query = Span.objects.filter(span_id__in=wanted)
    if project is not None:
        query = query.filter(project=project)
    found = dict(query.values_list("span_id", "pk"))
    return SourceSpans(
        pks=[found[key] for key in wanted if key in found],
        missing=[key for key in wanted if key not in found],
    )


def span_pks_matching(*, spans: QuerySet[Span], limit: int) -> list[int]:
    """The pks of a span query, newest first, at most ``limit + 1``."""
    return list(spans.order_by("-start_time", "-id").values_list("pk", flat=True)[: limit + 1])


@dataclass(frozen=True, slots=True)
class ExampleSource:
    """What an example copies from its source span."""

    pk: int
    span_id: str
    trace_id: str
    project: str
    input: str | None
    output: str | None
    metadata: dict[str, Any]
    labels: dict[str, dict[str, Any]]


def example_sources(pks: Sequence[int], *, source: SourceKind = "span") -> dict[int, ExampleSource]:
    """The spans with these pks (missing ones left out), with the labels of their annotations.

    ``labels`` maps an annotation name to its label, score and explanation — people's labels
    under the rubric's name, evaluators' results under ``eval.<name>`` (``annotations.naming``)
    so both of one name are kept: the annotations on the span and, for an example that stands
    for a trace or a session, those on the span's trace or session; on a key found on both, the
    trace's or session's wins. Of annotations with the same key and target (several
    annotators), the last updated wins.
    """
    rows = list(
        Span.objects.filter(pk__in=list(pks)).values(
            "pk",
            "span_id",
            "trace_id",
            "session_id",
            "trace__trace_id",
            "project__name",
            "input_value",
            "output_value",
            "metadata",
        )
    )
    labels: dict[int, dict[str, dict[str, Any]]] = {row["pk"]: {} for row in rows}
    _labels_merge(labels, TargetKind.SPAN, {row["pk"]: [row["pk"]] for row in rows})
    if source in ("trace", "session"):
        column: Literal["trace_id", "session_id"] = (
            "trace_id" if source == "trace" else "session_id"
        )
        owners: dict[int, list[int]] = {}
        for row in rows:
            if row[column] is not None:
                owners.setdefault(row[column], []).append(row["pk"])
        kind = TargetKind.TRACE if source == "trace" else TargetKind.SESSION
        _labels_merge(labels, kind, owners)
    return {
        row["pk"]: ExampleSource(
            pk=row["pk"],
            span_id=row["span_id"],
            trace_id=row["trace__trace_id"],
            project=row["project__name"],
            input=row["input_value"],
            output=row["output_value"],
            metadata=row["metadata"] or {},
            labels=labels[row["pk"]],
        )
        for row in rows
    }


def _labels_merge(
    labels: dict[int, dict[str, dict[str, Any]]], kind: str, owners: dict[int, list[int]]
) -> None:
    """Put the annotations on targets of ``kind`` (target pk → the span pks it labels) into
    ``labels``, the last updated last so that it wins."""
    if not owners:
        return
    columns: dict[str, str] = {TargetKind.SPAN: "span_id", TargetKind.TRACE: "trace_id"}
    column = columns.get(kind, "session_id")
    annotations = (
        Annotation.objects.filter(target_kind=kind, **{f"{column}__in": list(owners)})
        .order_by("updated_at", "id")
        .values(column, "name", "annotator_kind", "label", "score", "explanation")
    )
    for item in annotations:
        key = label_key(item["name"], item["annotator_kind"])
        for span_pk in owners[item[column]]:
            labels[span_pk][key] = {
                "label": item["label"],
                "score": item["score"],
                "explanation": item["explanation"],
            }


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "EXPORT_FIELDS",
    "MAX_PAGE_SIZE",
    "SOURCE_OF_TAB",
    "ExampleSource",
    "InvalidCursor",
    "Page",
    "SourceKind",
    "SourceSpans",
    "annotation_names_recent",
    "dataset_example_rows_batched",
    "dataset_examples",
    "dataset_examples_page",
    "dataset_get",
    "dataset_list",
    "dataset_names",
    "dataset_page",
    "dataset_source_spans_matching",
    "dataset_source_spans_selected",
    "example_sources",
    "span_pks_by_id",
    "span_pks_matching",
]
