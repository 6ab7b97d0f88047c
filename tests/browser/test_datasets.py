"""Datasets in a real browser: rows selected in the trace browser become a new dataset, more are
added by filter, and the dataset downloads as a file holding those examples."""

from __future__ import annotations

import csv
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from annotations.datasets.models import Dataset
from annotations.datasets.services import dataset_create
from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop(transactional_db):  # type: ignore[no-untyped-def]
    now = timezone.now()
    traces = {
        "refund": factories.trace(
            project="shop",
            start=now - timedelta(minutes=30),
            input_value="Can I get a refund?",
            output_value="Yes, within 30 days.",
            metadata={"reference": "Refunds within 30 days."},
        ),
        "shipping": factories.trace(
            project="shop",
            start=now - timedelta(minutes=20),
            input_value="How long is shipping?",
            output_value="3-5 days.",
        ),
        "broken": factories.trace(
            project="shop",
            start=now - timedelta(minutes=10),
            status_code="ERROR",
            input_value="Where is my order?",
            output_value="",
        ),
    }
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="TRACE",
                target_id=traces["refund"][0].trace.trace_id,
                name="helpful",
                label="yes",
                score=1.0,
            )
        ]
    )
    dataset_create(name="an older dataset")
    return traces


def _row_box(page, trace_id: str):  # type: ignore[no-untyped-def]
    return page.locator(f'#rows input[name="selected"][value="{trace_id}"]')


def test_select_rows_export_to_a_new_dataset_then_download_it(logged_in_page, shop, tmp_path):
    page = logged_in_page
    refund, shipping, broken = shop["refund"][0], shop["shipping"][0], shop["broken"][0]
    page.goto("/projects/shop/traces/")
    page.wait_for_load_state("networkidle")

    # Select two traces; the panel's buttons follow the selection.
    panel = page.locator("details.dataset-add")
    add_selected = panel.locator("button", has_text="Add selected")  # hidden until opened
    assert add_selected.is_disabled()
    _row_box(page, refund.trace.trace_id).check()
    _row_box(page, shipping.trace.trace_id).check()
    assert page.locator("[data-selection-count]").inner_text() == "2 selected"

    # Opening the panel loads the existing datasets to choose from; type a new name instead.
    panel.get_by_text("Add to dataset…").click()
    expect(page.locator('#dataset-names option[value="an older dataset"]')).to_have_count(1)
    panel.get_by_label("Dataset").fill("support golden set")
    add_selected.click()

    page.wait_for_url(re.compile(r"/datasets/\d+/$"))
    assert page.get_by_text("Created the dataset support golden set with 2 examples.").is_visible()
    assert page.locator("h1").inner_text().startswith("support golden set")
    rows = page.locator("table.examples tbody tr")
    assert rows.count() == 2
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.spanId)") == [
        shipping.span_id,
        refund.span_id,
    ]

    # Add every trace matching a filter to the same dataset, chosen by its name.
    page.goto("/projects/shop/traces/")
    box = page.get_by_label("Filter")
    box.fill("status_code = 'ERROR'")
    box.press("Enter")
    page.wait_for_url(re.compile(r"q=status_code"))
    page.wait_for_load_state("networkidle")
    assert page.locator("#rows tr").count() == 1
    panel = page.locator("details.dataset-add")
    panel.get_by_text("Add to dataset…").click()
    panel.get_by_label("Dataset").fill("support golden set")
    panel.get_by_role("button", name="Add all traces matching").click()
    page.wait_for_url(re.compile(r"/datasets/\d+/$"))
    assert page.get_by_text("Added 1 example to support golden set.").is_visible()

    # Open it from the datasets list and download it.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Datasets").click()
    page.wait_for_url(re.compile(r"/datasets/$"))
    listed = page.locator("table.data tr", has_text="support golden set")
    assert listed.locator("td.num").inner_text() == "3"
    listed.get_by_role("link", name="support golden set").click()
    page.wait_for_url(re.compile(r"/datasets/\d+/$"))
    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV", exact=True).click()
    download = download_info.value
    assert re.fullmatch(r"support_golden_set-\d{8}-\d{6}\.csv", download.suggested_filename)
    saved = Path(tmp_path) / download.suggested_filename
    download.save_as(saved)

    with saved.open(newline="", encoding="utf-8") as handle:
        examples = list(csv.DictReader(handle))
    assert [e["span_id"] for e in examples] == [shipping.span_id, refund.span_id, broken.span_id]
    by_span = {e["span_id"]: e for e in examples}
    first = by_span[refund.span_id]
    assert (first["input"], first["output"]) == ("Can I get a refund?", "Yes, within 30 days.")
    assert first["expected_output"] == "Refunds within 30 days."
    assert json.loads(first["labels"]) == {
        "helpful": {"label": "yes", "score": 1.0, "explanation": None}
    }
    assert first["trace_id"] == refund.trace.trace_id and first["project"] == "shop"
    assert by_span[broken.span_id]["input"] == "Where is my order?"
    assert Dataset.objects.get(name="support golden set").examples.count() == 3
