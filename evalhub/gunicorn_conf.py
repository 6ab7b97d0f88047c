"""Gunicorn settings: ``gunicorn -c evalhub/gunicorn_conf.py evalhub.wsgi``.

HOST (default 127.0.0.1), PORT (default 8000) and WEB_CONCURRENCY (worker processes, default 2)
come from the environment.
"""

from __future__ import annotations

from evalhub.env import env_int, env_str

_host = env_str("HOST", "127.0.0.1") or "127.0.0.1"
_port = env_int("PORT", 8000, minimum=1)

bind = f"[{_host}]:{_port}" if ":" in _host else f"{_host}:{_port}"
workers = env_int("WEB_CONCURRENCY", 2, minimum=1)
wsgi_app = "evalhub.wsgi:application"

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
