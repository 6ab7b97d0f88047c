"""The browser fixtures live in tests/browser/fixtures.py, loaded for the whole suite by
tests/conftest.py (the security tests drive Chromium too); ``PASSWORD`` is kept here for the
tests that import it."""

from tests.browser.fixtures import PASSWORD

__all__ = ["PASSWORD"]
