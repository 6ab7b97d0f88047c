"""Human annotation in Chromium: a rubric made in Settings, enabled for a project, used in one
click in the span pane, changed, seen on the Annotations tab and used to filter the traces."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from annotations.models import Annotation, AnnotationConfig
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def _pressed(scope) -> list[str]:  # type: ignore[no-untyped-def]
    return scope.locator('button.choice[aria-pressed="true"]').all_inner_texts()


def test_rubric_to_annotation_to_filter(logged_in_page, user):  # type: ignore[no-untyped-def]
    page = logged_in_page
    annotated, *_ = factories.trace(project="shop", input_value="How do refunds work?")
    other, *_ = factories.trace(project="shop", input_value="Where is my parcel?")

    # Settings → Annotation configs → a new categorical config with three values.
    page.goto("/")
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Annotation configs").click()
    page.wait_for_url(re.compile(r"/settings/annotation-configs/$"))
    assert page.get_by_text("No annotation configs yet").is_visible()
    page.get_by_role("link", name="New annotation config").first.click()
    page.get_by_label("Name").fill("quality")
    assert page.get_by_label(re.compile("Categorical: pick")).is_checked()
    assert not page.get_by_label("Lower bound").is_visible()  # continuous only
    page.get_by_label("Label 1").fill("good")
    page.get_by_label("Score 1").fill("1")
    page.get_by_label("Label 2").fill("bad")
    page.get_by_label("Score 2").fill("0")
    page.get_by_role("button", name="Add a value").click()
    page.get_by_label("Label 3").fill("unsure")
    page.get_by_label("Optimization direction").select_option("MAXIMIZE")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/settings/annotation-configs/$"))
    assert page.get_by_text("Saved the annotation config quality.").is_visible()
    row = page.locator('tr[data-config="quality"]')
    assert row.get_by_text("no project").is_visible()

    # A bad edit is a form error; then enable the config for the project.
    row.get_by_role("link", name="quality").click()
    page.get_by_label("Label 3").fill("good")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_text("Value 3 label: 'good' appears more than once.").is_visible()
    page.get_by_label("Label 3").fill("unsure")
    page.get_by_label("shop").check()
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/settings/annotation-configs/$"))
    assert row.get_by_role("link", name="shop").is_visible()
    config = AnnotationConfig.objects.get(name="quality")
    assert [v["label"] for v in config.values] == ["good", "bad", "unsure"]
    assert [p.name for p in config.projects.all()] == ["shop"]

    # The trace page: the root span's pane has the form; one click annotates.
    page.goto(f"/projects/shop/traces/{annotated.trace.trace_id}/")
    form = page.locator("#annotate-span")
    assert form.get_by_role("heading", name="Annotate this span").is_visible()
    assert _pressed(form) == []
    form.get_by_role("button", name="good", exact=True).click()
    form.locator('button.choice[aria-pressed="true"]').wait_for()
    assert _pressed(form) == ["good"]
    assert form.get_by_role("status").inner_text() == "Saved."
    stored = Annotation.objects.get()
    assert (stored.span_id, stored.label, stored.score) == (annotated.pk, "good", 1.0)
    assert (stored.identifier, stored.user_id, stored.source) == ("reviewer", user.pk, "APP")

    # Change it, with a note.
    form.get_by_text("Notes", exact=True).click()
    form.get_by_label("quality notes").fill("misses the 30-day limit")
    form.get_by_role("button", name="bad", exact=True).click()
    expect(page.locator("#annotate-span button.choice[aria-pressed=true]")).to_have_text(["bad"])
    stored = Annotation.objects.get()
    assert (stored.label, stored.score, stored.explanation) == (
        "bad",
        0.0,
        "misses the 30-day limit",
    )

    # Another span of the tree (swapped in by htmx) has its own form that works the same way.
    page.locator("#span-tree > li.row").nth(1).click()
    page.wait_for_url(re.compile(r"/spans/"))
    page.locator(
        f'article.span-pane[data-span-id]:not([data-span-id="{annotated.span_id}"])'
    ).wait_for()
    page.locator("#annotate-span").get_by_role("button", name="unsure").click()
    page.locator('#annotate-span button.choice[aria-pressed="true"]').wait_for()
    assert Annotation.objects.filter(label="unsure").exclude(span=annotated).count() == 1

    # The Annotations tab lists both, and filters them.
    page.goto("/projects/shop/traces/")
    page.get_by_role("link", name="Annotations", exact=True).click()
    page.wait_for_url(re.compile(r"/projects/shop/annotations/$"))
    table = page.locator("table.annotation-table tbody")
    assert table.locator("tr").count() == 2
    first = table.locator("tr").filter(has_text="misses the 30-day limit")
    assert first.get_by_text("bad", exact=True).is_visible()
    assert first.get_by_text("reviewer").is_visible() and first.get_by_text("HUMAN").is_visible()
    page.get_by_label("Search").fill("30-day")
    page.wait_for_url(re.compile(r"q=30-day"))
    expect(page.locator("table.annotation-table tbody tr")).to_have_count(1)
    first.get_by_role("link").click()  # to the annotated span
    page.wait_for_url(re.compile(rf"/spans/{annotated.span_id}/$"))
    assert _pressed(page.locator("#annotate-span")) == ["bad"]

    # The traces list filtered by the annotation shows the annotated trace only.
    page.goto("/projects/shop/traces/?range=all")
    assert page.locator("#rows tr").count() == 2
    box = page.get_by_label("Filter")
    box.fill("annotation.quality.label = 'bad'")
    box.press("Enter")
    page.wait_for_url(re.compile(r"q=annotation"))
    expect(page.locator("#rows tr")).to_have_count(1)
    keys = page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.key)")
    assert keys == [annotated.trace.trace_id]
    assert other.trace.trace_id not in keys
    box.fill("annotation.quality.label = 'good'")
    box.press("Enter")
    page.wait_for_url(re.compile(r"good"))
    assert page.get_by_text("No traces match").is_visible()
