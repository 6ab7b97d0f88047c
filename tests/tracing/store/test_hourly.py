"""Hourly trace roll-ups: totals equal one aggregate over the traces for any window; late spans,
span deletes, retention and project deletes forget the hours they change; approximate
percentiles stay within their bound; the beat job fills settled hours ahead."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from evalhub.celery import beat_schedule
from evalhub.retention.services import retention_apply
from tests import factories
from tracing.browser import projects as project_page
from tracing.browser.projects import project_cards
from tracing.models import Project, Trace, TraceHour
from tracing.store.hourly import (
    ABSOLUTE_ERROR_MS,
    RELATIVE_ERROR,
    hour_floor,
    latency_bin,
    percentile_from_bins,
    trace_hours_fill,
    trace_totals,
)
from tracing.store.services import project_delete, spans_delete, spans_ingest

pytestmark = pytest.mark.django_db
T0 = factories.BASE_TIME  # a whole hour, weeks ago: every hour around it is settled


def _exact_percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * fraction
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _live(start: datetime | None, end: datetime | None) -> dict[int, dict[str, Any]]:
    """Today's aggregate over the traces, per project (what the roll-ups must equal)."""
    traces = Trace.objects.filter(start_time__isnull=False)
    if start is not None:
        traces = traces.filter(start_time__gte=start)
    if end is not None:
        traces = traces.filter(start_time__lt=end)
    rows = (
        traces.values("project_id")
        .annotate(
            traces=Count("id"),
            spans=Sum("span_count"),
            errors=Count("id", filter=Q(error_count__gt=0)),
            tokens=Sum("total_tokens"),
            cost=Sum("cost"),
        )
        .order_by()
    )
    live = {row.pop("project_id"): row for row in rows}
    for project_id, row in live.items():
        latencies = traces.filter(project_id=project_id).values_list("latency_ms", flat=True)
        bins: dict[int, int] = {}
        for latency in latencies:
            bins[latency_bin(latency)] = bins.get(latency_bin(latency), 0) + 1
        row["bins"] = bins
    return live


def _assert_equal_to_live(start: datetime | None, end: datetime | None, **kwargs: Any) -> None:
    live = _live(start, end)
    ids = list(Project.objects.values_list("id", flat=True))
    totals = trace_totals(project_ids=ids, start=start, end=end, **kwargs)
    for project_id in ids:
        got, want = totals[project_id], live.get(project_id)
        if want is None:
            assert (got.traces, got.spans, got.errors, got.tokens, got.bins) == (0, 0, 0, 0, {})
            continue
        assert (got.traces, got.spans, got.errors, got.tokens) == (
            want["traces"],
            want["spans"],
            want["errors"],
            want["tokens"],
        ), (start, end)
        assert got.cost == pytest.approx(want["cost"], rel=1e-9)
        assert got.bins == want["bins"]


def _trace(
    rng: random.Random, *, project: str, start: datetime, trace_id: str | None = None
) -> list[Any]:
    """A root span and 0-2 children, a random latency, some errors and tokens."""
    trace_id = trace_id or factories.next_hex(32)
    latency = 10 ** rng.uniform(-0.5, 4.8)  # 0.3 ms .. 63 s
    root = factories.span_record(
        trace_id=trace_id, start=start, latency_ms=latency, project_name=project
    )
    records = [root]
    for _ in range(rng.randint(0, 2)):
        records.append(
            factories.span_record(
                trace_id=trace_id,
                parent_id=root.span_id,
                start=start + timedelta(milliseconds=rng.uniform(0, latency / 2)),
                latency_ms=latency / 3,
                status_code="ERROR" if rng.random() < 0.15 else "OK",
                attributes=factories.llm_attributes(
                    prompt_tokens=rng.randint(1, 500), completion_tokens=rng.randint(1, 100)
                ),
                project_name=project,
            )
        )
    return records


def _random_traces(rng: random.Random, count: int, *, around: datetime) -> None:
    records = []
    for _ in range(count):
        start = around + timedelta(seconds=rng.uniform(-20 * 3600, 20 * 3600))
        records.extend(_trace(rng, project=rng.choice(["shop", "search"]), start=start))
    for begin in range(0, len(records), 200):
        spans_ingest(records=records[begin : begin + 200])


