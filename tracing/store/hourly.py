"""Hourly roll-ups of each project's traces (``TraceHour``): what the Projects page sums.

A roll-up row holds the traces of one project that started in one UTC hour: how many, their
spans, how many had an error, their tokens and cost, and a histogram of their latencies. Only
*settled* hours — ended more than ``SETTLE`` ago — are served from roll-ups; the partial hours
at a window's edges and the recent hours are read from the traces themselves.

Rows are exact or absent:

- every write that changes or deletes trace rows calls ``trace_hours_forget`` (or
  ``trace_hours_forget_traces``) in its transaction, for the hours the traces started in before
  and after the change;
- a missing settled hour is computed by one grouped query when read, and stored;
  ``trace_hours_fill`` (a beat job) stores them ahead.

Concurrency: a writer that forgets hours holds a shared lock on each project touched until it
commits; a reader stores rows only for the projects whose exclusive lock it took without
waiting, and computes them after taking it. So a row is never computed from a snapshot that
misses a change whose forgetting it escaped. On PostgreSQL these are transaction-scoped
advisory locks; SQLite has one writer at a time (transactions begin IMMEDIATE), which does the
same. A reader never waits for a writer and holds nothing a writer holds, so no deadlock.

Latency histogram: bin 0 holds [0, 1) ms; bin k (1..256) holds [2^((k-1)/8), 2^(k/8)) ms;
bin 257 holds 2^32 ms (about 50 days) and more. See ``percentile_from_bins`` for the error.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from django.db import DatabaseError, connection, transaction
from django.db.models import Case, Count, FloatField, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce, Floor, Least, Ln, TruncHour
from django.utils import timezone

from tracing.models import Project, Trace, TraceHour

logger = logging.getLogger(__name__)

HOUR: Final = timedelta(hours=1)
# An hour is served from roll-ups once it ended this long ago: spans of its traces still on
# their way then are late, and a late span forgets the hour of its trace.
SETTLE: Final = timedelta(minutes=5)

BINS_PER_DOUBLING: Final = 8
TOP_BIN: Final = 32 * BINS_PER_DOUBLING + 1  # latencies of 2^32 ms and more
# |estimate - exact| <= RELATIVE_ERROR * exact + ABSOLUTE_ERROR_MS for latencies below 2^32 ms.
RELATIVE_ERROR: Final = 2 ** (1 / (2 * BINS_PER_DOUBLING)) - 1  # 4.43 %
ABSOLUTE_ERROR_MS: Final = 0.5

# Advisory lock class of the roll-ups (the first key of PostgreSQL's two-key locks).
_LOCK_CLASS: Final = 0x7EA1
# At most this many ranges of start times OR-ed in one computing query.
_MAX_RANGES: Final = 64


def hour_floor(moment: datetime) -> datetime:
    """The start of the UTC hour holding ``moment``."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_ceil(moment: datetime) -> datetime:
    """The first start of a UTC hour at or after ``moment``."""
    floor = hour_floor(moment)
    return floor if floor == moment else floor + HOUR


def settled_before(now: datetime) -> datetime:
    """Hours starting before this instant have ended at least ``SETTLE`` before ``now``."""
    return hour_floor(now - SETTLE)


def latency_bin(latency_ms: float) -> int:
    """The histogram bin of a latency (the same rule as the SQL of ``_bin``)."""
    if latency_ms < 1.0:
        return 0
    if latency_ms >= 2.0**32:
        return TOP_BIN
    return min(math.floor(math.log(latency_ms) * (BINS_PER_DOUBLING / math.log(2))) + 1, 256)


def _bin_value(index: int) -> float:
    """The value standing for the latencies of a bin: its geometric middle (bin 0: 0.5 ms)."""
    if index <= 0:
        return 0.5
    if index >= TOP_BIN:
        return 2.0**32
    return 2.0 ** ((index - 0.5) / BINS_PER_DOUBLING)


def _bin() -> Case:
    return Case(
        When(latency_ms__isnull=True, then=Value(None)),
        When(latency_ms__lt=1.0, then=Value(0.0)),
        When(latency_ms__gte=2.0**32, then=Value(float(TOP_BIN))),
        default=Least(
            Floor(Ln("latency_ms") * Value(BINS_PER_DOUBLING / math.log(2))) + Value(1.0),
            Value(256.0),
        ),
        output_field=FloatField(),
    )


