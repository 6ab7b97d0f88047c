"""Batch annotation API: bulk span annotation and dataframe-shaped evaluation records (``/v1``)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["annotations"])
