"""Score trends: each evaluation's label mix and mean score over time, for a project's page.

A result is placed in time by the item it evaluates (the span's, trace's or session's start
time), not by when it was written, so a backfill fills the past instead of piling up today. The
aggregation is done in the database: one grouped query counts results per label and time bucket,
one averages scores per bucket, whatever the number of buckets.

"Evaluations" are annotations written by LLM and code annotators (what ``eval.<name>`` means in
the filter language; a task's results carry its evaluator's name, ``annotations.naming``);
human annotations are included only when asked for, and kept apart from evaluations of the same
name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from django.db.models import (
    Avg,
    BooleanField,
    Case,
    Count,
    F,
    Max,
    Min,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDay, TruncHour, TruncWeek
from django.utils import timezone

from annotations.models import Annotation, AnnotatorKind
from evalhub.core.buckets import BUCKET_LENGTH, BUCKETS, Bucket
from tracing.models import Project

_TRUNC: Final = {"hour": TruncHour, "day": TruncDay, "week": TruncWeek}
# Automatic bucket: the finest whose bucket count over the range stays readable.
_AUTO_UP_TO: Final[tuple[tuple[timedelta, Bucket], ...]] = (
    (timedelta(days=3), "hour"),
    (timedelta(days=120), "day"),
)
MAX_BUCKETS: Final = 400
_TICK: Final = timedelta(microseconds=1)
EVALUATOR_KINDS: Final = (AnnotatorKind.LLM, AnnotatorKind.CODE)


@dataclass(frozen=True, slots=True)
class TrendBucket:
    """One time bucket of one evaluation."""

    start: datetime
    counts: dict[str | None, int]  # label (None: results without one) → results
    total: int
    scored: int  # results with a score
    mean_score: float | None


@dataclass(slots=True)
class Trend:
    """One evaluation (or, when asked for, one human annotation name) over the range."""

    name: str
    human: bool
    target_kinds: list[str]  # SPAN / TRACE / SESSION, as evaluated in the range
    labels: list[str | None] = field(default_factory=list)  # most results first, None last
    buckets: list[TrendBucket] = field(default_factory=list)  # buckets with results, oldest first
    total: int = 0
    scored: int = 0
    mean_score: float | None = None


def _results(
    *,
    project: Project,
    start: datetime | None,
    end: datetime | None,
    names: list[str] | None,
    human: bool,
) -> QuerySet[Annotation]:
    """The project's results whose item started in ``[start, end)``, with ``item_time`` and
    ``by_human`` annotated for grouping."""
    # Items, not their documents: a document check's per-document results stay out.
    query = Annotation.objects.filter(project=project, document_position__isnull=True)
    if not human:
        query = query.filter(annotator_kind__in=EVALUATOR_KINDS)
    if names is not None:
        query = query.filter(name__in=names)
    # Exactly one of the three targets is set (annotation_one_target), so the coalesce is the
    # start time of the evaluated item.
    query = query.annotate(
        item_time=Coalesce(F("span__start_time"), F("trace__start_time"), F("session__start_time"))
    ).filter(item_time__isnull=False)
    if start is not None:
        query = query.filter(item_time__gte=start)
    if end is not None:
        query = query.filter(item_time__lt=end)
    return query.annotate(
        by_human=Case(
            When(annotator_kind=AnnotatorKind.HUMAN, then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
    )


def score_trends(
    *,
    project: Project,
    start: datetime | None,
    end: datetime | None,
    bucket: Bucket,
    names: list[str] | None = None,
    human: bool = False,
) -> list[Trend]:
    """Each evaluation's results per ``bucket`` (UTC) for items that started in ``[start, end)``
    (either end open): counts per label and the mean score. Two queries.

    ``names`` keeps only those annotation names; ``human`` adds human annotations (as trends of
    their own). Evaluations come first, then human annotations, each by name.
    """
    if bucket not in _TRUNC:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}")
    results = _results(project=project, start=start, end=end, names=names, human=human)
    results = results.annotate(bucket=_TRUNC[bucket]("item_time", tzinfo=UTC))

    counts = (
        results.values_list("name", "by_human", "bucket", "target_kind", "label")
        .annotate(n=Count("id"))
        .order_by()
    )
    trends: dict[tuple[str, bool], Trend] = {}
    per_bucket: dict[tuple[str, bool], dict[datetime, dict[str | None, int]]] = {}
    label_totals: dict[tuple[str, bool], dict[str | None, int]] = {}
    for name, by_human, moment, target_kind, label, n in counts:
        key = (name, bool(by_human))
        trend = trends.setdefault(key, Trend(name=name, human=key[1], target_kinds=[]))
        if target_kind not in trend.target_kinds:
            trend.target_kinds.append(target_kind)
        by_label = per_bucket.setdefault(key, {}).setdefault(_utc(moment), {})
        by_label[label] = by_label.get(label, 0) + n
        totals = label_totals.setdefault(key, {})
        totals[label] = totals.get(label, 0) + n

    means = (
        results.values_list("name", "by_human", "bucket")
        .annotate(mean=Avg("score"), scored=Count("score"))
        .order_by()
    )
    scores = {
        (name, bool(by_human), _utc(moment)): (mean, scored)
        for name, by_human, moment, mean, scored in means
    }

    for key, trend in trends.items():
        totals = label_totals[key]
        trend.labels = sorted(totals, key=lambda label: (label is None, -totals[label], label))
        trend.target_kinds.sort()
        weighted = 0.0
        for moment, by_label in sorted(per_bucket[key].items()):
            mean, scored = scores.get((*key, moment), (None, 0))
            total = sum(by_label.values())
            trend.buckets.append(
                TrendBucket(
                    start=moment,
                    counts=by_label,
                    total=total,
                    scored=scored,
                    mean_score=float(mean) if mean is not None else None,
                )
            )
            trend.total += total
            trend.scored += scored
            if mean is not None:
                weighted += float(mean) * scored
        trend.mean_score = weighted / trend.scored if trend.scored else None
    return [trends[key] for key in sorted(trends, key=lambda key: (key[1], key[0]))]


def trend_extent(
    *,
    project: Project,
    start: datetime | None = None,
    end: datetime | None = None,
    names: list[str] | None = None,
    human: bool = False,
) -> tuple[datetime, datetime] | None:
    """The earliest and latest item times among the results ``score_trends`` would count (for a
    range with an open start); None when there are none."""
    extent = _results(project=project, start=start, end=end, names=names, human=human).aggregate(
        first=Min("item_time"), last=Max("item_time")
    )
    if extent["first"] is None:
        return None
    return _utc(extent["first"]), _utc(extent["last"])


@dataclass(slots=True)
class TrendsPage:
    """Everything the score-trends page shows for a range."""

    trends: list[Trend]
    bucket: Bucket
    axis: list[datetime]  # every bucket start, empty buckets included
    coarsened: bool = False  # the bucket asked for would have made too many
    has_evaluations: bool = True  # False: the project has no results at all yet


def trends_page(
    *,
    project: Project,
    start: datetime | None,
    end: datetime | None,
    bucket: Bucket | None = None,
    names: list[str] | None = None,
    human: bool = False,
    now: datetime | None = None,
) -> TrendsPage:
    """The trends of ``[start, end)`` (either end open) per ``bucket``, or per a bucket chosen
    from the range's length. An open start begins at the first result; an open end ends now (or
    at the last result, if later). Two queries, one more for an open start, one more when there
    is nothing to show."""
    now = _utc(now or timezone.now())
    axis_start, axis_end = start, end
    if start is None:
        extent = trend_extent(project=project, end=end, names=names, human=human)
        if extent is None:
            return TrendsPage(
                trends=[],
                bucket=bucket or "day",
                axis=[],
                has_evaluations=project_has_evaluations(project=project, human=human),
            )
        axis_start = extent[0]
        if end is None:
            axis_end = max(now, extent[1]) + _TICK
    assert axis_start is not None
    axis_end = axis_end or now + _TICK  # the bucket holding "now" is on the axis
    asked = bucket or bucket_auto(axis_start, axis_end)
    chosen = bucket_fit(axis_start, axis_end, asked)
    trends = score_trends(
        project=project, start=start, end=end, bucket=chosen, names=names, human=human
    )
    latest = max((b.start for trend in trends for b in trend.buckets), default=None)
    if latest is not None and latest >= axis_end:  # items from after "now" (clock skew)
        axis_end = latest + BUCKET_LENGTH[chosen]
    return TrendsPage(
        trends=trends,
        bucket=chosen,
        axis=bucket_starts(axis_start, axis_end, chosen) if trends else [],
        coarsened=bucket is not None and chosen != bucket,
        has_evaluations=bool(trends) or project_has_evaluations(project=project, human=human),
    )


def project_has_evaluations(*, project: Project, human: bool = False) -> bool:
    """Whether the project has any result at all (for telling "none yet" from "none here")."""
    query = Annotation.objects.filter(project=project)
    if not human:
        query = query.filter(annotator_kind__in=EVALUATOR_KINDS)
    return query.exists()


# --- time buckets ------------------------------------------------------------------------------


def bucket_floor(moment: datetime, bucket: Bucket) -> datetime:
    """The start of the bucket holding ``moment``, as ``TruncHour/Day/Week`` in UTC computes it
    (weeks start on Monday)."""
    moment = _utc(moment)
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket == "day":
        return day
    return day - timedelta(days=day.weekday())


def bucket_starts(start: datetime, end: datetime, bucket: Bucket) -> list[datetime]:
    """Every bucket start of ``[start, end)``: the time axis, empty buckets included."""
    step = BUCKET_LENGTH[bucket]
    moment, end = bucket_floor(start, bucket), _utc(end)
    starts = []
    while moment < end:
        starts.append(moment)
        moment += step
    return starts or [bucket_floor(start, bucket)]


def bucket_count(start: datetime, end: datetime, bucket: Bucket) -> int:
    span = _utc(end) - bucket_floor(start, bucket)
    return max(1, -(-span // BUCKET_LENGTH[bucket]))


def bucket_auto(start: datetime, end: datetime) -> Bucket:
    """The bucket for a range: hours up to 3 days, days up to 120 days, else weeks."""
    for longest, bucket in _AUTO_UP_TO:
        if end - start <= longest:
            return bucket
    return "week"


def bucket_fit(start: datetime, end: datetime, bucket: Bucket) -> Bucket:
    """``bucket``, or the finest coarser one that keeps the axis within ``MAX_BUCKETS``."""
    for candidate in BUCKETS[BUCKETS.index(bucket) :]:
        if bucket_count(start, end, candidate) <= MAX_BUCKETS:
            return candidate
    return "week"


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


__all__ = [
    "BUCKETS",
    "Bucket",
    "Trend",
    "TrendBucket",
    "TrendsPage",
    "bucket_auto",
    "bucket_fit",
    "bucket_floor",
    "bucket_starts",
    "project_has_evaluations",
    "score_trends",
    "trend_extent",
    "trends_page",
]
