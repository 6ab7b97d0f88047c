"""Settings → Budgets and ``/v1/budgets``: spend so far, the warning, who may set budgets."""

from __future__ import annotations

import pytest
from django.urls import reverse

from evalhub.budgets.guard import usage_add
from evalhub.budgets.models import Budget
from evalhub.budgets.services import budget_create
from tests import factories
from tests.evalhub.tasks.factories import judge

pytestmark = pytest.mark.django_db


def test_the_page_shows_spend_the_warning_and_a_reached_budget(client, django_user_model):
    client.force_login(
        django_user_model.objects.create_user("boss", is_staff=True, is_superuser=True)
    )
    warned = budget_create(scope="global", period="day", unit="usd", limit=10, warn_percent=80)
    reached = budget_create(
        scope="evaluator", evaluator=judge("Tone"), period="month", unit="tokens", limit=100
    )
    usage_add(budget=warned, amount=8.5)
    usage_add(budget=reached, amount=120)
    html = client.get(reverse("budgets:list")).content.decode()
    assert "$8.5000" in html and 'data-state="warning"' in html
    assert "evaluator Tone" in html and 'data-state="reached"' in html and "120 tokens" in html
    response = client.post(
        reverse("budgets:list"),
        {"scope": "task", "period": "day", "unit": "usd", "limit": "5", "warn_percent": "80"},
    )
    assert response.status_code == 400 and b"a task budget needs its task" in response.content
    client.post(reverse("budgets:delete", args=[warned.pk]))
    assert not Budget.objects.filter(pk=warned.pk).exists()


def test_members_see_budgets_but_only_admins_set_them(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("mia"))
    assert client.get(reverse("budgets:list")).status_code == 200
    response = client.post(
        reverse("budgets:list"),
        {"scope": "global", "period": "day", "unit": "usd", "limit": "5", "warn_percent": "80"},
    )
    assert response.status_code == 403 and not Budget.objects.exists()


def test_the_api_creates_lists_and_deletes(client):
    admin = {"Authorization": f"Bearer {factories.api_key()}"}
    writer = {"Authorization": f"Bearer {factories.api_key('w', scope='write')}"}
    body = {"scope": "global", "period": "month", "unit": "tokens", "limit": 1000}
    assert (
        client.post(
            "/v1/budgets", body, content_type="application/json", headers=writer
        ).status_code
        == 403
    )
    created = client.post("/v1/budgets", body, content_type="application/json", headers=admin)
    assert created.status_code == 201 and created.json()["spent"] == 0
    usage_add(budget=Budget.objects.get(), amount=250)
    (listed,) = client.get("/v1/budgets", headers=writer).json()["data"]
    assert (listed["spent"], listed["calls"], listed["reached"]) == (250, 1, False)
    for bad, field in (
        ({"unit": "euro"}, "unit"),
        ({"limit": -1}, "limit"),
        ({"evaluator": "nobody"}, "evaluator"),
    ):
        response = client.post(
            "/v1/budgets", body | bad, content_type="application/json", headers=admin
        )
        assert response.status_code in (404, 422) and field in response.json()["detail"]
    assert client.delete(f"/v1/budgets/{listed['id']}", headers=admin).status_code == 204
    assert client.delete(f"/v1/budgets/{listed['id']}", headers=admin).status_code == 404


def test_the_api_lists_budgets_a_page_at_a_time(client):
    admin = {"Authorization": f"Bearer {factories.api_key()}"}
    made = [
        budget_create(scope="global", period=period, unit=unit, limit=10)
        for period, unit in (("day", "usd"), ("month", "usd"), ("day", "tokens"))
    ]
    first = client.get("/v1/budgets", {"limit": 2}, headers=admin).json()
    assert [b["id"] for b in first["data"]] == [made[0].pk, made[1].pk]
    rest = client.get(
        "/v1/budgets", {"limit": 2, "cursor": first["next_cursor"]}, headers=admin
    ).json()
    assert [b["id"] for b in rest["data"]] == [made[2].pk] and rest["next_cursor"] is None
    bad = client.get("/v1/budgets", {"cursor": "nope"}, headers=admin)
    assert bad.status_code == 400 and bad.json()["detail"].startswith("cursor")
