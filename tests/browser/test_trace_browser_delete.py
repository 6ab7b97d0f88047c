"""Deleting the whole filtered result, and tabs that keep the time range, in a real browser."""

from __future__ import annotations

import re

import pytest

from tracing.demo import demo_seed
from tracing.models import Span, Trace

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(transactional_db):  # type: ignore[no-untyped-def]
    demo_seed(traces=40, project="demo", days=3)
    return "demo"


def test_range_survives_tab_switches_and_delete_all_matching_removes_what_it_stated(
    logged_in_page, demo
):
    page = logged_in_page
    page.goto("/projects/demo/traces/")
    page.locator("#id_range").select_option("7d")
    page.wait_for_url(re.compile(r"range=7d"))
    page.wait_for_load_state("networkidle")

    # The tabs were swapped with the new range: Spans and back to Traces keep it.
    page.get_by_role("link", name="Spans", exact=True).click()
    page.wait_for_url(re.compile(r"/spans/\?range=7d$"))
    assert page.locator("#id_range").input_value() == "7d"
    page.get_by_role("link", name="Traces", exact=True).click()
    page.wait_for_url(re.compile(r"/traces/\?range=7d$"))

    box = page.get_by_label("Filter")
    box.fill("status_code = 'ERROR'")
    box.press("Enter")
    page.wait_for_url(re.compile(r"q=status_code"))
    page.wait_for_load_state("networkidle")
    matching = Span.objects.filter(
        project__name="demo", parent_id__isnull=True, status_code="ERROR"
    )
    trace_pks = set(matching.values_list("trace_id", flat=True))
    assert trace_pks
    spans_of_them = Span.objects.filter(trace_id__in=trace_pks).count()
    total = Span.objects.count()

    page.locator("summary", has_text="All matching").click()
    page.get_by_role("link", name="Delete all matching…").click()
    page.wait_for_load_state()
    heading = page.get_by_role("heading", level=1).inner_text()
    rows = len(trace_pks)
    assert heading == f"Delete all {rows} matching trace{'s' if rows != 1 else ''}?"
    assert page.locator("[data-delete-spans]").inner_text().startswith(str(spans_of_them))
    assert Span.objects.count() == total  # nothing yet

    page.get_by_role("button", name=re.compile(r"^Delete \d+ spans?$")).click()
    page.wait_for_url(re.compile(r"/projects/demo/traces/\?.*q=status_code"))
    assert page.get_by_text(f"({spans_of_them} spans)").is_visible()
    assert Span.objects.count() == total - spans_of_them
    assert not Trace.objects.filter(pk__in=trace_pks).exists()
    assert page.locator("#rows tr").count() == 0