@dataclass(slots=True)
class Totals:
    """Sums over some traces; ``bins`` counts their latencies by bin (sparse)."""

    traces: int = 0
    spans: int = 0
    errors: int = 0
    tokens: int = 0
    cost: float = 0.0
    bins: dict[int, int] = field(default_factory=dict)

    def add(self, other: Totals) -> None:
        self.traces += other.traces
        self.spans += other.spans
        self.errors += other.errors
        self.tokens += other.tokens
        self.cost += other.cost
        for index, count in other.bins.items():
            self.bins[index] = self.bins.get(index, 0) + count


def percentile_from_bins(bins: Mapping[int, int], fraction: float) -> float | None:
    """``percentile_cont(fraction)`` of the latencies counted in ``bins``, approximately.

    The two values the exact percentile interpolates between are found by rank in their bins
    and stood for by the bins' middles, then interpolated with the same weight. Each stand-in
    is within a factor 2^(1/16) of its value (0.5 ms for bin 0), so the result is within
    ``RELATIVE_ERROR`` (4.43 %) of the exact percentile plus ``ABSOLUTE_ERROR_MS`` (0.5 ms),
    for latencies below 2^32 ms. None when there is no latency.
    """
    count = sum(bins.values())
    if count == 0:
        return None
    rank = (count - 1) * fraction
    low = int(rank)
    wanted = (low, min(low + 1, count - 1))
    found: list[float] = []
    seen = 0
    for index in sorted(bins):
        seen += bins[index]
        while len(found) < 2 and wanted[len(found)] < seen:
            found.append(_bin_value(index))
    return found[0] + (found[1] - found[0]) * (rank - low)


def _bins_pack(bins: Mapping[int, int]) -> tuple[int, list[int]]:
    if not bins:
        return 0, []
    first, last = min(bins), max(bins)
    return first, [bins.get(index, 0) for index in range(first, last + 1)]


def _bins_unpack(first: int, counts: Sequence[int]) -> dict[int, int]:
    return {first + offset: count for offset, count in enumerate(counts) if count}


def _grouped(
    traces: QuerySet[Trace], *, by_hour: bool
) -> dict[tuple[int, datetime | None], Totals]:
    """Sums of ``traces`` by project (and UTC hour when ``by_hour``): one grouped query."""
    keys = ["project_id", "hour", "bin"] if by_hour else ["project_id", "bin"]
    query = traces.annotate(bin=_bin())
    if by_hour:
        query = query.annotate(hour=TruncHour("start_time", tzinfo=UTC))
    rows: Iterable[Mapping[str, Any]] = (
        query.values(*keys)
        .annotate(
            n=Count("id"),
            spans=Coalesce(Sum("span_count"), 0),
            errors=Count("id", filter=Q(error_count__gt=0)),
            tokens=Coalesce(Sum("total_tokens"), 0),
            cost=Coalesce(Sum("cost"), 0.0),
        )
        .order_by()
    )
    sums: dict[tuple[int, datetime | None], Totals] = {}
    for row in rows:
        hour = row["hour"].astimezone(UTC) if by_hour else None
        totals = sums.setdefault((row["project_id"], hour), Totals())
        totals.add(
            Totals(
                row["n"],
                int(row["spans"]),
                row["errors"],
                int(row["tokens"]),
                float(row["cost"]),
                {} if row["bin"] is None else {int(row["bin"]): row["n"]},
            )
        )
    return sums


