"""Loading a bench database: migrations, then the ingest benchmark's five-span traces into the
project ``bench`` (resumed where an earlier load stopped)."""

from __future__ import annotations

import time

PER_REQUEST = 5000


def spans_load(spans: int, *, run: str, seed: int = 11) -> bool:
    """Migrate, then ingest ``spans`` spans (whole traces, ``PER_REQUEST`` a request) unless
    the database holds that many already (then False)."""
    from django.core.management import call_command

    from bench.payloads import requests
    from tracing.ingest.otlp import spans_from_otlp_protobuf
    from tracing.models import Span
    from tracing.store.services import spans_ingest

    call_command("migrate", verbosity=0)
    have = Span.objects.count()
    if have >= spans:
        print(f"{have} spans already loaded", flush=True)
        return False
    started = time.perf_counter()
    for index, body in enumerate(requests(spans, PER_REQUEST, seed=seed, run=run)):
        if index * PER_REQUEST < have:
            continue
        spans_ingest(records=spans_from_otlp_protobuf(body, project_name="bench").records)
        if index % 20 == 0:
            done = (index + 1) * PER_REQUEST
            print(f"  {done} spans, {time.perf_counter() - started:.0f}s", flush=True)
    return True
