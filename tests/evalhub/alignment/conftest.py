from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def alignment_dispatched(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Alignment runs are not sent to a broker from these tests: their ids are collected and
    the tests work them with ``alignment_run_work``."""
    sent: list[int] = []
    monkeypatch.setattr("evalhub.alignment.services.alignment_dispatch", sent.append)
    monkeypatch.setattr("evalhub.alignment.running.alignment_dispatch", sent.append)
    return sent