def test_totals_equal_one_aggregate_over_the_traces_in_windows_that_cut_hours():
    rng = random.Random(7)
    _random_traces(rng, 300, around=T0)
    factories.project("empty")
    windows: list[tuple[datetime | None, datetime | None]] = [(None, None)]
    for _ in range(12):
        a = T0 + timedelta(seconds=rng.uniform(-24 * 3600, 24 * 3600))
        b = a + timedelta(seconds=rng.uniform(0, 30 * 3600))
        windows += [(a, b), (a, None), (None, b)]
    windows += [(T0 - timedelta(hours=5), T0 + timedelta(hours=5))]  # whole hours only
    windows += [(T0 + timedelta(minutes=5), T0 + timedelta(minutes=50))]  # inside one hour
    for start, end in windows:
        _assert_equal_to_live(start, end)
    # The settled hours were stored, and each row is its hour's aggregate.
    stored = list(TraceHour.objects.all())
    assert len(stored) > 40
    for row in rng.sample(stored, 10):
        hour = row.hour.astimezone(UTC)
        want = _live(hour, hour + timedelta(hours=1)).get(row.project_id)
        assert row.traces == (want["traces"] if want else 0)
        assert row.spans == (want["spans"] if want else 0)
    # Served from them: the same numbers again.
    for start, end in windows[:6]:
        _assert_equal_to_live(start, end)


def test_recent_hours_are_read_from_the_traces_until_they_settle():
    rng = random.Random(11)
    _random_traces(rng, 80, around=T0)
    now = T0 + timedelta(minutes=3)  # T0's hour and the one before are not settled yet
    _assert_equal_to_live(None, None, now=now)
    assert not TraceHour.objects.filter(hour__gte=T0 - timedelta(hours=1)).exists()
    assert TraceHour.objects.filter(hour=T0 - timedelta(hours=2)).exists()


def test_a_late_span_forgets_the_hour_of_its_trace():
    rng = random.Random(3)
    _random_traces(rng, 60, around=T0)
    start = T0 - timedelta(hours=3, minutes=20)
    trace_id = factories.next_hex(32)
    spans_ingest(records=_trace(rng, project="shop", start=start, trace_id=trace_id))
    window = (T0 - timedelta(hours=10), T0 + timedelta(hours=10))
    _assert_equal_to_live(*window)
    before = trace_totals(project_ids=[factories.project("shop").pk], start=window[0], end=None)
    late = factories.span_record(
        trace_id=trace_id,
        start=start + timedelta(seconds=30),
        status_code="ERROR",
        attributes=factories.llm_attributes(prompt_tokens=1000, completion_tokens=1),
    )
    spans_ingest(records=[late])
    _assert_equal_to_live(*window)
    after = trace_totals(project_ids=[factories.project("shop").pk], start=window[0], end=None)
    shop = factories.project("shop").pk
    assert after[shop].spans == before[shop].spans + 1
    assert after[shop].tokens == before[shop].tokens + 1001


def test_a_late_span_that_starts_earlier_moves_its_trace_to_another_hour():
    rng = random.Random(5)
    _random_traces(rng, 60, around=T0)
    start = T0 - timedelta(hours=2, minutes=10)
    trace_id = factories.next_hex(32)
    spans_ingest(records=_trace(rng, project="shop", start=start, trace_id=trace_id))
    old_hour, new_hour = hour_floor(start), hour_floor(start - timedelta(hours=3))
    for window in ((old_hour, old_hour + timedelta(hours=1)), (new_hour, None), (None, None)):
        _assert_equal_to_live(*window)
    assert TraceHour.objects.filter(hour__in=[old_hour, new_hour]).count() == 4  # 2 projects
    earlier = factories.span_record(trace_id=trace_id, start=start - timedelta(hours=3))
    spans_ingest(records=[earlier])
    assert Trace.objects.get(trace_id=trace_id).start_time == earlier.start_time
    shop = factories.project("shop").pk
    assert not TraceHour.objects.filter(project_id=shop, hour__in=[old_hour, new_hour]).exists()
    for window in ((old_hour, old_hour + timedelta(hours=1)), (new_hour, None), (None, None)):
        _assert_equal_to_live(*window)
    moved = trace_totals(project_ids=[shop], start=new_hour, end=new_hour + timedelta(hours=1))
    assert moved[shop].traces == _live(new_hour, new_hour + timedelta(hours=1))[shop]["traces"]


def test_deleting_spans_forgets_the_hours_of_their_traces():
    rng = random.Random(9)
    _random_traces(rng, 60, around=T0)
    _assert_equal_to_live(None, None)
    trace = Trace.objects.filter(start_time__lt=T0 - timedelta(hours=2)).first()
    assert trace is not None
    spans_delete(span_ids=list(trace.spans.values_list("span_id", flat=True)))
    assert not Trace.objects.filter(pk=trace.pk).exists()
    _assert_equal_to_live(None, None)


@pytest.mark.django_db(transaction=True)
def test_retention_forgets_the_hours_of_the_traces_it_deletes():
    rng = random.Random(13)
    now = timezone.now()
    _random_traces(rng, 60, around=now - timedelta(days=3))
    _assert_equal_to_live(None, None)
    shop = factories.project("shop")
    kept = Trace.objects.filter(project=shop, end_time__gte=now - timedelta(days=3)).count()
    retention_apply(project=shop, days=3, now=now)
    assert Trace.objects.filter(project=shop).count() == kept
    _assert_equal_to_live(None, None)
    assert trace_totals(project_ids=[shop.pk], start=None, end=None)[shop.pk].traces == kept


