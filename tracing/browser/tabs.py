"""The trace browser's three tables: traces (their root spans), spans, and sessions."""

from __future__ import annotations

from typing import Final, Literal

Tab = Literal["traces", "spans", "sessions"]
TABS: Final[tuple[Tab, ...]] = ("traces", "spans", "sessions")
