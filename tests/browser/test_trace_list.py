"""The traces list in a real browser (system Chromium, headless) on the demo data."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests import factories
from tests.browser.fixtures import row_keys
from tracing.demo import demo_seed
from tracing.models import Span

pytestmark = pytest.mark.django_db(transaction=True)

DEMO_TRACES = 70


@pytest.fixture
def demo(transactional_db):  # type: ignore[no-untyped-def]
    demo_seed(traces=DEMO_TRACES, project="demo", days=3)
    return "demo"


def _wait_for_rows(page, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Wait until the table shows exactly these rows (a history step may reload the page)."""
    rows = page.locator("#rows tr")
    expect(rows).to_have_count(len(expected))
    for index, key in enumerate(expected):
        expect(rows.nth(index)).to_have_attribute("data-key", key)


def _wait_for_url(page, pattern: str) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_url(re.compile(pattern))
    page.wait_for_load_state("networkidle")


def test_filter_page_share_and_reload(logged_in_page, demo, live_server):
    page = logged_in_page
    page.goto("/")
    page.get_by_role("link", name="demo", exact=True).first.click()
    page.wait_for_url(re.compile(r"/projects/demo/traces/"))
    assert page.get_by_role("link", name="Traces", exact=True).first.is_visible()

    # Filter with the filter language: every row is then an error.
    error_roots = Span.objects.filter(
        project__name="demo", parent_id__isnull=True, status_code="ERROR"
    ).count()
    assert error_roots > 0
    box = page.get_by_label("Filter")
    box.fill("status_code = 'ERROR'")
    box.press("Enter")
    _wait_for_url(page, r"q=status_code")
    assert page.locator("#rows tr").count() == min(error_roots, 50)
    assert set(page.locator("#rows tr td:nth-child(10) .badge:first-child").all_inner_texts()) == {
        "ERROR"
    }

    # Back to all traces, 25 a page: forward, then back with the button and with history.
    box.fill("")
    page.get_by_label("Rows per page").select_option("25")
    _wait_for_url(page, r"size=25")
    expect(page).not_to_have_url(re.compile(r"[?&]q="))
    first_page = row_keys(page)
    assert len(first_page) == 25
    page.get_by_role("link", name="Next →").click()
    _wait_for_url(page, r"after=")
    second_page = row_keys(page)
    assert len(second_page) == 25 and set(second_page).isdisjoint(first_page)
    page.get_by_role("link", name="← Previous").click()
    _wait_for_url(page, r"before=")
    assert row_keys(page) == first_page
    page.go_back()
    _wait_for_url(page, r"after=")
    _wait_for_rows(page, second_page)
    page.go_back()
    _wait_for_rows(page, first_page)
    assert "after=" not in page.url and "before=" not in page.url

    # Share the filtered second page: the same rows and controls in another tab.
    page.get_by_role("link", name="Next →").click()
    _wait_for_url(page, r"after=")
    shared = page.url
    other = page.context.new_page()
    other.goto(shared)
    assert row_keys(other) == second_page
    assert other.get_by_label("Rows per page").input_value() == "25"
    other.reload()
    assert row_keys(other) == second_page


def test_bad_filter_shows_error_in_place_and_keeps_the_table(logged_in_page, demo):
    page = logged_in_page
    page.goto("/projects/demo/traces/?q=span_kind+%3D+%27AGENT%27")
    before = row_keys(page)
    assert before
    box = page.get_by_label("Filter")
    box.fill("latncy_ms > 1000")
    box.press("Enter")
    error = page.locator("#filter-error")
    error.get_by_text("Column 1:").wait_for()
    assert "did you mean 'latency_ms'?" in error.inner_text()
    assert row_keys(page) == before
    assert "latncy" not in page.url  # the URL keeps the last good filter
    box.fill("latency_ms > 0")
    box.press("Enter")
    _wait_for_url(page, r"latency_ms")
    assert error.inner_text().strip() == ""


def test_xss_payload_in_span_content_stays_inert(logged_in_page, demo):
    payload = '<img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script>'
    factories.ingest(
        [
            factories.span_record(
                name=payload,
                input_value=payload,
                output_value=payload,
                start=timezone.now() + timedelta(minutes=1),
                attributes={"llm.model_name": payload},
            )
        ],
        project="demo",
    )
    page = logged_in_page
    for tab in ("traces", "spans"):
        page.goto(f"/projects/demo/{tab}/")
        page.wait_for_load_state("networkidle")
        first_name = page.locator("#rows tr").first.locator("td.name")
        assert first_name.inner_text() == payload
        assert page.evaluate("window.__xss") is None
        assert page.locator("#rows img").count() == 0


def test_live_adds_new_traces_without_touching_selection(logged_in_page, demo):
    page = logged_in_page
    page.goto("/projects/demo/traces/?live=1")
    first = page.locator('#rows input[name="selected"]').first
    first.check()
    selected_key = first.get_attribute("value")
    spans = factories.ingest(
        [factories.span_record(name="arrived-live", start=timezone.now() + timedelta(minutes=5))],
        project="demo",
    )
    page.locator("#rows tr", has_text="arrived-live").wait_for(timeout=15_000)
    assert row_keys(page)[0] == spans[0].trace.trace_id
    box = page.locator(f'#rows input[name="selected"][value="{selected_key}"]')
    assert box.is_checked()
    assert page.locator("[data-selection-count]").inner_text() == "1 selected"
