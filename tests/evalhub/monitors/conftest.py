from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.evalhub.conftest import provider  # noqa: F401  (a provider on the fake judge)
from tests.evalhub.fake_openai import fake_openai  # noqa: F401
from tests.evalhub.monitors.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()
