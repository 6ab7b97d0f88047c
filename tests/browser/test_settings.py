"""Settings → API keys and Users and roles in Chromium: a key made with a scope and shown once,
revoked after a confirmation; a person invited with a one-time link."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from evalhub.identity.models import ApiKey
from evalhub.identity.selectors import api_key_authenticate


def test_create_a_key_see_it_once_and_revoke_it(logged_in_page):
    page = logged_in_page
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="API keys").click()
    expect(page).to_have_url(re.compile(r"/settings/api-keys/$"))
    expect(page.get_by_label("Scope")).to_have_value("ingest")

    page.get_by_label("Name").fill("support-bot prod")
    page.get_by_label("Acts for").select_option(label="— no person (a service) —")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key")
    expect(secret).to_be_visible()
    raw = secret.inner_text()
    key = api_key_authenticate(raw)
    assert key is not None and key.scope == "ingest" and key.user is None
    row = page.locator(f'tr[data-key-id="{key.pk}"]')
    expect(row).to_contain_text("support-bot prod")
    expect(row).to_contain_text("active")

    page.goto("/settings/api-keys/")  # shown once: a new visit has only the prefix
    expect(page.locator("#new-key")).to_have_count(0)
    expect(page.locator("body")).not_to_contain_text(raw)

    page.once("dialog", lambda dialog: dialog.dismiss())  # "Revoke …?" — no
    page.locator(f'tr[data-key-id="{key.pk}"]').get_by_role("button", name="Revoke").click()
    expect(page.locator(f'tr[data-key-id="{key.pk}"]')).to_contain_text("active")
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f'tr[data-key-id="{key.pk}"]').get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("Revoked the key support-bot prod")).to_be_visible()
    expect(page.locator(f'tr[data-key-id="{key.pk}"]')).to_contain_text("revoked")
    assert api_key_authenticate(raw) is None


def test_invite_a_person_with_a_one_time_link(logged_in_page, browser, live_server):
    page = logged_in_page
    page.goto("/settings/users/")
    page.get_by_label("Username").fill("ann")
    page.get_by_label("Role").select_option("annotator")
    page.get_by_role("button", name="Add").click()
    link = page.locator("#set-password-link").inner_text()
    assert link.startswith(live_server.url + "/set-password/")

    other = browser.new_context(base_url=live_server.url)
    try:
        visitor = other.new_page()
        visitor.goto(link)
        visitor.get_by_label("New password").fill("a long enough secret")
        visitor.get_by_label("Again").fill("a long enough secret")
        visitor.get_by_role("button", name="Set password").click()
        expect(visitor.get_by_text("Your password is set")).to_be_visible()
        visitor.get_by_label("Username").fill("ann")
        visitor.get_by_label("Password").fill("a long enough secret")
        visitor.get_by_role("button", name="Log in").click()
        # An annotator lands on their queues, and the navigation has nothing else.
        expect(visitor).to_have_url(re.compile(r"/queues/$"))
        expect(visitor.get_by_role("navigation", name="Main")).not_to_contain_text("Settings")
    finally:
        other.close()
