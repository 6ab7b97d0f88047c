"""Browser fixtures: Playwright driving the system Chromium, headless, against a live server.

Chromium comes from the system (``/usr/bin/chromium``, or ``CHROMIUM_PATH``); Playwright's own
browser download is never used. Without Chromium these tests are skipped locally and fail in CI
(see tests/conftest.py).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator

import pytest

from tests.evalhub.fake_openai import VALID_KEY, fake_openai  # noqa: F401

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a thread
# with a running loop unless told that this is intended (the loop never runs Django code here).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PASSWORD = "correct horse battery staple"


def chromium_path() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    path = chromium_path()
    if path is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser, live_server) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def user(transactional_db, django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user(
        username="reviewer", password=PASSWORD, is_staff=True, is_superuser=True
    )


@pytest.fixture
def logged_in_page(page, user):  # type: ignore[no-untyped-def]
    """A page whose browser is logged in through the real login form."""
    page.goto("/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    return page


@pytest.fixture
def provider(fake_openai):  # type: ignore[no-untyped-def]  # noqa: F811
    """The default LLM provider: the fake OpenAI-compatible judge the test started."""
    from evalhub.providers.services import provider_create

    return provider_create(
        name="fake judge",
        kind="compatible",
        base_url=fake_openai.base_url,
        api_key=VALID_KEY,
        default_model="judge-small",
        requests_per_minute=0,
        timeout_seconds=5,
        is_default=True,
    )


def label_form_ready(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until the labeling page's keys work: queue.js marks the form once its handlers
    are on (a key pressed before the deferred script runs would be lost)."""
    page.locator("#label-form[data-keys=ready]").wait_for()


def row_keys(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The keys of the rows a list page shows (``#rows tr``), in order."""
    return page.locator("#rows tr").evaluate_all("rows => rows.map(r => r.dataset.key)")


def rows_filtered(page, tab: str, expression: str) -> set[str]:  # type: ignore[no-untyped-def]
    """The keys of the default project's ``tab`` rows (traces, spans, sessions) that the
    filter ``expression``, typed into the page's filter box, keeps."""
    page.goto(f"/projects/default/{tab}/")
    page.get_by_label("Filter").fill(expression)
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"\?.*q="))
    page.locator("p.expression").wait_for()
    return set(row_keys(page))


def trace_queue_from_filter(  # type: ignore[no-untyped-def]
    page, *, name: str, config: str, expression: str, added: int
) -> None:
    """Create the Traces queue ``name`` labelled with ``config`` on the queues page, then add
    the traces ``expression`` finds (``added`` of them) and start labeling."""
    page.goto("/queues/")
    page.get_by_role("link", name="New queue").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Items are").select_option("TRACE")
    page.get_by_label(config).check()
    page.get_by_role("button", name="Create queue").click()
    page.get_by_role("heading", name="Add traces from a filter").wait_for()
    page.get_by_label("Filter").fill(expression)
    page.get_by_role("button", name="Add to queue").click()
    page.get_by_text(f"Added {added} traces to {name}.").wait_for()
    page.get_by_role("link", name="Start labeling").click()
