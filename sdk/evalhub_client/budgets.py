"""Spend budgets of judge calls, with what they spent this period."""

from __future__ import annotations

from typing import Any

import pandas as pd

from evalhub_client._http import Transport


class Budgets:
    """``client.budgets``."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def list(self) -> pd.DataFrame:
        """One row per budget: ``scope``, ``target``, ``period``, ``unit``, ``limit``,
        ``spent`` (this period, from the calls' recorded tokens and cost), ``reached``."""
        return pd.DataFrame(self._http.request("GET", "/v1/budgets")["data"])

    def create(
        self, *, scope: str, period: str, unit: str, limit: float, **target: Any
    ) -> dict[str, Any]:
        """``scope``: global, task, evaluator or provider (then ``task_id``, ``evaluator`` or
        ``provider_id``); ``period``: day or month; ``unit``: usd or tokens."""
        body = {"scope": scope, "period": period, "unit": unit, "limit": limit, **target}
        created: dict[str, Any] = self._http.request("POST", "/v1/budgets", json=body)
        return created

    def delete(self, budget_id: int) -> None:
        self._http.request("DELETE", f"/v1/budgets/{int(budget_id)}")
