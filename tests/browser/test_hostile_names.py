"""A smoke run in Chromium over names with slashes, dots, spaces, unicode and markup: the
project list, a project's traces, a trace whose id and session id have slashes (its span pane
loaded by htmx), and the session page. No request fails, no markup is injected."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

MARKUP = '<b class="pwned">x</b>'
PROJECT = f"team/app ü 🚀 {MARKUP}"
SESSION = "user/42/../x %2F"


def test_pages_with_slashes_and_markup_in_names(logged_in_page):
    page = logged_in_page
    failures: list[str] = []
    page.on("response", lambda r: failures.append(r.url) if r.status >= 500 else None)
    root = factories.span_record(
        trace_id="trace/1/..",
        span_id="span/1",
        name=f"root {MARKUP}",
        kind="AGENT",
        session_id=SESSION,
    )
    child = factories.span_record(
        trace_id="trace/1/..",
        span_id="..",
        parent_id="span/1",
        name=f"llm / {MARKUP}",
        kind="LLM",
        start=factories.BASE_TIME + timedelta(milliseconds=5),
        session_id=SESSION,
        attributes={"user.id": f"user/{MARKUP}"},
    )
    factories.ingest([root, child], project=PROJECT)

    page.goto("/projects/?range=custom&start=2026-11-01T00:00")
    page.get_by_role("link", name=PROJECT).first.click()
    page.wait_for_url("**/projects/team~sapp*/traces/**")
    page.goto(page.url.split("?")[0] + "?range=custom&start=2026-11-01T00:00")
    page.locator("a", has_text=f"root {MARKUP}").first.click()
    page.wait_for_url("**/traces/trace~s1~s..**")
    assert page.locator("h1").inner_text() == f"root {MARKUP}"

    page.locator('#span-tree > li[data-span-id=".."] a.span-link').click()
    page.locator('article.span-pane[data-span-id=".."]').wait_for()
    assert page.locator(".pane-title").inner_text() == f"llm / {MARKUP}"
    assert page.url.endswith("/spans/~d~d/")
    assert f"user/{MARKUP}" in page.locator("article.span-pane .facts").inner_text()

    page.get_by_role("link", name=SESSION[:20]).first.click()
    page.wait_for_url("**/sessions/user~s42~s..~sx%20%252F/")
    assert page.locator("ol.turns > li.turn").count() == 1
    session_url = reverse("detail:session", kwargs={"project": PROJECT, "session_id": SESSION})
    assert page.url.endswith(session_url)

    assert page.evaluate("document.querySelectorAll('b.pwned').length") == 0
    assert failures == []