def _runs(hours: Sequence[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted hours as ranges ``[first, end)`` of consecutive hours."""
    runs: list[tuple[datetime, datetime]] = []
    for hour in sorted(hours):
        if runs and runs[-1][1] == hour:
            runs[-1] = (runs[-1][0], hour + HOUR)
        else:
            runs.append((hour, hour + HOUR))
    return runs


def _hours_compute(missing: Mapping[int, Sequence[datetime]]) -> dict[tuple[int, datetime], Totals]:
    """The totals of these (project, hour)s, empty hours included: one grouped query."""
    runs = {project_id: _runs(hours) for project_id, hours in missing.items() if hours}
    if sum(len(r) for r in runs.values()) > _MAX_RANGES:  # one range a project, extra dropped
        runs = {project_id: [(r[0][0], r[-1][1])] for project_id, r in runs.items()}
    where = Q()
    for project_id, ranges in runs.items():
        for first, end in ranges:
            where |= Q(project_id=project_id, start_time__gte=first, start_time__lt=end)
    result = {(p, hour): Totals() for p, hours in missing.items() for hour in hours}
    if not result:
        return result
    for (project_id, hour), totals in _grouped(Trace.objects.filter(where), by_hour=True).items():
        key = (project_id, hour)
        if hour is not None and key in result:
            result[key] = totals
    return result


def _locks_try(project_ids: Sequence[int]) -> set[int]:
    """The projects whose roll-ups this transaction may store: their exclusive locks, taken
    without waiting (PostgreSQL); all of them on SQLite, whose transaction holds the write
    lock from its start."""
    if connection.vendor != "postgresql":
        return set(project_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p, pg_try_advisory_xact_lock(%s, (p %% 2147483648)::int) "
            "FROM unnest(%s::bigint[]) AS p",
            [_LOCK_CLASS, list(project_ids)],
        )
        return {project_id for project_id, locked in cursor.fetchall() if locked}


def _locks_share(project_ids: Sequence[int]) -> None:
    """Hold the shared lock of these projects' roll-ups until the transaction ends."""
    if connection.vendor != "postgresql" or not project_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock_shared(%s, (p %% 2147483648)::int) "
            "FROM unnest(%s::bigint[]) AS p",
            [_LOCK_CLASS, sorted(project_ids)],
        )


def _hours_store(missing: Mapping[int, Sequence[datetime]]) -> dict[tuple[int, datetime], Totals]:
    """Compute these (project, hour)s and store them; returns what was computed (also for
    projects whose rows could not be stored now)."""
    try:
        with transaction.atomic():
            locked = _locks_try(sorted(missing))
            computed = _hours_compute(missing)
            rows = []
            for (project_id, hour), totals in computed.items():
                if project_id not in locked:
                    continue
                first, counts = _bins_pack(totals.bins)
                rows.append(
                    TraceHour(
                        project_id=project_id,
                        hour=hour,
                        traces=totals.traces,
                        spans=totals.spans,
                        errors=totals.errors,
                        tokens=totals.tokens,
                        cost=totals.cost,
                        latency_first_bin=first,
                        latency_bins=counts,
                    )
                )
            TraceHour.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
            return computed
    except DatabaseError as exc:
        # Busy (SQLite), a project deleted meanwhile, a read-only connection: serve the hours
        # without storing them.
        logger.warning("trace roll-ups not stored: %s", exc)
        return _hours_compute(missing)


def _first_hours(project_ids: Sequence[int]) -> dict[int, datetime]:
    """The hour of each project's first trace (projects without one are left out)."""
    first: dict[int, datetime] = {}
    for project_id in project_ids:
        start = (
            Trace.objects.filter(project_id=project_id, start_time__isnull=False)
            .order_by("start_time")
            .values_list("start_time", flat=True)
            .first()
        )
        if start is not None:
            first[project_id] = hour_floor(start)
    return first


def _missing(
    firsts: Mapping[int, datetime],
    have: Mapping[int, set[datetime]],
    lo: datetime | None,
    hi: datetime,
) -> dict[int, list[datetime]]:
    """The hours in ``[lo, hi)`` from each project's first trace on that have no roll-up."""
    missing: dict[int, list[datetime]] = {}
    for project_id, first in firsts.items():
        hour = first if lo is None else max(lo, first)
        while hour < hi:
            if hour not in have[project_id]:
                missing.setdefault(project_id, []).append(hour)
            hour += HOUR
    return missing


def _settled_hours(
    project_ids: Sequence[int], lo: datetime | None, hi: datetime
) -> dict[int, Totals]:
    """Totals per project of the hours in ``[lo, hi)`` (all settled), from roll-ups; missing
    ones computed and stored."""
    totals = {project_id: Totals() for project_id in project_ids}
    firsts = _first_hours(project_ids)
    stored = TraceHour.objects.filter(project_id__in=list(firsts), hour__lt=hi)
    if lo is not None:
        stored = stored.filter(hour__gte=lo)
    have: dict[int, set[datetime]] = {project_id: set() for project_id in firsts}
    for row in stored.values_list(
        "project_id", "hour", "traces", "spans", "errors", "tokens", "cost",
        "latency_first_bin", "latency_bins",
    ):  # fmt: skip
        project_id, hour, traces, spans, errors, tokens, cost, first_bin, counts = row
        have[project_id].add(hour.astimezone(UTC))
        totals[project_id].add(
            Totals(traces, spans, errors, tokens, cost, _bins_unpack(first_bin, counts))
        )
    missing = _missing(firsts, have, lo, hi)
    if missing:
        for (project_id, _), computed in _hours_store(missing).items():
            totals[project_id].add(computed)
    return totals


def trace_totals(
    *,
    project_ids: Sequence[int],
    start: datetime | None,
    end: datetime | None,
    now: datetime | None = None,
) -> dict[int, Totals]:
    """Sums of each project's traces that started in ``[start, end)`` (no bound when None),
    with their latency histogram: the window's whole settled hours from roll-ups (stored
    when missing), the rest — partial edge hours, recent hours — from the traces.

    Counts and integer sums equal those of one aggregate over the traces; the cost is the same
    sum added in another order (equal up to floating-point rounding).
    """
    now = now or timezone.now()
    lo = None if start is None else hour_ceil(start)
    hi = settled_before(now)
    if end is not None:
        hi = min(hi, hour_floor(end))
    window = Q(start_time__isnull=False, project_id__in=list(project_ids))
    if start is not None:
        window &= Q(start_time__gte=start)
    if end is not None:
        window &= Q(start_time__lt=end)
    if lo is not None and hi <= lo:  # no whole settled hour in the window
        totals = {project_id: Totals() for project_id in project_ids}
        live = window
    else:
        totals = _settled_hours(project_ids, lo, hi)
        edges = Q(start_time__gte=hi)
        if lo is not None:
            edges |= Q(start_time__lt=lo)
        live = window & edges
    for (project_id, _), computed in _grouped(Trace.objects.filter(live), by_hour=False).items():
        totals[project_id].add(computed)
    return totals


def trace_hours_forget(starts: Iterable[tuple[int, datetime | None]]) -> None:
    """Delete the roll-ups of the hours these traces started in: ``(project id, start time)``
    pairs. Call it in the transaction that changes or deletes the traces, with both their old
    and new start times.

    Hours that started less than an hour ago are skipped: none is settled (readers store an
    hour once it ended ``SETTLE`` ago), as long as clocks agree within ``SETTLE``.
    """
    current = hour_floor(timezone.now())
    hours: dict[int, set[datetime]] = {}
    for project_id, start in starts:
        if start is not None and hour_floor(start) < current:
            hours.setdefault(project_id, set()).add(hour_floor(start))
    if not hours:
        return
    _locks_share(sorted(hours))
    where = Q()
    for project_id, project_hours in hours.items():
        where |= Q(project_id=project_id, hour__in=sorted(project_hours))
    TraceHour.objects.filter(where).delete()


def trace_hours_forget_traces(trace_pks: Sequence[int]) -> None:
    """``trace_hours_forget`` for these traces' current start times."""
    for start in range(0, len(trace_pks), 2000):
        trace_hours_forget(
            Trace.objects.filter(pk__in=trace_pks[start : start + 2000])
            .exclude(start_time__isnull=True)
            .values_list("project_id", "start_time")
        )


def trace_hours_forget_project(project: Project) -> None:
    """Delete every roll-up of ``project`` (in the transaction that deletes it)."""
    _locks_share([project.pk])
    TraceHour.objects.filter(project=project).delete()


def trace_hours_fill(*, now: datetime | None = None) -> int:
    """Store every project's missing settled hours (from its first trace on), so a page read
    finds them; one project a transaction. Returns how many hours were computed."""
    end = settled_before(now or timezone.now())
    computed = 0
    for project_id in Project.objects.order_by("id").values_list("id", flat=True):
        firsts = _first_hours([project_id])
        have: dict[int, set[datetime]] = {project_id: set()}
        for hour in TraceHour.objects.filter(project_id=project_id).values_list("hour", flat=True):
            have[project_id].add(hour.astimezone(UTC))
        missing = _missing(firsts, have, None, end)
        if missing:
            computed += len(_hours_store(missing))
    return computed
