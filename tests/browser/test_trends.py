"""The score-trends tab in a real browser (system Chromium, headless): charts, legend, the
bucket select, and a legend link into the filtered trace list."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def evaluated(transactional_db):  # type: ignore[no-untyped-def]
    """Six evaluated LLM spans, three yesterday and three early today (UTC): 4 correct, 2
    incorrect. Returns span id → label."""
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    results = [
        (midnight - timedelta(hours=15), "correct", 1.0),
        (midnight - timedelta(hours=14), "incorrect", 0.0),
        (midnight - timedelta(hours=13), "correct", 1.0),
        (midnight + timedelta(minutes=10), "correct", 1.0),
        (midnight + timedelta(minutes=20), "correct", 1.0),
        (midnight + timedelta(minutes=40), "incorrect", 0.0),
    ]
    labels: dict[str, str] = {}
    items = []
    for start, label, score in results:
        spans = factories.trace(project="shop", start=start)
        llm = next(span for span in spans if span.span_kind == "LLM")
        labels[llm.span_id] = label
        items.append(
            AnnotationInput(
                target_kind="SPAN",
                target_id=llm.span_id,
                name="correctness",
                annotator_kind="LLM",
                label=label,
                score=score,
            )
        )
    annotations_upsert(items=items)
    return labels


def _table(section) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """The table fallback: bucket → correct, incorrect, total, scored, mean score."""
    section.get_by_text("Numbers behind the charts").click()
    return {
        row.locator("th").inner_text(): row.locator("td").all_inner_texts()
        for row in section.locator("details.numbers tbody tr").all()
    }


def test_trends_tab_charts_and_legend_link(logged_in_page, evaluated):
    page = logged_in_page
    page.goto("/projects/shop/traces/")
    page.get_by_role("link", name="Score trends").click()
    page.wait_for_url(re.compile(r"/projects/shop/trends/$"))
    assert page.locator('section.trend[data-trend="correctness"]').is_visible()

    # Last 7 days: per day, automatically.
    page.goto("/projects/shop/trends/?range=7d")
    section = page.locator('section.trend[data-trend="correctness"]')
    assert section.get_by_role("heading", name="correctness").is_visible()
    mix = section.get_by_role("img", name=re.compile(r"^Label mix of correctness"))
    assert mix.is_visible()
    assert mix.locator(".bars rect").count() == 4  # two days, two labels each
    score = section.get_by_role("img", name=re.compile(r"^Mean score of correctness"))
    assert score.is_visible()
    assert score.locator("circle").count() == 2
    legend = section.get_by_role("list", name="Labels of correctness")
    assert [" ".join(text.split()) for text in legend.locator("li").all_inner_texts()] == [
        "correct 4",
        "incorrect 2",
    ]
    today = timezone.now().date()
    yesterday = today - timedelta(days=1)
    assert _table(section) == {
        f"{yesterday:%Y-%m-%d}": ["2", "1", "3", "3", "0.667"],
        f"{today:%Y-%m-%d}": ["2", "1", "3", "3", "0.667"],
    }

    # Per hour: the select swaps the charts and keeps the range in the URL.
    page.get_by_label("Buckets").select_option("hour")
    page.wait_for_url(re.compile(r"range=7d.*bucket=hour|bucket=hour.*range=7d"))
    section = page.locator('section.trend[data-trend="correctness"]')
    page.locator("p.window", has_text="per hour").wait_for()
    hours = _table(section)
    assert len(hours) == 4  # yesterday 09:00, 10:00, 11:00; today 00:00
    assert hours[f"{today:%Y-%m-%d} 00:00"] == ["2", "1", "3", "3", "0.667"]
    assert hours[f"{yesterday:%Y-%m-%d} 10:00"] == ["0", "1", "1", "1", "0"]

    # The legend's label opens the spans list filtered to it, over the same range.
    section.get_by_role("link", name="incorrect").click()
    page.wait_for_url(re.compile(r"/projects/shop/spans/\?"))
    query = parse_qs(urlsplit(page.url).query)
    assert query["q"] == ["eval.correctness.label = 'incorrect'"]
    assert query["range"] == ["7d"]
    assert page.get_by_label("Filter").input_value() == query["q"][0]
    keys = page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.key)")
    assert sorted(keys) == sorted(
        span_id for span_id, label in evaluated.items() if label == "incorrect"
    )
