"""Phoenix-compatible span mutations (``/v1``): metadata patches and permanent deletes."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["spans"])
