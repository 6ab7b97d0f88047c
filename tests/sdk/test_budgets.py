"""``client.budgets`` over HTTP: create with a warning channel, list as a DataFrame, delete."""

from __future__ import annotations

import pandas as pd
import pytest
from evalhub_client import ValidationError

from evalhub.budgets.guard import usage_add
from evalhub.budgets.models import Budget
from evalhub.monitors.channels import ChannelInput, channel_create


def test_budgets_created_listed_and_deleted(client):
    channel_create(data=ChannelInput(name="ops", kind="webhook", url="http://127.0.0.1:9/"))
    created = client.budgets.create(
        scope="global", period="day", unit="tokens", limit=1000, warn_percent=50, channels=["ops"]
    )
    assert created["channels"] == ["ops"] and created["warn_percent"] == 50
    usage_add(budget=Budget.objects.get(pk=created["id"]), amount=100)
    frame = client.budgets.list()
    row = frame.set_index("id").loc[created["id"]]
    assert (row["spent"], row["calls"], bool(row["warning"])) == (100, 1, False)
    assert isinstance(frame["warned_at"].dtype, pd.DatetimeTZDtype)
    with pytest.raises(ValidationError) as bad:
        client.budgets.create(scope="global", period="week", unit="usd", limit=5)
    assert "period" in str(bad.value)
    client.budgets.delete(created["id"])
    assert client.budgets.list().empty
