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
