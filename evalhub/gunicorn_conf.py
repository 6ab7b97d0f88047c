"""Gunicorn settings: ``gunicorn -c evalhub/gunicorn_conf.py evalhub.wsgi``.

HOST (default 127.0.0.1), PORT (default 8000), WEB_CONCURRENCY (worker processes, default 2),
WEB_THREADS (threads per worker, default 8) and WEB_BODY_TIMEOUT (seconds a request body may
stall, default 30) come from the environment.
"""

from __future__ import annotations

from typing import Any

from evalhub.env import env_int, env_str

_host = env_str("HOST", "127.0.0.1") or "127.0.0.1"
_port = env_int("PORT", 8000, minimum=1)

bind = f"[{_host}]:{_port}" if ":" in _host else f"{_host}:{_port}"
workers = env_int("WEB_CONCURRENCY", 2, minimum=1)
wsgi_app = "evalhub.wsgi:application"

# Slow clients. A sync worker serves one request at a time, so a client that trickles its
# request body (a slow network, a stalled exporter, an attacker) holds a whole worker: with the
# default two, two such clients stopped every request, /healthz included. A gthread worker
# serves ``threads`` requests at once and waits for a new connection's first bytes in its event
# loop, not in a thread; a body that stalls for ``WEB_BODY_TIMEOUT`` seconds ends its request
# (OTLP answers 408). Measured in bench/slow_clients.py (docs/benchmarks.md). Each thread keeps
# its own database connection (DB_CONN_MAX_AGE): at most WEB_CONCURRENCY x WEB_THREADS.
worker_class = "gthread"
threads = env_int("WEB_THREADS", 8, minimum=1)
body_timeout = env_int("WEB_BODY_TIMEOUT", 30, minimum=1)


def pre_request(worker: Any, req: Any) -> None:
    """Bound every wait for request body bytes (gunicorn itself has no such setting). The
    worker puts the socket back to blocking (no timeout) once the request is done."""
    sock = getattr(req.unreader, "sock", None)
    if sock is not None:
        sock.settimeout(body_timeout)


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
