"""Monitors in a real browser: create a monitor through the form, watching the "would have
fired" preview follow the fields (htmx), then its page."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from evalhub.monitors.models import Monitor
from tests import factories
from tests.evalhub.monitors.helpers import labelled_spans, preview_window_start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def judged(transactional_db):  # type: ignore[no-untyped-def]
    """Judged LLM spans over the last day: 10 % incorrect, then two 6-hour windows at 40 %."""
    factories.project("shop")
    now = timezone.now()
    for index, bad in enumerate([4, 16, 16, 4]):
        labelled_spans(
            project="shop", start=preview_window_start(now, 3 - index), total=40,
            incorrect=bad, seconds=600,
        )  # fmt: skip


def test_create_a_monitor_and_see_when_it_would_have_fired(logged_in_page, judged):
    page = logged_in_page
    errors: list[str] = []
    # htmx logs the previews it abandons for newer ones (hx-sync): only policy refusals count.
    page.on("console", lambda m: errors.append(m.text) if "Refused" in m.text else None)
    page.goto("/monitors/")
    page.get_by_role("link", name="New monitor").click()
    page.wait_for_url(re.compile(r"/monitors/new/$"))
    form = page.locator("#monitor-form")
    preview = page.get_by_role("region", name="Would have fired")
    expect(preview).to_contain_text("Fill in the form")

    form.get_by_label("Project").select_option("shop")
    form.get_by_label("Name", exact=True).fill("correctness drop")
    form.get_by_label("Metric").select_option("eval_label_rate")
    form.get_by_label("Evaluation or annotation name").fill("correctness")
    form.get_by_label("Label counted").fill("incorrect")
    form.get_by_label("Filter").fill("span_kind = 'LLM'")
    form.get_by_label("Window", exact=True).fill("6h")
    form.get_by_label("Threshold", exact=True).fill("0.25")
    form.get_by_label("For consecutive windows").fill("2")
    form.get_by_label("Minimum results").fill("10")

    # The preview computes 120 windows: give it time on a busy machine.
    expect(preview).to_contain_text("Would have fired 1 time", timeout=30_000)
    chart = preview.get_by_role("img", name="preview")
    expect(chart.locator("circle.chart-fired")).to_have_count(1)
    expect(chart.locator("line.chart-threshold")).to_have_count(1)
    expect(chart.locator("rect.chart-firing")).to_have_count(2)

    # Three windows in a row: it would not have fired.
    form.get_by_label("For consecutive windows").fill("3")
    expect(preview).to_contain_text("Would not have fired", timeout=30_000)
    # A bad threshold is named in the preview, then by the form on submit.
    form.get_by_label("Threshold", exact=True).fill("4")
    expect(preview).to_contain_text("between 0 and 1", timeout=30_000)
    form.get_by_role("button", name="Create monitor").click()
    expect(page.locator(".field-threshold .form-error")).to_contain_text("between 0 and 1")
    assert not Monitor.objects.exists()

    page.locator("#monitor-form").get_by_label("Threshold", exact=True).fill("0.25")
    page.locator("#monitor-form").get_by_role("button", name="Create monitor").click()
    page.wait_for_url(re.compile(r"/monitors/\d+/$"))
    expect(page.get_by_role("heading", name="correctness drop")).to_be_visible()
    expect(page.locator("#monitor-state")).to_have_text("OK")
    monitor = Monitor.objects.get()
    assert (monitor.window_seconds, monitor.threshold, monitor.consecutive) == (21600, 0.25, 3)
    assert errors == []  # no inline script or style refused by the CSP
