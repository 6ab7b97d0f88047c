"""Score trends: the selectors' counts and means per time bucket, the charts' geometry, and the
page through Django's test client (range, buckets, human toggle, legend links, empty states)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from annotations.store.services import AnnotationInput, annotations_upsert
from evalhub.trends.selectors import (
    MAX_BUCKETS,
    Trend,
    bucket_auto,
    bucket_fit,
    bucket_floor,
    bucket_starts,
    score_trends,
    trend_extent,
    trends_page,
)
from evalhub.trends.templatetags.trend_charts import (
    PLOT_HEIGHT,
    label_filter,
    label_mix_chart,
    mean_score_chart,
)
from tests import factories
from tracing.models import Project, Session, Span

pytestmark = pytest.mark.django_db

NOV20 = datetime(2026, 11, 20, tzinfo=UTC)  # a Friday
NOV21 = NOV20 + timedelta(days=1)
NOV22 = NOV20 + timedelta(days=2)
NOV23 = NOV20 + timedelta(days=3)  # a Monday: a new week
CORRECTNESS = "correctness"
TRICKY = 'it\'s <b>&</b> "odd"'  # a label with quotes, markup and an ampersand


def _llm_span(*, project: str = "shop", start: datetime, session_id: str | None = None) -> Span:
    """A trace starting at ``start``; returns its LLM span (which starts 100 ms later)."""
    spans = factories.trace(project=project, start=start, session_id=session_id)
    return next(span for span in spans if span.span_kind == "LLM")


def _evaluate(
    span: Span,
    label: str | None,
    score: float | None,
    *,
    name: str = CORRECTNESS,
    kind: str = "LLM",
    target: str = "SPAN",
    identifier: str = "",
) -> None:
    target_id = {
        "SPAN": span.span_id,
        "TRACE": span.trace.trace_id,
        "SESSION": span.session.session_id if span.session else "",
    }[target]
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind=target,
                target_id=target_id,
                name=name,
                annotator_kind=kind,
                label=label,
                score=score,
                identifier=identifier,
            )
        ],
        project=span.project,
    )


@pytest.fixture
def shop() -> dict[str, Span]:
    """correctness on five LLM spans over two days; plus a code evaluation with scores
    only, a trace-level evaluation, a human label, and an evaluation in another project."""
    spans = {
        "a": _llm_span(start=NOV20 + timedelta(hours=12)),
        "b": _llm_span(start=NOV20 + timedelta(hours=12, minutes=30)),
        "c": _llm_span(start=NOV20 + timedelta(hours=14)),
        "d": _llm_span(start=NOV21 + timedelta(hours=9)),
        "e": _llm_span(start=NOV21 + timedelta(hours=9, minutes=59)),
        "f": _llm_span(start=NOV23 + timedelta(hours=1)),
    }
    _evaluate(spans["a"], "correct", 1.0)
    _evaluate(spans["b"], "incorrect", 0.0)
    _evaluate(spans["c"], "correct", 1.0)
    _evaluate(spans["d"], "correct", 1.0)
    _evaluate(spans["e"], TRICKY, 0.5)
    _evaluate(spans["f"], "incorrect", None)  # a label without a score
    _evaluate(spans["a"], None, 120.0, name="length", kind="CODE")
    _evaluate(spans["d"], None, 80.0, name="length", kind="CODE")
    _evaluate(spans["b"], "resolved", 1.0, name="resolution", target="TRACE")
    _evaluate(spans["a"], "good", 1.0, name="Quality", kind="HUMAN")
    other = _llm_span(project="other", start=NOV20 + timedelta(hours=12))
    _evaluate(other, "correct", 1.0)
    return spans


def _project(name: str = "shop") -> Project:
    return Project.objects.get(name=name)


def _trend(trends, name: str, *, human: bool = False):  # type: ignore[no-untyped-def]
    return next(t for t in trends if t.name == name and t.human is human)


def _series(trend) -> list[tuple[datetime, dict, float | None, int]]:  # type: ignore[no-untyped-def]
    return [(b.start, b.counts, b.mean_score, b.scored) for b in trend.buckets]


# --- selectors -------------------------------------------------------------------------------


def test_daily_counts_per_label_and_mean_score(shop, django_assert_num_queries):
    shop_project = _project()
    with django_assert_num_queries(2):
        trends = score_trends(project=shop_project, start=NOV20, end=NOV22, bucket="day")

    assert [(t.name, t.human) for t in trends] == [
        ("correctness", False),
        ("length", False),
        ("resolution", False),
    ]  # the human label is not an evaluation; the other project's result is not here
    correctness = _trend(trends, CORRECTNESS)
    assert _series(correctness) == [
        (NOV20, {"correct": 2, "incorrect": 1}, pytest.approx(2 / 3), 3),
        (NOV21, {"correct": 1, TRICKY: 1}, pytest.approx(0.75), 2),
    ]
    assert correctness.labels == ["correct", "incorrect", TRICKY]
    assert (correctness.total, correctness.scored) == (5, 5)
    assert correctness.mean_score == pytest.approx(3.5 / 5)
    assert correctness.target_kinds == ["SPAN"]

    length = _trend(trends, "length")
    assert _series(length) == [(NOV20, {None: 1}, 120.0, 1), (NOV21, {None: 1}, 80.0, 1)]
    assert length.labels == [None]

    resolution = _trend(trends, "resolution")
    assert resolution.target_kinds == ["TRACE"]
    assert _series(resolution) == [(NOV20, {"resolved": 1}, 1.0, 1)]


def test_hourly_buckets_place_results_by_the_items_start_time(shop):
    trends = score_trends(project=_project(), start=NOV20, end=NOV22, bucket="hour")

    assert _series(_trend(trends, CORRECTNESS)) == [
        (NOV20 + timedelta(hours=12), {"correct": 1, "incorrect": 1}, 0.5, 2),
        (NOV20 + timedelta(hours=14), {"correct": 1}, 1.0, 1),
        (NOV21 + timedelta(hours=9), {"correct": 1, TRICKY: 1}, 0.75, 2),
    ]


def test_weekly_buckets_start_on_monday(shop):
    trends = score_trends(project=_project(), start=None, end=None, bucket="week")

    week_of_nov16 = datetime(2026, 11, 16, tzinfo=UTC)
    assert _series(_trend(trends, CORRECTNESS)) == [
        (week_of_nov16, {"correct": 3, "incorrect": 1, TRICKY: 1}, pytest.approx(0.7), 5),
        (NOV23, {"incorrect": 1}, None, 0),  # no scores: no mean
    ]


def test_the_range_is_half_open_and_names_narrow(shop):
    # [Nov 20 12:00:00.100, Nov 21 09:00:00.100): the LLM span of "a" starts exactly at the
    # start (kept), the one of "d" exactly at the end (left out).
    start = NOV20 + timedelta(hours=12, milliseconds=100)
    end = NOV21 + timedelta(hours=9, milliseconds=100)
    trends = score_trends(
        project=_project(), start=start, end=end, bucket="day", names=[CORRECTNESS]
    )

    assert [t.name for t in trends] == [CORRECTNESS]
    assert _series(trends[0]) == [(NOV20, {"correct": 2, "incorrect": 1}, pytest.approx(2 / 3), 3)]


def test_human_annotations_only_when_asked_and_apart_from_evaluations(shop):
    # A reviewer's label under the evaluation's name (an annotation of its own: another
    # identifier).
    _evaluate(shop["b"], "bad", 0.0, name=CORRECTNESS, kind="HUMAN", identifier="ana")

    trends = score_trends(project=_project(), start=NOV20, end=NOV22, bucket="day", human=True)

    assert [(t.name, t.human) for t in trends] == [
        (CORRECTNESS, False),
        ("length", False),
        ("resolution", False),
        ("Quality", True),
        (CORRECTNESS, True),
    ]  # evaluations first, then human annotations, each by name
    assert _series(_trend(trends, "Quality", human=True)) == [(NOV20, {"good": 1}, 1.0, 1)]
    assert _series(_trend(trends, CORRECTNESS, human=True)) == [(NOV20, {"bad": 1}, 0.0, 1)]
    assert _trend(trends, CORRECTNESS).total == 5  # the evaluation's counts are unchanged


def test_session_evaluations_use_the_session_start(db):
    span = _llm_span(start=NOV20 + timedelta(hours=23, minutes=59), session_id="conv-1")
    later = _llm_span(start=NOV21 + timedelta(hours=3), session_id="conv-1")
    session = Session.objects.get(session_id="conv-1")
    assert session.start_time == span.trace.start_time
    _evaluate(later, "frustrated", 0.2, name="sentiment", target="SESSION")

    trends = score_trends(project=_project(), start=None, end=None, bucket="day")

    (sentiment,) = trends
    assert sentiment.target_kinds == ["SESSION"]
    assert _series(sentiment) == [(NOV20, {"frustrated": 1}, 0.2, 1)]


def test_extent_and_page_for_all_time(shop, django_assert_num_queries):
    assert trend_extent(project=_project()) == (
        shop["a"].start_time,
        shop["f"].start_time,
    )
    now, shop_project = NOV23 + timedelta(hours=5), _project()
    with django_assert_num_queries(3):  # extent, counts, means
        page = trends_page(project=shop_project, start=None, end=None, now=now)

    assert page.bucket == "hour"  # Nov 20 12:00 to Nov 23 05:00 is under three days
    assert page.axis[0] == NOV20 + timedelta(hours=12)
    assert page.axis[-1] == NOV23 + timedelta(hours=5)
    assert len(page.axis) == 66


def test_page_coarsens_a_bucket_that_makes_too_many(shop):
    page = trends_page(
        project=_project(),
        start=NOV20 - timedelta(days=60),
        end=NOV22,
        bucket="hour",
        now=NOV22,
    )

    assert (page.bucket, page.coarsened) == ("day", True)
    assert len(page.axis) == 62


def test_page_tells_no_evaluations_yet_from_none_in_range(shop, db):
    empty = Project.objects.create(name="empty")
    assert trends_page(project=empty, start=None, end=None).has_evaluations is False
    in_the_future = trends_page(
        project=_project(), start=NOV23 + timedelta(days=5), end=None, now=NOV23
    )
    assert (in_the_future.trends, in_the_future.has_evaluations) == ([], True)


def test_bucket_helpers():
    moment = datetime(2026, 11, 22, 17, 45, 12, tzinfo=UTC)  # a Sunday
    assert bucket_floor(moment, "hour") == datetime(2026, 11, 22, 17, tzinfo=UTC)
    assert bucket_floor(moment, "day") == datetime(2026, 11, 22, tzinfo=UTC)
    assert bucket_floor(moment, "week") == datetime(2026, 11, 16, tzinfo=UTC)
    assert bucket_starts(NOV20 + timedelta(minutes=5), NOV21, "hour")[:2] == [
        NOV20,
        NOV20 + timedelta(hours=1),
    ]
    assert len(bucket_starts(NOV20, NOV21, "hour")) == 24
    assert bucket_auto(NOV20, NOV20 + timedelta(hours=24)) == "hour"
    assert bucket_auto(NOV20, NOV20 + timedelta(days=7)) == "day"
    assert bucket_auto(NOV20, NOV20 + timedelta(days=365)) == "week"
    assert bucket_fit(NOV20, NOV20 + timedelta(hours=MAX_BUCKETS), "hour") == "hour"
    assert bucket_fit(NOV20, NOV20 + timedelta(hours=MAX_BUCKETS + 1), "hour") == "day"


# --- charts ----------------------------------------------------------------------------------


def test_label_mix_bars_stack_to_each_buckets_total(shop):
    (correctness, *_) = score_trends(project=_project(), start=NOV20, end=NOV22, bucket="day")
    axis = bucket_starts(NOV20, NOV22, "day")

    chart = label_mix_chart(correctness, axis, "day")

    # Highest total 3 → axis 0..3 in steps of 1.
    assert [tick.text for tick in chart.y_ticks] == ["0", "1", "2", "3"]
    assert [(bar.title, bar.height) for bar in chart.bars] == [
        ("2026-11-20: correct 2 of 3", pytest.approx(PLOT_HEIGHT * 2 / 3, abs=0.01)),
        ("2026-11-20: incorrect 1 of 3", pytest.approx(PLOT_HEIGHT / 3, abs=0.01)),
        ("2026-11-21: correct 1 of 2", pytest.approx(PLOT_HEIGHT / 3, abs=0.01)),
        (f"2026-11-21: {TRICKY} 1 of 2", pytest.approx(PLOT_HEIGHT / 3, abs=0.01)),
    ]
    first, second = chart.bars[0], chart.bars[1]
    assert second.y + second.height == pytest.approx(first.y)  # stacked, touching
    assert first.color != second.color
    assert chart.bars[2].x > first.x  # the second day is to the right


def test_mean_score_line_breaks_over_buckets_without_scores(shop):
    correctness = _trend(
        score_trends(project=_project(), start=NOV20, end=NOV23 + timedelta(days=1), bucket="day"),
        CORRECTNESS,
    )
    axis = bucket_starts(NOV20, NOV23 + timedelta(days=1), "day")

    chart = mean_score_chart(correctness, axis, "day")

    assert chart is not None
    assert [tick.text for tick in chart.y_ticks] == ["0", "0.25", "0.5", "0.75", "1"]
    # Nov 20 and 21 are joined; Nov 22 has no result and Nov 23 no score: nothing more.
    assert re.fullmatch(r"M[\d.]+,[\d.]+ L[\d.]+,[\d.]+", chart.path)
    assert chart.gap_path == ""
    assert [p.title for p in chart.points] == [
        "2026-11-20: mean score 0.667 of 3",
        "2026-11-21: mean score 0.75 of 2",
    ]


def test_mean_score_line_is_dashed_across_buckets_without_scores(shop):
    axis = bucket_starts(NOV20, NOV22, "hour")
    correctness = _trend(
        score_trends(project=_project(), start=NOV20, end=NOV22, bucket="hour"), CORRECTNESS
    )

    chart = mean_score_chart(correctness, axis, "hour")

    assert chart is not None
    # Means 0.5 at 12:00, 1 at 14:00, 0.75 at 09:00 the next day: no two buckets adjacent.
    points = [(p.x, p.y) for p in chart.points]
    assert [p.title for p in chart.points] == [
        "2026-11-20 12:00: mean score 0.5 of 2",
        "2026-11-20 14:00: mean score 1 of 1",
        "2026-11-21 09:00: mean score 0.75 of 2",
    ]
    assert chart.path == " ".join(f"M{x:g},{y:g}" for x, y in points)
    (a, b, c) = points
    assert (
        chart.gap_path
        == f"M{a[0]:g},{a[1]:g} L{b[0]:g},{b[1]:g} M{b[0]:g},{b[1]:g} L{c[0]:g},{c[1]:g}"
    )
    assert a[1] > b[1] and c[1] < a[1]  # higher scores are drawn higher (smaller y)
    # Hourly ticks name the day when it changes.
    assert [t.text for t in chart.x_ticks] == [
        "Nov 20 00:00",
        "07:00",
        "14:00",
        "21:00",
        "Nov 21 04:00",
        "11:00",
        "18:00",
    ]


def test_filters_quote_names_and_labels():
    plain = Trend(name="correctness", human=False, target_kinds=["SPAN"])
    assert label_filter(plain, "ok") == "eval.correctness.label = 'ok'"
    evaluation = Trend(name="eval.correctness", human=False, target_kinds=["SPAN"])
    human = Trend(name='Q&A "tone"', human=True, target_kinds=["SPAN"])
    assert label_filter(evaluation, "it's") == "eval.\"eval.correctness\".label = 'it\\'s'"
    assert label_filter(human, "ok") == 'annotation."Q&A \\"tone\\"".label = \'ok\''
    assert label_filter(evaluation, None) == (
        'eval."eval.correctness" IS NOT NULL and eval."eval.correctness".label IS NULL'
    )


# --- the page ----------------------------------------------------------------------------------


@pytest.fixture
def staff(client, django_user_model):  # type: ignore[no-untyped-def]
    user = django_user_model.objects.create_user(username="ana", password="pw", is_staff=True)
    client.force_login(user)
    return client


def _url(project: str = "shop", **params: str) -> str:
    path = reverse("tasks:trends", kwargs={"project": project})
    return path + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def _section(page_html: str, name: str) -> str:
    match = re.search(
        rf'<section class="card trend"[^>]*data-trend="{re.escape(html.escape(name))}">(.*?)</section>',
        page_html,
        re.S,
    )
    assert match, f"no trend {name}"
    return match.group(1)


def _table(section: str) -> list[list[str]]:
    """The rows of a trend's table fallback: the bucket, then every number, as shown."""
    body = re.search(r"<tbody>(.*?)</tbody>", section, re.S)
    assert body
    return [
        [
            html.unescape(cell.strip())
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]


def _legend(section: str) -> dict[str, str]:
    """Legend label → its link."""
    legend = re.search(
        r'<ul class="chart-legend" aria-label="Labels of [^"]*">(.*?)</ul>', section, re.S
    )
    assert legend
    return {
        html.unescape(text): html.unescape(href)
        for href, text in re.findall(
            r'<a href="([^"]*)"[^>]*><svg.*?</svg>([^<]*)</a>', legend.group(1), re.S
        )
    }


CUSTOM = {"range": "custom", "start": "2026-11-20T00:00", "end": "2026-11-22T00:00"}


def test_login_required(client, shop):
    response = client.get(_url())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_unknown_project_is_404(staff):
    assert staff.get(_url("nope")).status_code == 404


def test_page_shows_counts_means_and_the_tab(staff, shop):
    response = staff.get(_url(**CUSTOM, bucket="day"))

    assert response.status_code == 200
    page = response.content.decode()
    # The tab keeps the page's time range, as every project tab does.
    assert (
        '<a href="/projects/shop/trends/?range=custom&amp;start=2026-11-20T00%3A00&amp;'
        'end=2026-11-22T00%3A00" class="active" aria-current="page">Score trends</a>'
    ) in page
    assert "per day" in page
    section = _section(page, CORRECTNESS)
    assert '<th scope="col" class="num">correct</th>' in section
    assert _table(section) == [
        ["2026-11-20", "2", "1", "0", "3", "3", "0.667"],
        ["2026-11-21", "1", "0", "1", "2", "2", "0.75"],
    ]
    assert "5 results · mean score 0.7</span>" in section
    # Two charts with titles, axis labels and the bars and points behind the numbers.
    assert section.count('<svg class="chart-svg') == 2
    assert "Label mix of correctness: results per day, stacked by label" in section
    assert "Time of the evaluated item (UTC), per day" in section
    assert section.count("<rect x=") == 4
    assert section.count("<circle ") == 2
    assert html.escape(TRICKY) in section  # user data is escaped
    assert TRICKY not in section

    length = _section(page, "length")
    assert _table(length) == [
        ["2026-11-20", "1", "1", "1", "120"],
        ["2026-11-21", "1", "1", "1", "80"],
    ]
    assert "Quality" not in page  # a human annotation


def test_legend_links_filter_the_trace_browser_over_the_same_range(staff, shop):
    page = staff.get(_url(**CUSTOM)).content.decode()
    legend = _legend(_section(page, CORRECTNESS))
    assert list(legend) == ["correct", "incorrect", TRICKY]

    link = urlsplit(legend[TRICKY])
    assert link.path == reverse("tracing:spans", kwargs={"project": "shop"})
    params = parse_qs(link.query)
    assert params == {
        "q": ["eval.correctness.label = 'it\\'s <b>&</b> \"odd\"'"],
        **{key: [value] for key, value in CUSTOM.items()},
    }

    spans = staff.get(legend[TRICKY]).content.decode()
    assert re.findall(r'<tr data-key="([0-9a-f]+)"', spans) == [shop["e"].span_id]
    correct = staff.get(legend["correct"]).content.decode()
    assert set(re.findall(r'<tr data-key="([0-9a-f]+)"', correct)) == {
        shop["a"].span_id,
        shop["c"].span_id,
        shop["d"].span_id,
    }


def test_trace_level_evaluations_link_to_the_traces_tab(staff, shop):
    page = staff.get(_url(**CUSTOM)).content.decode()
    link = urlsplit(_legend(_section(page, "resolution"))["resolved"])
    assert link.path == reverse("tracing:traces", kwargs={"project": "shop"})


def test_preset_range_counts_recent_items_only(staff, db):
    now = timezone.now()
    _evaluate(_llm_span(start=now - timedelta(hours=2)), "correct", 1.0)
    _evaluate(_llm_span(start=now - timedelta(hours=3)), "incorrect", 0.0)
    _evaluate(_llm_span(start=now - timedelta(days=3)), "incorrect", 0.0)

    page = staff.get(_url(range="24h")).content.decode()

    assert "per hour" in page
    rows = _table(_section(page, CORRECTNESS))
    assert [row[1:] for row in rows] == [["0", "1", "1", "1", "0"], ["1", "0", "1", "1", "1"]]
    link = urlsplit(_legend(_section(page, CORRECTNESS))["correct"])
    assert parse_qs(link.query)["range"] == ["24h"]
    assert "start" not in parse_qs(link.query)

    all_time = staff.get(_url()).content.decode()
    assert sum(int(row[-3]) for row in _table(_section(all_time, CORRECTNESS))) == 3


def test_human_toggle_adds_human_annotations(staff, shop):
    page = staff.get(_url(**CUSTOM, bucket="day", human="1")).content.decode()

    section = _section(page, "Quality")
    assert "human annotations" in section
    assert _table(section) == [["2026-11-20", "1", "1", "1", "1"]]
    link = parse_qs(urlsplit(_legend(section)["good"]).query)
    assert link["q"] == ["annotation.Quality.label = 'good'"]
    assert 'name="human" value="1" id="id_human" checked' in page


def test_only_one_evaluation(staff, shop):
    page = staff.get(_url(**CUSTOM, name=CORRECTNESS)).content.decode()
    assert 'data-trend="correctness"' in page
    assert 'data-trend="length"' not in page
    assert "Show every evaluation" in page


def test_coarsened_bucket_is_said(staff, shop):
    page = staff.get(
        _url(range="custom", start="2026-09-01T00:00", end="2026-11-22T00:00", bucket="hour")
    ).content.decode()
    assert "per day." in page
    assert "Per hour would make too many buckets for this range." in page


def test_htmx_swaps_the_results_only(staff, shop):
    response = staff.get(_url(**CUSTOM), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert 'data-trend="correctness"' in body
    assert '<form id="range"' not in body


def test_bad_range_is_said_and_the_page_still_renders(staff, shop):
    response = staff.get(_url(range="custom", start="2026-11-22T00:00", end="2026-11-20T00:00"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "The end must be after the start." in body
    assert 'data-trend="correctness"' in body  # from the start on; the bad end is left out


def test_empty_states(staff, shop):
    Project.objects.create(name="empty")
    page = staff.get(_url("empty")).content.decode()
    assert "No evaluations yet" in page
    try:
        tasks = reverse("tasks:list")
    except NoReverseMatch:
        assert "Run an evaluator on this project" in page
    else:
        assert f'href="{tasks}"' in page

    future = staff.get(
        _url(range="custom", start="2030-01-01T00:00", end="2030-02-01T00:00")
    ).content.decode()
    assert "No evaluations in this time range" in future
    assert "No evaluations yet" not in future
