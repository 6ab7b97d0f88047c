"""Slow clients against the web server: N connections trickle (or stall) their request bodies
while /healthz is timed, for gunicorn's sync workers (the old default) and the gthread workers
``evalhub/gunicorn_conf.py`` now sets.

    .venv/bin/python bench/slow_clients.py --clients 2 4 8 16 --seconds 20

A trickling client sends the headers of ``POST /v1/traces`` announcing a 1 MB body, then one
byte a second; a stalling client sends the headers and 100 bytes, then nothing. For each worker
class and number of clients: /healthz latencies (median and worst of the probes, one probe every
0.5 s for ``--seconds``) and how many probes got no answer within 30 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest_bench import evalhub_database, wait_http  # noqa: E402

PORT = 8766
URL = f"http://127.0.0.1:{PORT}"


def slow_client(mode: str, api_key: str, stop: threading.Event) -> None:
    """One connection that holds a request open: trickling one byte a second, or stalled. It
    carries a valid key, so the server reads the body (a request without one is refused first).
    """
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", PORT)) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-protobuf\r\nContent-Length: 1000000\r\n"
            + f"Authorization: Bearer {api_key}\r\n\r\n".encode()
            + bytes(100)
        )
        while not stop.wait(1.0):
            if mode == "trickle":
                sock.sendall(b"\x00")  # OSError once the server gave up on it


def probe(seconds: float) -> tuple[list[float], int]:
    """/healthz every 0.5 s for ``seconds``: latencies (s) of the answers, count of timeouts."""
    latencies: list[float] = []
    timeouts = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            requests.get(f"{URL}/healthz", timeout=30).raise_for_status()
            latencies.append(time.monotonic() - started)
        except requests.RequestException:
            timeouts += 1
        time.sleep(max(0.0, 0.5 - (time.monotonic() - started)))
    return latencies, timeouts


def run(
    worker_class: str, clients: int, mode: str, seconds: float, env: dict[str, str], api_key: str
) -> str:
    argv = [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "evalhub/gunicorn_conf.py"]
    if worker_class == "sync":  # command-line settings win over the config file
        argv += ["--worker-class", "sync", "--threads", "1"]
    server = subprocess.Popen(
        [*argv, "evalhub.wsgi"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stop = threading.Event()
    try:
        wait_http(f"{URL}/healthz")
        threads = [
            threading.Thread(target=slow_client, args=(mode, api_key, stop), daemon=True)
            for _ in range(clients)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # let every slow client be accepted and hold its request
        latencies, timeouts = probe(seconds)
    finally:
        stop.set()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    if not latencies:
        return f"| {worker_class} | {mode} | {clients} | - | - | 0 | {timeouts} |"
    median = statistics.median(latencies) * 1000
    worst = max(latencies) * 1000
    return (
        f"| {worker_class} | {mode} | {clients} | {median:,.0f} ms | {worst:,.0f} ms "
        f"| {len(latencies)} | {timeouts} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--modes", nargs="+", default=["trickle", "stall"])
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--seconds", type=float, default=20, help="how long /healthz is probed")
    args = parser.parse_args()

    _dsn, env, api_key = evalhub_database(
        args.workers, db="evalhub_bench_slow", port=PORT, key_name="slow"
    )
    print("| workers | clients | N | /healthz median | worst | answered | no answer in 30 s |")
    print("|---|---|---|---|---|---|---|")
    for mode in args.modes:
        for clients in args.clients:
            for worker_class in ("sync", "gthread"):
                print(run(worker_class, clients, mode, args.seconds, env, api_key), flush=True)


if __name__ == "__main__":
    main()
