"""Phoenix-compatible routes for span, trace and session annotations (``/v1``)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["annotations"])
