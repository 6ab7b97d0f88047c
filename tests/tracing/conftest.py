"""Fixtures for the Phoenix-compatible tracing API tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.tracing.factories import phoenix_span


@pytest.fixture
def make_span() -> Callable[..., dict[str, Any]]:
    return phoenix_span
