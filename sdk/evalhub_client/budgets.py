"""Spend budgets of judge calls, with what they spent this period."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from evalhub_client._http import Transport

COLUMNS = [
    "id", "scope", "target", "task_id", "evaluator_id", "provider_id", "period", "unit",
    "limit", "warn_percent", "period_start", "spent", "calls", "reached", "warning",
    "channels", "warned_at", "warned_channels",
]  # fmt: skip


class Budgets:
    """``client.budgets``."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def list(self) -> pd.DataFrame:
        """One row per budget: ``scope``, ``target``, ``period``, ``unit``, ``limit``,
        ``spent`` (this period, from the calls' recorded tokens and cost), ``calls``,
        ``reached``, ``warning``, ``channels``, ``warned_at`` (this period's warning) and
        ``warned_channels``."""
        frame = pd.DataFrame(list(self._http.pages("/v1/budgets")), columns=COLUMNS)
        frame["warned_at"] = pd.to_datetime(frame["warned_at"], utc=True)
        frame["period_start"] = pd.to_datetime(frame["period_start"])
        return frame

    def create(
        self,
        *,
        scope: str,
        period: str,
        unit: str,
        limit: float,
        warn_percent: int = 80,
        channels: Sequence[str] = (),
        **target: Any,
    ) -> dict[str, Any]:
        """``scope``: global, task, evaluator or provider (then ``task_id``, ``evaluator`` or
        ``provider_id``); ``period``: day or month; ``unit``: usd or tokens. At
        ``warn_percent`` of the limit a warning goes, once a period, through ``channels``
        (notification channels' names)."""
        body = {
            "scope": scope, "period": period, "unit": unit, "limit": limit,
            "warn_percent": warn_percent, "channels": list(channels), **target,
        }  # fmt: skip
        created: dict[str, Any] = self._http.request("POST", "/v1/budgets", json=body)
        return created

    def delete(self, budget_id: int) -> None:
        self._http.request("DELETE", f"/v1/budgets/{int(budget_id)}")
