"""Time buckets of charts and metrics over time (Score trends, calibration)."""

from __future__ import annotations

from datetime import timedelta
from typing import Final, Literal

Bucket = Literal["hour", "day", "week"]
BUCKETS: Final[tuple[Bucket, ...]] = ("hour", "day", "week")
BUCKET_LENGTH: Final[dict[Bucket, timedelta]] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}


def bucket_of(value: object, default: Bucket) -> Bucket:
    """``value`` when it names a bucket (a query parameter, a form's choice), else ``default``."""
    return next((bucket for bucket in BUCKETS if bucket == value), default)
