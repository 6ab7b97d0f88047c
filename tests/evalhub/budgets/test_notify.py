"""The budget warning through the monitors' notification channels: once a period, to a real
HTTP receiver, from the spend the judge calls record; shown on the budget page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from evalhub.budgets.guard import budget_guard, usage_add
from evalhub.budgets.models import BudgetUsage
from evalhub.budgets.services import budget_create
from evalhub.monitors.channels import ChannelInput, channel_create
from evalhub.monitors.models import Delivery, DeliveryStatus
from tests.evalhub.monitors.receiver import Receiver
from tests.evalhub.tasks.factories import judge

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    server = Receiver().start()
    yield server
    server.stop()


def test_the_warning_goes_once_a_period_through_the_budgets_channels(
    receiver, celery_eager, django_capture_on_commit_callbacks, client, django_user_model
):
    hook = channel_create(data=ChannelInput(name="ops", kind="webhook", url=receiver.url))
    slack = channel_create(data=ChannelInput(name="team", kind="slack", url=receiver.url))
    channel_create(data=ChannelInput(name="unused", kind="webhook", url=receiver.url))
    evaluator = judge("Tone")
    budget = budget_create(
        scope="evaluator", evaluator=evaluator, period="day", unit="tokens", limit=1000,
        warn_percent=50, channels=[hook, slack],
    )  # fmt: skip
    guard = budget_guard(task_id=None, evaluator_ids=[evaluator.pk], provider_ids=[])
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(4):  # 400 tokens: under the threshold
            guard.record(evaluator_id=evaluator.pk, provider_id=None, tokens=100, cost=None)
    assert receiver.requests == []
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):  # 500, 600, 700: crossed once
            guard.record(evaluator_id=evaluator.pk, provider_id=None, tokens=100, cost=None)
    assert len(receiver.requests) == 2
    bodies = sorted((r["body"] for r in receiver.requests), key=len)
    assert b"evaluator Tone has spent 500 of 1000 tokens today (50 %" in bodies[0]  # Slack
    webhook = [r for r in range(2) if b'"type": "budget_warning"' in receiver.requests[r]["body"]]
    assert len(webhook) == 1 and receiver.json(webhook[0])["spent"] == 500
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    usage = BudgetUsage.objects.get(budget=budget)
    assert usage.warned_at is not None and usage.warned_channels == 2

    # The page says so.
    client.force_login(django_user_model.objects.create_user("mia"))
    html = client.get(reverse("budgets:list")).content.decode()
    assert 'data-warned="2"' in html and "sent to 2 channels" in html

    # The next period warns again, once.
    tomorrow = timezone.now() + timedelta(days=1)
    with django_capture_on_commit_callbacks(execute=True):
        usage_add(budget=budget, amount=600, moment=tomorrow)
        usage_add(budget=budget, amount=100, moment=tomorrow)
    assert len(receiver.requests) == 4


def test_without_channels_the_warning_shows_on_the_page_only(
    receiver, celery_eager, django_capture_on_commit_callbacks, client, django_user_model
):
    budget = budget_create(scope="global", period="month", unit="usd", limit=10, warn_percent=80)
    with django_capture_on_commit_callbacks(execute=True):
        usage_add(budget=budget, amount=9)
    assert receiver.requests == [] and not Delivery.objects.exists()
    client.force_login(django_user_model.objects.create_user("mia"))
    html = client.get(reverse("budgets:list")).content.decode()
    assert 'data-state="warning"' in html and "shown here (no channel)" in html


def test_the_api_takes_channels_by_name_and_refuses_unknown_ones(client, django_user_model):
    channel_create(data=ChannelInput(name="ops", kind="webhook", url="http://127.0.0.1:9/"))
    client.force_login(
        django_user_model.objects.create_user("boss", is_staff=True, is_superuser=True)
    )
    body = {"scope": "global", "period": "day", "unit": "usd", "limit": 5, "channels": ["ops"]}
    response = client.post("/v1/budgets", body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["channels"] == ["ops"] and response.json()["warned_at"] is None
    body = {**body, "period": "month", "channels": ["nope"]}
    response = client.post("/v1/budgets", body, content_type="application/json")
    assert response.status_code == 422 and "channels" in response.json()["detail"]
