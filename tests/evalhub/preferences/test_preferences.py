"""Times in the reader's zone: the per-person setting, the browser's zone, and links that
keep meaning the same instants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import RequestFactory

from evalhub.preferences.middleware import BROWSER_COOKIE, request_time_zone
from evalhub.preferences.models import UserPreferences
from evalhub.preferences.services import PreferencesInvalid, user_time_zone_set
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, django_user_model):
    user = django_user_model.objects.create_user(username="lead", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def _request(signed_in, query: str = "", cookie: str | None = None):  # type: ignore[no-untyped-def]
    request = RequestFactory().get(f"/projects/default/traces/{query}")
    request.user = signed_in
    if cookie:
        request.COOKIES[BROWSER_COOKIE] = cookie
    return request


def test_the_zone_of_a_page(signed_in):
    assert request_time_zone(_request(signed_in)) == ("UTC", "default")
    assert request_time_zone(_request(signed_in, cookie="Asia/Tokyo")) == ("Asia/Tokyo", "browser")
    assert request_time_zone(_request(signed_in, cookie="Mars/Olympus")) == ("UTC", "default")
    user_time_zone_set(user=signed_in, time_zone="America/New_York")
    assert request_time_zone(_request(signed_in, cookie="Asia/Tokyo")) == (
        "America/New_York",
        "setting",
    )
    # A link with a custom range says its zone; one without (made before zones) means UTC.
    linked = _request(signed_in, "?start=2026-11-20T10:00&tz=Europe/Paris", cookie="Asia/Tokyo")
    assert request_time_zone(linked) == ("Europe/Paris", "link")
    assert request_time_zone(_request(signed_in, "?start=2026-11-20T10:00")) == ("UTC", "link")


def test_an_unknown_zone_is_refused_and_nothing_is_written(signed_in):
    for bad in ("Mars/Olympus", "../../etc/passwd", "x" * 500, "Europe/Paris\x00"):
        with pytest.raises(PreferencesInvalid):
            user_time_zone_set(user=signed_in, time_zone=bad)
    assert not UserPreferences.objects.exists()


def test_the_preferences_page_saves_the_zone_and_refuses_a_bad_one(client, signed_in):
    client.cookies[BROWSER_COOKIE] = "Asia/Tokyo"
    page = client.get("/settings/preferences/")
    assert page.status_code == 200
    assert "Your browser&#x27;s (Asia/Tokyo)" in page.content.decode()
    bad = client.post("/settings/preferences/", {"time_zone": "Mars/Olympus"})
    assert bad.status_code == 400
    assert not UserPreferences.objects.exists()
    saved = client.post("/settings/preferences/", {"time_zone": "Europe/Paris"})
    assert saved.status_code == 302
    assert UserPreferences.objects.get(user=signed_in).time_zone == "Europe/Paris"
    client.post("/settings/preferences/", {"time_zone": ""})  # back to the browser's
    assert UserPreferences.objects.get(user=signed_in).time_zone == ""


def test_the_trace_list_shows_times_in_the_zone_with_utc_on_hover(client, signed_in):
    start = datetime(2026, 11, 20, 12, 0, 5, tzinfo=UTC)
    factories.trace(start=start)
    user_time_zone_set(user=signed_in, time_zone="Europe/Paris")
    html = client.get("/projects/default/traces/?range=all").content.decode()
    assert 'title="2026-11-20 12:00:05 UTC">2026-11-20 13:00:05</time>' in html
    assert "(Europe/Paris)" in html  # the time-range controls name the zone


def test_a_custom_range_means_the_same_instants_to_everyone(client, signed_in):
    factories.trace(start=datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
    user_time_zone_set(user=signed_in, time_zone="Asia/Tokyo")
    # 10:00 to 11:00 in Paris is 09:00 to 10:00 UTC: the trace is in it, whoever opens the link.
    paris = client.get(
        "/projects/default/traces/?range=custom&start=2026-11-20T10:00&end=2026-11-20T11:00"
        "&tz=Europe/Paris"
    ).content.decode()
    assert "1 row on this page" in paris
    # The same times without a zone are UTC (as links were before zones): no trace.
    utc = client.get(
        "/projects/default/traces/?range=custom&start=2026-11-20T10:00&end=2026-11-20T11:00"
    ).content.decode()
    assert "1 row on this page" not in utc


def test_the_rest_api_is_not_affected_by_the_browser_zone(client, signed_in):
    factories.trace(start=datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
    user_time_zone_set(user=signed_in, time_zone="Asia/Tokyo")
    body = client.get("/v1/projects/default/spans").json()
    assert body["data"][0]["start_time"].startswith("2026-11-20T09:")
