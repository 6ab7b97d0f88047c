"""Start-up of an OTLP/gRPC ingest process (``tracing.ingest.grpc.IngestPool``). A module of its
own because a fresh process imports it before Django is set up, so it imports no models."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def ingest_process_start() -> None:
    """Set Django up. Ctrl-C and SIGTERM (which a terminal or a service manager sends to the
    whole process group) are left to the server, which stops its pool once the requests in
    flight are done; should the server itself die, so does this process (Linux)."""
    import django

    django.setup()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