def test_deleting_a_project_deletes_its_roll_ups():
    rng = random.Random(17)
    _random_traces(rng, 40, around=T0)
    _assert_equal_to_live(None, None)
    shop = factories.project("shop")
    assert TraceHour.objects.filter(project=shop).exists()
    project_delete(project=shop)
    assert not TraceHour.objects.filter(project_id=shop.pk).exists()
    assert TraceHour.objects.exists()  # the other project's stay


def test_the_beat_job_fills_settled_hours_ahead():
    rng = random.Random(19)
    _random_traces(rng, 40, around=T0)
    stored = trace_hours_fill()
    assert stored == TraceHour.objects.count() > 40
    assert trace_hours_fill() == 0
    entry = beat_schedule()["trace-hours-fill"]
    assert (entry["task"], entry["schedule"]) == ("tracing.trace_hours_fill", 300.0)
    _assert_equal_to_live(T0 - timedelta(hours=7, minutes=13), T0 + timedelta(minutes=1))


@pytest.mark.parametrize("seed", range(6))
def test_percentiles_from_the_histograms_are_within_the_stated_bound(seed):
    rng = random.Random(seed)
    shape = seed % 3
    values = [
        rng.lognormvariate(5, 1.5) if shape == 0 else rng.uniform(0, 50) if shape == 1 else 2.0
        for _ in range(rng.randint(1, 3000))
    ]
    bins: dict[int, int] = {}
    for value in values:
        bins[latency_bin(value)] = bins.get(latency_bin(value), 0) + 1
    for fraction in (0.0, 0.5, 0.9, 0.99, 1.0):
        exact = _exact_percentile(values, fraction)
        estimate = percentile_from_bins(bins, fraction)
        assert estimate is not None
        assert abs(estimate - exact) <= RELATIVE_ERROR * exact + ABSOLUTE_ERROR_MS
    assert percentile_from_bins({}, 0.5) is None


def test_cards_above_the_exact_limit_show_approximate_percentiles(monkeypatch):
    rng = random.Random(23)
    _random_traces(rng, 120, around=T0)
    window = {"start": T0 - timedelta(hours=30), "end": T0 + timedelta(hours=30)}
    exact = {card.project.name: card for card in project_cards(**window)}
    monkeypatch.setattr(project_page, "EXACT_PERCENTILES_UP_TO", 10)
    approximate = {card.project.name: card for card in project_cards(**window)}
    for name, card in approximate.items():
        want = exact[name]
        assert card.latency_approximate and not want.latency_approximate
        assert (card.traces, card.spans, card.errors, card.tokens) == (
            want.traces,
            want.spans,
            want.errors,
            want.tokens,
        )
        for got, real in (
            (card.latency_p50_ms, want.latency_p50_ms),
            (card.latency_p99_ms, want.latency_p99_ms),
        ):
            assert got is not None and real is not None
            assert abs(got - real) <= RELATIVE_ERROR * real + ABSOLUTE_ERROR_MS


@pytest.mark.skipif(connection.vendor != "postgresql", reason="advisory locks are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_reader_stores_no_hour_of_a_project_a_writer_is_changing():
    """A writer that forgot an hour holds its project's lock until it commits: a reader then
    serves the hour from the traces it sees, without waiting and without storing it."""
    rng = random.Random(29)
    start = T0 - timedelta(hours=3, minutes=30)
    trace_id = factories.next_hex(32)
    spans_ingest(records=_trace(rng, project="shop", start=start, trace_id=trace_id))
    shop = factories.project("shop").pk
    assert not TraceHour.objects.exists()  # the hour is computed while the writer is at it
    forgot, release = threading.Event(), threading.Event()

    def writer() -> None:
        try:
            with transaction.atomic():
                late = factories.span_record(
                    trace_id=trace_id, start=start + timedelta(seconds=1), project_name="shop"
                )
                spans_ingest(records=[late])
                forgot.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert forgot.wait(30)
        seen = trace_totals(project_ids=[shop], start=None, end=None)[shop]
        assert seen.spans == _live(None, None)[shop]["spans"]  # the writer's span not yet in
        assert not TraceHour.objects.filter(project_id=shop, hour=hour_floor(start)).exists()
    finally:
        release.set()
        thread.join(30)
    _assert_equal_to_live(None, None)
    assert trace_totals(project_ids=[shop], start=None, end=None)[shop].spans == seen.spans + 1
    assert TraceHour.objects.filter(project_id=shop, hour=hour_floor(start)).exists()
