"""The pages: Monitors list with state and sparkline, the create form with its errors and the
"would have fired" preview, the detail with its history, Settings → Notification channels
(admins), a project's Automations, and firing monitors on the project's pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from evalhub.monitors.checks import monitor_check
from evalhub.monitors.models import Monitor, NotificationChannel
from evalhub.monitors.services import MonitorInput, monitor_create
from tests import factories
from tests.evalhub.monitors.helpers import labelled_spans, preview_window_start
from tests.factories import BASE_TIME

pytestmark = pytest.mark.django_db

FORM = {
    "project": "default",
    "name": "correctness drop",
    "metric": "eval_label_rate",
    "result_name": "correctness",
    "label": "incorrect",
    "filter": "span_kind = 'LLM'",
    "window": "1h",
    "frequency": "5m",
    "delay": "1m",
    "condition": "threshold",
    "direction": "above",
    "threshold": "0.25",
    "consecutive": "2",
    "baseline_offset": "86400",
    "significance": "0.05",
    "min_effect": "0.05",
    "min_samples": "10",
    "segment_field": "",
    "enabled": "on",
}


@pytest.fixture
def lead(django_user_model) -> Client:
    browser = Client()
    browser.force_login(django_user_model.objects.create_user("lead", is_staff=True))
    factories.project("default")
    return browser


@pytest.fixture
def member(django_user_model) -> Client:
    browser = Client()
    browser.force_login(django_user_model.objects.create_user("mia"))
    factories.project("default")
    return browser


def _firing_monitor() -> Monitor:
    for index in range(2):
        labelled_spans(start=BASE_TIME + timedelta(seconds=300 * index + 1), total=40, incorrect=16)
    monitor = monitor_create(
        project=factories.project(),
        data=MonitorInput(
            name="drop", metric="eval_label_rate", result_name="correctness", label="incorrect",
            condition="threshold", threshold=0.25, consecutive=2, window_seconds=300,
            frequency_seconds=300, delay_seconds=0, min_samples=10,
        ),
    )  # fmt: skip
    Monitor.objects.filter(pk=monitor.pk).update(created_at=BASE_TIME)
    monitor_check(monitor_id=monitor.pk, now=BASE_TIME + timedelta(seconds=600))
    monitor.refresh_from_db()
    return monitor


def test_create_a_monitor_through_the_form(lead):
    response = lead.post("/monitors/new/", FORM)
    monitor = Monitor.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/monitors/{monitor.pk}/"
    assert (monitor.window_seconds, monitor.frequency_seconds, monitor.delay_seconds) == (
        3600, 300, 60
    )  # fmt: skip
    page = lead.get(f"/monitors/{monitor.pk}/edit/").content.decode()
    assert 'value="1h"' in page and 'value="5m"' in page


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"filter": "evl.correctness.label = 'x'"}, "filter", "evl"),
        ({"window": ""}, "window", "required"),
        ({"window": "0"}, "window", "must not be empty"),
        ({"window": "2m"}, "window", "between 300"),
        ({"window": "soon"}, "window", "a duration"),
        ({"threshold": "1.5"}, "threshold", "between 0 and 1"),
        ({"segment_field": "metadata"}, "segment_field", "needs a key"),
        ({"segment_field": "eval.correctness.label"}, "segment_field", "cannot segment"),
    ],
)
def test_bad_configuration_is_a_form_error(lead, changes, field, words):
    response = lead.post("/monitors/new/", {**FORM, **changes})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and words in " ".join(errors[field])
    assert not Monitor.objects.exists()


def test_the_preview_partial(lead):
    now = timezone.now()
    for index, bad in enumerate([16, 16, 4]):
        labelled_spans(start=preview_window_start(now, 4 - index), total=40, incorrect=bad,
                       seconds=60)  # fmt: skip
    response = lead.get(
        "/monitors/preview/", {**FORM, "window": "6h"}, headers={"HX-Request": "true"}
    )
    page = response.content.decode()
    assert response.status_code == 200 and "<html" not in page
    assert "Would have fired <strong>1</strong> time" in page and "<svg" in page
    bad = lead.get("/monitors/preview/", {**FORM, "threshold": "9"}).content.decode()
    assert "between 0 and 1" in bad


def test_list_detail_and_the_project_page_show_a_firing_monitor(lead):
    monitor = _firing_monitor()
    listing = lead.get("/monitors/").content.decode()
    assert "drop" in listing and "Firing" in listing and 'class="sparkline"' in listing
    detail = lead.get(f"/monitors/{monitor.pk}/").content.decode()
    assert "monitor-chart" in detail and "[FIRING]" in detail and "40.0 %" in detail
    project_page = lead.get("/projects/default/traces/").content.decode()
    assert "Firing monitors" in project_page and f"/monitors/{monitor.pk}/" in project_page


def test_mute_from_the_page(lead):
    monitor = _firing_monitor()
    response = lead.post(f"/monitors/{monitor.pk}/mute/", {"mute_hours": "2"})
    assert response.status_code == 302
    monitor.refresh_from_db()
    assert monitor.is_muted


def test_channels_are_for_admins(lead, member):
    assert member.get("/settings/channels/").status_code == 403
    response = lead.post(
        "/settings/channels/", {"name": "ops", "kind": "webhook", "url": "http://127.0.0.1:9/"}
    )
    channel = NotificationChannel.objects.get()
    assert (
        response.status_code == 302 and response["Location"] == f"/settings/channels/{channel.pk}/"
    )
    assert channel.secret in lead.get(response["Location"]).content.decode()
    denied = lead.post(
        "/settings/channels/",
        {"name": "meta", "kind": "webhook", "url": "http://169.254.169.254/"},
    )
    assert denied.status_code == 400 and "denied network" in denied.content.decode()


def test_automations_page(lead, member):
    response = lead.post(
        "/projects/default/automations/",
        {"name": "tag errors", "filter": "status_code = 'ERROR'", "action": "tag", "tag": "err",
         "sampling_rate": "100", "enabled": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    page = member.get("/projects/default/automations/").content.decode()
    assert "tag errors" in page and "status_code = &#x27;ERROR&#x27;" in page
    bad = lead.post(
        "/projects/default/automations/",
        {"name": "x", "filter": "nope = 1", "action": "tag", "tag": "e", "sampling_rate": "100"},
    )
    assert bad.status_code == 400 and "nope" in bad.content.decode()
