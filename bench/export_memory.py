"""Stream every span of project ``bench`` to Parquet through the export route; print the peak
RSS (KiB), the seconds taken and the bytes written. Run by bench/query_bench.py."""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.settings")

import django  # noqa: E402

django.setup()

from django.test import Client  # noqa: E402

from evalhub.identity.services import api_key_create  # noqa: E402

_key, raw = api_key_create(name="export-bench", scope="read")
started = time.perf_counter()
response = Client(headers={"Authorization": f"Bearer {raw}"}).get(
    "/v1/projects/bench/spans/export?format=parquet"
)
assert response.status_code == 200, response.status_code
size = 0
with open(ROOT / "var" / "bench-export.parquet", "wb") as sink:
    for chunk in response.streaming_content:
        size += len(chunk)
        sink.write(chunk)
elapsed = time.perf_counter() - started
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, f"{elapsed:.1f}", size)
