"""The entry point: ``Client(base_url=..., api_key=...)``."""

from __future__ import annotations

import os
from types import TracebackType

import httpx

from evalhub_client._http import Transport
from evalhub_client.alignment import Alignment
from evalhub_client.budgets import Budgets
from evalhub_client.calibration import Calibration
from evalhub_client.channels import NotificationChannels
from evalhub_client.datasets import Datasets
from evalhub_client.experiments import Experiments
from evalhub_client.monitors import Automations, Monitors
from evalhub_client.shadows import Shadows
from evalhub_client.spans import Spans
from evalhub_client.tasks import Tasks

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class Client:
    """A connection to an EvalHub server.

    ``base_url`` defaults to ``$EVALHUB_BASE_URL`` (else ``http://127.0.0.1:8000``) and
    ``api_key`` to ``$EVALHUB_API_KEY``. Use it as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url or os.environ.get("EVALHUB_BASE_URL") or DEFAULT_BASE_URL
        self._transport = Transport(
            base_url=self.base_url,
            api_key=api_key or os.environ.get("EVALHUB_API_KEY"),
            timeout=timeout,
            http_client=http_client,
        )
        self.spans = Spans(self._transport)
        self.tasks = Tasks(self._transport)
        self.monitors = Monitors(self._transport)
        self.automations = Automations(self._transport)
        self.notification_channels = NotificationChannels(self._transport)
        self.datasets = Datasets(self._transport)
        self.experiments = Experiments(self._transport, self.datasets)
        self.calibration = Calibration(self._transport)
        self.alignment = Alignment(self._transport)
        self.budgets = Budgets(self._transport)
        self.shadows = Shadows(self._transport)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<evalhub_client.Client {self.base_url}>"
