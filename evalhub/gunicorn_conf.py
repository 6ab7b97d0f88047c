"""Gunicorn settings: ``gunicorn -c evalhub/gunicorn_conf.py evalhub.wsgi``.

HOST (default 127.0.0.1), PORT (default 8000), WEB_CONCURRENCY (worker processes, default 2),
WEB_THREADS (threads per worker, default 8), WEB_BODY_TIMEOUT (seconds, default 30) and
WEB_BODY_MIN_RATE (bytes a second, default 1000) come from the environment.
"""

from __future__ import annotations

import time
from typing import Any

from evalhub.core.env import env_int, env_str

_host = env_str("HOST", "127.0.0.1") or "127.0.0.1"
_port = env_int("PORT", 8000, minimum=1)

bind = f"[{_host}]:{_port}" if ":" in _host else f"{_host}:{_port}"
workers = env_int("WEB_CONCURRENCY", 2, minimum=1)
wsgi_app = "evalhub.wsgi:application"

# Slow clients. A sync worker serves one request at a time, so a client that trickles its
# request body (a slow network, a stalled exporter, an attacker) holds a whole worker: with the
# default two, two such clients stopped every request, /healthz included. A gthread worker
# serves ``threads`` requests at once and waits for a new connection's first bytes in its event
# loop, not in a thread. A body must also keep coming: it gets WEB_BODY_TIMEOUT seconds plus one
# more per WEB_BODY_MIN_RATE bytes received (as Apache's mod_reqtimeout), else its request ends
# (OTLP answers 408), freeing the thread. Measured in bench/slow_clients.py (docs/benchmarks.md).
# Each thread keeps its own database connection (DB_CONN_MAX_AGE): WEB_CONCURRENCY x WEB_THREADS.
worker_class = "gthread"
threads = env_int("WEB_THREADS", 8, minimum=1)
body_timeout = env_int("WEB_BODY_TIMEOUT", 30, minimum=1)
body_min_rate = env_int("WEB_BODY_MIN_RATE", 1000, minimum=1)


class PacedSocket:
    """The request's socket as gunicorn reads its body: every wait for bytes is bounded by what
    is left of the body's time allowance. Gunicorn has no such setting of its own."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.started = time.monotonic()
        self.received = 0

    def recv(self, size: int) -> bytes:
        allowed = body_timeout + self.received / body_min_rate
        left = allowed - (time.monotonic() - self.started)
        if left <= 0:
            raise TimeoutError("the request body arrives too slowly")
        self.sock.settimeout(left)
        data: bytes = self.sock.recv(size)
        self.received += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def pre_request(worker: Any, req: Any) -> None:
    unreader = req.unreader
    if hasattr(unreader, "sock") and not isinstance(unreader.sock, PacedSocket):
        unreader.sock = PacedSocket(unreader.sock)


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    # The connection's next request (keep-alive) reads from the socket itself again.
    unreader = req.unreader
    if isinstance(getattr(unreader, "sock", None), PacedSocket):
        unreader.sock.sock.settimeout(None)
        unreader.sock = unreader.sock.sock


# Phoenix and OpenInference clients send the API key as an ``api_key`` header. Gunicorn drops
# header names with an underscore unless told to map them (the name is then indistinguishable
# from ``api-key``, which EvalHub treats the same way anyway).
header_map = "dangerous"

# OTLP batches can take a while to arrive and store; keep some headroom over the default 30 s.
timeout = 60
graceful_timeout = 20
# Recycle workers now and then so a slow leak in a dependency cannot grow without bound.
max_requests = 2000
max_requests_jitter = 200

# Gunicorn >= 25 opens a control socket at one fixed path per user ($HOME/.gunicorn/gunicorn.ctl),
# which two instances on one machine would fight over; nothing in EvalHub uses it.
control_socket_disable = True

accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
