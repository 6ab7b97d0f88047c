"""The browser fixtures (Chromium through Playwright) for the security tests."""

from tests.browser.conftest import (  # noqa: F401
    browser,
    logged_in_page,
    page,
    user,
)
