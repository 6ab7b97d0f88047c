"""Selectors of the trace browser: project cards, keyset pages for every tab and sort, badges."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from annotations.models import Annotation
from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories
from tracing.browser.badges import badges_attach
from tracing.browser.filters import SpanFilterSet
from tracing.browser.projects import PercentileCont, project_cards
from tracing.browser.projects import percentile_cont as percentile_fallback
from tracing.browser.selection import result_spans, selection_spans
from tracing.browser.selectors import browse_newer, browse_page, browse_spans
from tracing.models import Project, Span, Trace
from tracing.store.selectors import InvalidCursor

pytestmark = pytest.mark.django_db
T0 = factories.BASE_TIME


def _reference_percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * fraction
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _evaluate(span: Span, name: str, label: str, kind: str = "LLM", score: float = 1.0) -> None:
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN",
                target_id=span.span_id,
                name=name,
                annotator_kind=kind,
                label=label,
                score=score,
                explanation=f"because {label}",
            )
        ]
    )


def _page(project: Project, tab: str, data: dict | None = None, **kwargs):  # type: ignore[no-untyped-def]
    filters = SpanFilterSet(
        data or {}, queryset=browse_spans(project=project, tab=tab), project=project, tab=tab
    )
    return browse_page(
        project=project, tab=tab, spans=filters.qs, filtering=filters.is_filtering, **kwargs
    )


# --- percentiles ------------------------------------------------------------------------------


def test_percentile_fallback_interpolates_like_percentile_cont():
    for index, latency in enumerate([10.0, 20.0, 30.0, 40.0, 1000.0]):
        factories.trace(start=T0 + timedelta(minutes=index), llm_latency_ms=latency)
    latencies = list(Trace.objects.values_list("latency_ms", flat=True))
    for fraction in (0.0, 0.5, 0.9, 0.99, 1.0):
        assert percentile_fallback(Trace.objects.all(), "latency_ms", fraction) == pytest.approx(
            _reference_percentile(latencies, fraction)
        )
    assert percentile_fallback(Trace.objects.none(), "latency_ms", 0.5) is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="percentile_cont is PostgreSQL's")
def test_percentile_cont_aggregate_matches_the_fallback_on_postgresql():
    for index, latency in enumerate([5.0, 7.0, 100.0, 2500.0]):
        factories.trace(start=T0 + timedelta(minutes=index), llm_latency_ms=latency)
    row = Trace.objects.aggregate(
        p50=PercentileCont("latency_ms", 0.5), p99=PercentileCont("latency_ms", 0.99)
    )
    assert row["p50"] == pytest.approx(percentile_fallback(Trace.objects.all(), "latency_ms", 0.5))
    assert row["p99"] == pytest.approx(percentile_fallback(Trace.objects.all(), "latency_ms", 0.99))


def test_percentile_rejects_a_fraction_outside_zero_to_one():
    with pytest.raises(ValueError, match="between 0 and 1"):
        PercentileCont("latency_ms", 1.5)


# --- project cards ----------------------------------------------------------------------------


def test_project_cards_count_the_window_and_mix_evaluation_labels():
    latencies = [100.0, 300.0, 500.0, 2000.0]
    traces = [
        factories.trace(
            project="shop",
            start=T0 + timedelta(minutes=index),
            llm_latency_ms=latency,
            status_code="ERROR" if index == 0 else "OK",
        )
        for index, latency in enumerate(latencies)
    ]
    outside = factories.trace(project="shop", start=T0 - timedelta(days=3))
    factories.project("empty")
    _evaluate(outside[2], "Correctness", "incorrect")  # its span started before the window
    _evaluate(traces[0][2], "Correctness", "incorrect", score=0.0)
    _evaluate(traces[1][2], "Correctness", "correct")
    _evaluate(traces[2][2], "Correctness", "correct")
    _evaluate(traces[3][2], "Tone", "polite", kind="HUMAN")  # a person's label, not an eval

    cards = {
        card.project.name: card
        for card in project_cards(start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=1))
    }

    assert set(cards) == {"empty", "shop"}
    shop = cards["shop"]
    in_window = Trace.objects.filter(project__name="shop", start_time__gte=T0)
    assert shop.traces == 4
    assert shop.spans == 12
    assert shop.errors == 1
    assert shop.error_rate == pytest.approx(25.0)
    trace_latencies = list(in_window.values_list("latency_ms", flat=True))
    assert shop.latency_p50_ms == pytest.approx(_reference_percentile(trace_latencies, 0.5))
    assert shop.latency_p99_ms == pytest.approx(_reference_percentile(trace_latencies, 0.99))
    assert shop.tokens == sum(in_window.values_list("total_tokens", flat=True)) > 0
    assert [m.name for m in shop.evaluations] == ["Correctness"]
    mix = shop.evaluations[0]
    assert mix.total == 3
    assert [(label.label, label.count, label.share) for label in mix.labels] == [
        ("correct", 2, pytest.approx(66.7)),
        ("incorrect", 1, pytest.approx(33.3)),
    ]
    empty = cards["empty"]
    assert (empty.traces, empty.error_rate, empty.latency_p50_ms, empty.evaluations) == (
        0,
        None,
        None,
        [],
    )


def test_project_cards_without_a_window_count_everything():
    factories.trace(project="shop", start=T0)
    factories.trace(project="shop", start=T0 - timedelta(days=300))
    (card,) = project_cards(start=None, end=None)
    assert card.traces == 2


# --- tables -----------------------------------------------------------------------------------


def _spans(count: int, project: str = "default") -> list[Span]:
    records = [
        factories.span_record(
            name=f"s{index}",
            start=T0 + timedelta(seconds=index),
            latency_ms=float((index * 37) % 11 + 1),
            attributes={"llm.token_count.total": (index * 13) % 7},
        )
        for index in range(count)
    ]
    return factories.ingest(records, project=project)


@pytest.mark.parametrize("sort", ["start_time", "latency", "tokens", "cost"])
@pytest.mark.parametrize("descending", [True, False])
def test_spans_page_forward_and_back_in_every_sort(sort, descending):
    _spans(23)
    project = Project.objects.get(name="default")
    key = {
        "start_time": lambda s: s.start_time,
        "latency": lambda s: s.latency_ms,
        "tokens": lambda s: s.total_tokens or 0,
        "cost": lambda s: s.cost or 0.0,
    }[sort]
    expected = sorted(Span.objects.all(), key=lambda s: (key(s), s.pk), reverse=descending)

    seen, pages, after = [], [], None
    while True:
        page = _page(project, "spans", sort=sort, descending=descending, after=after, size=5)
        pages.append(page)
        seen += [row.pk for row in page.rows]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert seen == [s.pk for s in expected]
    assert [len(p.rows) for p in pages] == [5, 5, 5, 5, 3]
    assert pages[0].has_prev is False and pages[1].has_prev is True

    # Back from the third page gives the second page, and from the second the first.
    back = _page(
        project, "spans", sort=sort, descending=descending, before=pages[2].prev_cursor, size=5
    )
    assert [r.pk for r in back.rows] == [r.pk for r in pages[1].rows]
    assert back.has_prev is True
    first = _page(
        project, "spans", sort=sort, descending=descending, before=back.prev_cursor, size=5
    )
    assert [r.pk for r in first.rows] == [r.pk for r in pages[0].rows]
    assert first.has_prev is False and first.prev_cursor is None


def test_pages_neither_shift_nor_repeat_when_spans_arrive_between_them():
    _spans(10)
    project = Project.objects.get(name="default")
    first = _page(project, "spans", size=4)
    _spans_newer = factories.ingest(
        [
            factories.span_record(name=f"new{i}", start=T0 + timedelta(hours=1, seconds=i))
            for i in range(3)
        ]
    )
    second = _page(project, "spans", after=first.next_cursor, size=4)
    names = [r.name for r in first.rows + second.rows]
    assert names == ["s9", "s8", "s7", "s6", "s5", "s4", "s3", "s2"]
    assert len(_spans_newer) == 3


def test_a_cursor_of_another_sort_is_refused():
    _spans(6)
    project = Project.objects.get(name="default")
    page = _page(project, "spans", size=2)
    with pytest.raises(InvalidCursor):
        _page(project, "spans", sort="latency", after=page.next_cursor, size=2)
    with pytest.raises(InvalidCursor):
        _page(project, "spans", after="not-a-cursor", size=2)


def test_traces_tab_lists_root_spans_with_trace_totals_and_sorts_by_them():
    small = factories.trace(start=T0, llm_latency_ms=100)
    big = factories.trace(start=T0 + timedelta(minutes=1), llm_latency_ms=900)
    Trace.objects.filter(pk=small[0].trace_id).update(total_tokens=5000, cost=0.5)
    project = Project.objects.get(name="default")

    newest = _page(project, "traces")
    assert [row.span_id for row in newest.rows] == [big[0].span_id, small[0].span_id]
    assert all(row.parent_id is None for row in newest.rows)
    by_tokens = _page(project, "traces", sort="tokens")
    assert [row.span_id for row in by_tokens.rows] == [small[0].span_id, big[0].span_id]
    by_cost = _page(project, "traces", sort="cost", descending=False)
    assert [row.span_id for row in by_cost.rows] == [big[0].span_id, small[0].span_id]
    by_latency = _page(project, "traces", sort="latency")
    assert [row.span_id for row in by_latency.rows] == [big[0].span_id, small[0].span_id]
    assert newest.rows[0].input_preview == "What is the refund policy?"


def test_sessions_tab_has_first_input_last_output_turns_and_sorts():
    factories.trace(start=T0, session_id="chat-1", input_value="hello", output_value="hi")
    factories.trace(
        start=T0 + timedelta(minutes=5),
        session_id="chat-1",
        input_value="bye",
        output_value="goodbye",
    )
    factories.trace(start=T0 + timedelta(minutes=1), session_id="chat-2", llm_latency_ms=50)
    factories.trace(start=T0 + timedelta(minutes=2))  # no session
    project = Project.objects.get(name="default")

    page = _page(project, "sessions")
    assert [row.session_id for row in page.rows] == ["chat-2", "chat-1"]
    chat1 = page.rows[1]
    assert (chat1.first_input, chat1.last_output, chat1.trace_count) == ("hello", "goodbye", 2)
    assert chat1.duration >= timedelta(minutes=5)
    longest = _page(project, "sessions", sort="latency")
    assert [row.session_id for row in longest.rows] == ["chat-1", "chat-2"]
    # A filter keeps the sessions with a matching span.
    filtered = _page(project, "sessions", {"q": "input = 'bye'"})
    assert [row.session_id for row in filtered.rows] == ["chat-1"]
    # Paging on the duration cursor works.
    first = _page(project, "sessions", sort="latency", size=1)
    second = _page(project, "sessions", sort="latency", size=1, after=first.next_cursor)
    assert [r.session_id for r in first.rows + second.rows] == ["chat-1", "chat-2"]


def test_live_returns_only_rows_newer_than_the_top_row():
    _spans(3)
    project = Project.objects.get(name="default")
    page = _page(project, "spans")
    factories.ingest(
        [
            factories.span_record(name=f"late{i}", start=T0 + timedelta(hours=2, seconds=i))
            for i in range(2)
        ]
    )
    filters = SpanFilterSet(
        {}, queryset=browse_spans(project=project, tab="spans"), project=project, tab="spans"
    )
    newer = browse_newer(
        project=project, tab="spans", spans=filters.qs, filtering=False, newer_than=page.top_cursor
    )
    assert [row.name for row in newer.rows] == ["late1", "late0"]
    again = browse_newer(
        project=project, tab="spans", spans=filters.qs, filtering=False, newer_than=newer.top_cursor
    )
    assert again.rows == [] and again.top_cursor == newer.top_cursor


def test_badges_for_a_page_come_from_one_query(django_assert_num_queries):
    traces = [factories.trace(start=T0 + timedelta(minutes=i)) for i in range(3)]
    root = traces[0][0]
    _evaluate(root, "Correctness", "incorrect", score=0.0)
    _evaluate(root, "Helpfulness", "", kind="CODE", score=0.9)
    _evaluate(root, "Reviewed", "yes", kind="HUMAN")
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="TRACE",
                target_id=Trace.objects.get(pk=root.trace_id).trace_id,
                name="Resolved",
                annotator_kind="LLM",
                label="correct",
            )
        ]
    )
    # The whole trace shows on its row: results on child spans too, equal ones counted.
    _retriever, llm = traces[0][1:]
    _evaluate(llm, "Correctness", "incorrect", score=0.0)
    _evaluate(_retriever, "Correctness", "correct", score=1.0)
    _evaluate(traces[1][2], "Correctness", "correct", score=1.0)
    rows = list(
        Span.objects.filter(parent_id__isnull=True).select_related("trace").order_by("start_time")
    )
    with django_assert_num_queries(1):
        badges_attach(rows, tab="traces")
    first = rows[0]
    assert [(b.name, b.text, b.tone, b.count) for b in first.eval_badges] == [
        ("Correctness", "incorrect", "error", 2),
        ("Correctness", "correct", "ok", 1),
        ("Helpfulness", "0.9", "ok", 1),
        ("Resolved", "correct", "ok", 1),
    ]
    assert [(b.name, b.text) for b in first.note_badges] == [("Reviewed", "yes")]
    assert [(b.name, b.text) for b in rows[1].eval_badges] == [("Correctness", "correct")]
    assert rows[2].eval_badges == [] and rows[2].note_badges == []
    assert Annotation.objects.count() == 7
    with django_assert_num_queries(1):
        badges_attach(rows, tab="spans")
    assert [(b.name, b.text) for b in rows[1].eval_badges] == []  # its root span has none


def test_selection_and_result_spans_cover_whole_traces_and_sessions():
    one = factories.trace(start=T0, session_id="chat")
    two = factories.trace(start=T0 + timedelta(minutes=1), status_code="ERROR")
    project = Project.objects.get(name="default")
    trace_two = Trace.objects.get(pk=two[0].trace_id).trace_id

    assert selection_spans(project=project, tab="traces", keys=[trace_two]).count() == 3
    assert selection_spans(project=project, tab="spans", keys=[one[1].span_id]).count() == 1
    assert selection_spans(project=project, tab="sessions", keys=["chat"]).count() == 3

    filters = SpanFilterSet(
        {"status": ["ERROR"]},
        queryset=browse_spans(project=project, tab="traces"),
        project=project,
        tab="traces",
    )
    everything = result_spans(
        project=project, tab="traces", spans=filters.qs, filtering=filters.is_filtering
    )
    assert {s.span_id for s in everything} == {s.span_id for s in two}
    spans_only = SpanFilterSet(
        {"status": ["ERROR"]},
        queryset=browse_spans(project=project, tab="spans"),
        project=project,
        tab="spans",
    )
    assert (
        result_spans(project=project, tab="spans", spans=spans_only.qs, filtering=True).count() == 2
    )  # the root and the LLM span of the failed trace


def test_quick_filters_are_filter_language_clauses_with_quoting():
    factories.ingest(
        [
            factories.span_record(name="quoted", attributes={"llm.model_name": "it's \\ model"}),
            factories.span_record(name="other", attributes={"llm.model_name": "gpt-4o"}),
        ]
    )
    project = Project.objects.get(name="default")
    filters = SpanFilterSet(
        {"model": "it's \\ model", "status": ["OK"], "kind": ["CHAIN"]},
        queryset=browse_spans(project=project, tab="spans"),
        project=project,
        tab="spans",
    )
    assert [span.name for span in filters.qs] == ["quoted"]
    assert set(filters.clauses) == {
        "model_name = 'it\\'s \\\\ model'",
        "status_code IN ('OK')",
        "span_kind IN ('CHAIN')",
    }
    bad = SpanFilterSet(
        {"q": "  name = "},
        queryset=browse_spans(project=project, tab="spans"),
        project=project,
        tab="spans",
    )
    assert (
        bad.filter_error is not None and bad.filter_error.position == 9
    )  # after "=", counted as typed
    assert bad.qs.count() == 2  # the box is left out; nothing else filters


def test_label_mix_counts_trace_evaluations_in_the_window_too():
    inside = factories.trace(start=T0)
    outside = factories.trace(start=T0 - timedelta(days=2))
    for spans, label in ((inside, "yes"), (outside, "no")):
        annotations_upsert(
            items=[
                AnnotationInput(
                    target_kind="TRACE",
                    target_id=Trace.objects.get(pk=spans[0].trace_id).trace_id,
                    name="Resolved",
                    annotator_kind="CODE",
                    label=label,
                )
            ]
        )
    (card,) = project_cards(start=T0 - timedelta(hours=1), end=None)
    assert [(m.name, [(x.label, x.count) for x in m.labels]) for m in card.evaluations] == [
        ("Resolved", [("yes", 1)])
    ]


def test_label_mix_without_reading_spans_when_the_window_holds_the_whole_project():
    traces = [factories.trace(project="shop", start=T0 + timedelta(minutes=i)) for i in range(3)]
    _evaluate(traces[0][2], "Correctness", "incorrect", score=0.0)
    _evaluate(traces[1][2], "Correctness", "correct")
    _evaluate(traces[2][0], "Tone", "polite", kind="HUMAN")
    whole = project_cards(start=T0 - timedelta(days=1), end=T0 + timedelta(days=1))
    part = project_cards(start=T0 + timedelta(seconds=30), end=None)  # the first trace is out
    assert [(x.label, x.count) for x in whole[0].evaluations[0].labels] == [
        ("correct", 1),
        ("incorrect", 1),
    ]
    assert [(x.label, x.count) for x in part[0].evaluations[0].labels] == [("correct", 1)]


@pytest.mark.parametrize("sort", ["tokens", "cost"])
@pytest.mark.parametrize("descending", [True, False])
def test_traces_sorted_by_trace_totals_page_through_ties_and_two_root_traces(sort, descending):
    traces = [factories.trace(start=T0 + timedelta(seconds=i)) for i in range(7)]
    # Three traces tie on the value; one trace gets a second root span.
    for index, spans in enumerate(traces):
        Trace.objects.filter(pk=spans[0].trace_id).update(
            total_tokens=100 if index < 3 else index * 10, cost=0.5 if index < 3 else index / 10
        )
    twin = factories.span_record(
        trace_id=Trace.objects.get(pk=traces[0][0].trace_id).trace_id, name="second-root"
    )
    factories.ingest([twin])
    Trace.objects.filter(pk=traces[0][0].trace_id).update(total_tokens=100, cost=0.5)
    project = Project.objects.get(name="default")
    column = {"tokens": "trace__total_tokens", "cost": "trace__cost"}[sort]
    roots = Span.objects.filter(parent_id__isnull=True).values_list("pk", column, "trace_id")
    expected = [
        pk for pk, *_ in sorted(roots, key=lambda r: (r[1], r[2], r[0]), reverse=descending)
    ]

    seen, after, pages = [], None, []
    while True:
        page = _page(project, "traces", sort=sort, descending=descending, after=after, size=3)
        pages.append(page)
        seen += [row.pk for row in page.rows]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert seen == expected and len(seen) == 8
    back = _page(
        project, "traces", sort=sort, descending=descending, before=pages[2].prev_cursor, size=3
    )
    assert [r.pk for r in back.rows] == [r.pk for r in pages[1].rows]


@pytest.mark.parametrize("sort", ["start_time", "latency", "tokens"])
def test_a_rare_any_span_match_is_searched_a_window_at_a_time(sort):
    """Traces that match by a child span, few among many: each page looks at no more than the
    window of traces past its cursor, says so, and its cursor goes on searching; the pages
    together list every match once, forward and back."""
    traces = [
        factories.trace(start=T0 + timedelta(minutes=n), llm_latency_ms=100 + n) for n in range(12)
    ]
    slow = {1, 2, 9}
    Span.objects.filter(pk__in=[traces[n][2].pk for n in slow]).update(name="slow-llm")
    project = Project.objects.get(name="default")
    filters = SpanFilterSet(
        {"q": "name = 'slow-llm'"},
        queryset=browse_spans(project=project, tab="traces"),
        project=project,
        tab="traces",
    )
    assert filters.search_window is not None
    table = {
        "project": project,
        "tab": "traces",
        "spans": filters.qs,
        "filtering": True,
        "sort": sort,
        "size": 2,
        "window": filters.search_window,
        "window_size": 4,
    }
    seen, pages, after = [], [], None
    while True:
        page = browse_page(**table, after=after)
        pages.append(page)
        seen += [row.trace_id for row in page.rows]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert sorted(seen) == sorted(traces[n][0].trace_id for n in slow)
    assert len(seen) == len(set(seen))
    assert all(len(page.rows) <= 2 for page in pages)
    assert any(page.searched == 4 and page.searched_to is not None for page in pages)
    assert any(page.rows == [] and page.searched == 4 for page in pages)  # no match in a window
    # Back from the last page with rows: the matches before it, every one once.
    last = next(page for page in reversed(pages) if page.rows)
    back, before = [], last.prev_cursor
    while before is not None:
        page = browse_page(**table, before=before)
        back = [row.trace_id for row in page.rows] + back
        before = page.prev_cursor
    assert back + [row.trace_id for row in last.rows] == seen
    # Root span only: the plain filter on root spans, no window.
    roots = SpanFilterSet(
        {"q": "name = 'slow-llm'", "root": "1"},
        queryset=browse_spans(project=project, tab="traces"),
        project=project,
        tab="traces",
    )
    assert roots.search_window is None and list(roots.qs) == []


@pytest.mark.django_db
def test_spans_tab_pages_read_from_the_results_match_the_walk_over_the_spans():
    """A filter asking for a result on the span: the Spans tab reads its newest-first pages
    from the results (``expression``) and gets the rows and cursors the walk gets."""
    records = [
        factories.span_record(
            start=T0 + timedelta(seconds=index // 3), kind="LLM" if index % 2 else "CHAIN"
        )
        for index in range(40)
    ]
    spans = factories.ingest(records)
    items = [
        AnnotationInput(
            "SPAN",
            span.span_id,
            "Correctness",
            annotator_kind="LLM",
            label="incorrect" if index % 3 else "correct",
            identifier=identifier,
        )
        for index, span in enumerate(spans)
        if index % 4
        for identifier in (("", "again") if index % 5 == 0 else ("",))
    ]
    annotations_upsert(items=items)
    project = factories.project()
    for expression in (
        "eval.Correctness.label = 'incorrect'",
        "eval.Correctness.label = 'incorrect' and span_kind = 'LLM'",
    ):
        data = {"q": expression, "range": "all"}
        filters = SpanFilterSet(
            data, queryset=browse_spans(project=project, tab="spans"), project=project, tab="spans"
        )
        table = {"project": project, "tab": "spans", "spans": filters.qs, "filtering": True}
        for size in (1, 3, 100):
            led, walked, after = [], [], None
            while True:
                page = browse_page(**table, size=size, after=after, expression=expression)
                plain = browse_page(**table, size=size, after=after)
                assert [row.pk for row in page.rows] == [row.pk for row in plain.rows]
                assert page.next_cursor == plain.next_cursor
                led += [row.pk for row in page.rows]
                walked += [row.pk for row in plain.rows]
                if page.next_cursor is None:
                    break
                after = page.next_cursor
            expected = list(filters.qs.order_by("-start_time", "-id").values_list("pk", flat=True))
            assert led == walked == expected and expected, (expression, size)
