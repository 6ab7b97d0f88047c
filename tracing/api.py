"""Phoenix-compatible routes for projects, spans and traces (``/v1``)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["tracing"])
