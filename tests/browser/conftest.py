"""The browser fixtures live in tests/browser/fixtures.py, loaded for the whole suite by
tests/conftest.py (the security tests drive Chromium too)."""
