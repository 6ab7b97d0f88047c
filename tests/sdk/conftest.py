"""The SDK against a live EvalHub server (real HTTP, the test database)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from evalhub_client import Client

from tests import factories


@pytest.fixture
def client(live_server, transactional_db) -> Iterator[Client]:
    with Client(base_url=live_server.url, api_key=factories.api_key()) as sdk:
        yield sdk
