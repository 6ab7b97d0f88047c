"""Ingest benchmark: OTLP protobuf spans into EvalHub (gunicorn + PostgreSQL), optionally the
same payloads over OTLP/gRPC (``manage.py grpc_ingest``) and into Arize Phoenix (``phoenix
serve`` on PostgreSQL), with the ratios.

    .venv/bin/python bench/ingest_bench.py --spans 100000 --phoenix /tmp/phoenix-venv/bin/phoenix
    .venv/bin/python bench/ingest_bench.py --spans 100000 --grpc

Reports spans/s from the first request until every span is queryable (counted in the
database), and the peak resident memory of the web server processes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import psycopg
import requests as http

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.database import ensure_database  # noqa: E402
from bench.payloads import requests as make_requests  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432"


def count_rows(dsn: str, table: str) -> int:
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
    except psycopg.errors.UndefinedTable:
        return 0


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for child in Path("/proc").iterdir():
        if not child.name.isdigit():
            continue
        try:
            stat = (child / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            pids.extend(process_tree(int(child.name)))
    return pids


def rss_kib(pid: int) -> int:
    try:
        for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pid: int) -> int:
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def postgres_pids() -> list[int]:
    pids = []
    for child in Path("/proc").iterdir():
        if child.name.isdigit():
            try:
                if (child / "comm").read_text().strip() == "postgres":
                    pids.append(int(child.name))
            except OSError:
                continue
    return pids


class MemoryWatch(threading.Thread):
    """Peak RSS of a process tree (sum and largest process), and CPU seconds used by the tree
    and by PostgreSQL while it runs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_total, self.peak_single = pid, 0, 0
        self.stopped = threading.Event()
        self.cpu_start = {p: cpu_ticks(p) for p in process_tree(pid)}
        self.pg_start = {p: cpu_ticks(p) for p in postgres_pids()}
        self.cpu_seen: dict[int, int] = {}
        self.pg_seen: dict[int, int] = {}

    def run(self) -> None:
        while not self.stopped.is_set():
            tree = process_tree(self.pid)
            sizes = [rss_kib(p) for p in tree]
            self.peak_total = max(self.peak_total, sum(sizes))
            self.peak_single = max(self.peak_single, max(sizes, default=0))
            for p in tree:
                self.cpu_seen[p] = cpu_ticks(p)
            for p in postgres_pids():
                self.pg_seen[p] = cpu_ticks(p)
            time.sleep(0.1)

    def cpu_seconds(self) -> tuple[float, float]:
        hz = os.sysconf("SC_CLK_TCK")
        server = sum(t - self.cpu_start.get(p, 0) for p, t in self.cpu_seen.items())
        database = sum(t - self.pg_start.get(p, 0) for p, t in self.pg_seen.items())
        return round(server / hz, 1), round(database / hz, 1)


def wait_http(url: str, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if http.get(url, timeout=2).status_code < 500:
                return
        except http.RequestException:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server at {url} did not come up")


def send_all(url: str, payloads: list[bytes], headers: dict[str, str], clients: int) -> float:
    """Send every payload with ``clients`` concurrent connections; returns the start time."""
    local = threading.local()
    retries = [0]

    def send(body: bytes) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = http.Session()
        # Like the OTLP exporter: a server that sheds load (429/503) gets the batch again later.
        for attempt in range(100_000):
            response = session.post(url, data=body, headers=headers, timeout=300)
            if response.status_code not in (429, 503):
                break
            retries[0] += 1
            time.sleep(float(response.headers.get("Retry-After") or min(0.1 * 2**attempt, 2.0)))
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:300]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(send, payloads))
    if retries[0]:
        print(f"{url}: {retries[0]} requests were refused for load (429/503) and sent again")
    return started


GRPC_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
GRPC_RETRIED = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)


def send_all_grpc(endpoint: str, payloads: list[bytes], api_key: str, clients: int) -> float:
    """As ``send_all``, over OTLP/gRPC: ``clients`` channels (connections) at once, each request
    sent again after a back-off when the server sheds load."""
    local = threading.local()
    retries = [0]
    metadata = (("authorization", f"Bearer {api_key}"), ("x-project-name", "bench"))

    def send(body: bytes) -> None:
        export = getattr(local, "export", None)
        if export is None:
            # Its own connection, as separate exporters have (gRPC would otherwise share one
            # among the channels of a process).
            channel = grpc.insecure_channel(
                endpoint, options=[("grpc.use_local_subchannel_pool", 1)]
            )
            export = local.export = channel.unary_unary(GRPC_EXPORT)
        for attempt in range(100_000):
            try:
                export(body, metadata=metadata, timeout=300)
                return
            except grpc.RpcError as error:
                if error.code() not in GRPC_RETRIED:  # type: ignore[attr-defined]
                    raise
                retries[0] += 1
                time.sleep(min(0.1 * 2**attempt, 2.0))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(send, payloads))
    if retries[0]:
        print(f"{endpoint}: {retries[0]} requests were refused for load and sent again")
    return started


def wait_count(dsn: str, table: str, expected: int, timeout: float = 900) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if count_rows(dsn, table) >= expected:
            return
        time.sleep(0.2)
    raise SystemExit(
        f"only {count_rows(dsn, table)} of {expected} rows in {table} after {timeout}s"
    )


def evalhub_database(
    workers: int, *, db: str | None = None, port: int = 8765, key_name: str = "bench"
) -> tuple[str, dict[str, str], str]:
    """A fresh, migrated database; the environment to run EvalHub on it (``workers``
    gunicorn workers on ``port``); an API key named ``key_name``."""
    db = db or os.environ.get("EVALHUB_BENCH_DB", "evalhub_bench_ingest")  # parallel checkouts
    ensure_database(db, reload=True)
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG}/{db}",
        "WEB_CONCURRENCY": str(workers),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    python = str(ROOT / ".venv" / "bin" / "python")
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    key = subprocess.run(
        [python, "manage.py", "create_api_key", "--name", key_name],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{PG}/{db}", env, key


def measured(
    system: str,
    server: subprocess.Popen[bytes],
    send: Callable[[], float],
    dsn: str,
    spans: int,
    **extra: object,
) -> dict[str, object]:
    watch = MemoryWatch(server.pid)
    watch.start()
    started = send()
    wait_count(dsn, "tracing_span", spans)
    elapsed = time.perf_counter() - started
    watch.stopped.set()
    watch.join()
    server_cpu, db_cpu = watch.cpu_seconds()
    return {
        "system": system,
        "server_cpu_s": server_cpu,
        "postgres_cpu_s": db_cpu,
        "spans": spans,
        "seconds": round(elapsed, 2),
        "spans_per_s": round(spans / elapsed),
        **extra,
        "peak_rss_total_mib": round(watch.peak_total / 1024),
        "peak_rss_process_mib": round(watch.peak_single / 1024),
    }


def bench_evalhub(
    payloads: list[bytes], spans: int, clients: int, workers: int
) -> dict[str, object]:
    dsn, env, key = evalhub_database(workers)
    server = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "-c",
            "evalhub/gunicorn_conf.py",
            "evalhub.wsgi",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        wait_http("http://127.0.0.1:8765/healthz")
        headers = {
            "Content-Type": "application/x-protobuf",
            "Authorization": f"Bearer {key}",
            "x-project-name": "bench",
        }
        return measured(
            "EvalHub OTLP/HTTP",
            server,
            lambda: send_all("http://127.0.0.1:8765/v1/traces", payloads, headers, clients),
            dsn,
            spans,
            web_workers=workers,
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


def bench_evalhub_grpc(
    payloads: list[bytes], spans: int, clients: int, processes: int, threads: int
) -> dict[str, object]:
    dsn, env, key = evalhub_database(processes)
    port = 4399
    server = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "python"),
            "manage.py",
            "grpc_ingest",
            "--port",
            str(port),
            "--processes",
            str(processes),
            "--threads",
            str(threads),
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        wait_grpc(f"127.0.0.1:{port}")
        return measured(
            "EvalHub OTLP/gRPC",
            server,
            lambda: send_all_grpc(f"127.0.0.1:{port}", payloads, key, clients),
            dsn,
            spans,
            grpc_processes=processes,
            grpc_threads=threads,
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


def wait_grpc(endpoint: str, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with grpc.insecure_channel(endpoint) as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=1)
                return
            except grpc.FutureTimeoutError:
                pass
    raise SystemExit(f"gRPC server at {endpoint} did not come up")


def bench_phoenix(
    phoenix: str, payloads: list[bytes], spans: int, clients: int
) -> dict[str, object]:
    db = "phoenix_bench_ingest"
    ensure_database(db, reload=True)
    workdir = ROOT / "var" / "bench" / "phoenix"
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PHOENIX_SQL_DATABASE_URL": f"{PG}/{db}",
        "PHOENIX_PORT": "6006",
        "PHOENIX_GRPC_PORT": "4399",
        "PHOENIX_WORKING_DIR": str(workdir),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = open(workdir / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [phoenix, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_http("http://127.0.0.1:6006/healthz", timeout=180)
        watch = MemoryWatch(server.pid)
        watch.start()
        headers = {"Content-Type": "application/x-protobuf", "x-project-name": "bench"}
        started = send_all("http://127.0.0.1:6006/v1/traces", payloads, headers, clients)
        wait_count(f"{PG}/{db}", "spans", spans)
        elapsed = time.perf_counter() - started
        watch.stopped.set()
        watch.join()
        server_cpu, db_cpu = watch.cpu_seconds()
        return {
            "system": "Arize Phoenix",
            "server_cpu_s": server_cpu,
            "postgres_cpu_s": db_cpu,
            "spans": spans,
            "seconds": round(elapsed, 2),
            "spans_per_s": round(spans / elapsed),
            "peak_rss_total_mib": round(watch.peak_total / 1024),
            "peak_rss_process_mib": round(watch.peak_single / 1024),
        }
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--per-request", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn workers for EvalHub (one per core)"
    )
    parser.add_argument(
        "--grpc",
        action="store_true",
        help="also send the payloads over OTLP/gRPC (manage.py grpc_ingest) and compare",
    )
    parser.add_argument(
        "--grpc-processes", type=int, default=2, help="grpc_ingest ingest processes (per core)"
    )
    parser.add_argument("--grpc-threads", type=int, default=8, help="grpc_ingest threads")
    parser.add_argument("--phoenix", help="path to the `phoenix` command, to compare against it")
    parser.add_argument(
        "--skip-evalhub", action="store_true", help="measure only Phoenix (or only gRPC)"
    )
    args = parser.parse_args()

    payloads = list(make_requests(args.spans, args.per_request))
    size = sum(map(len, payloads))
    print(
        f"{len(payloads)} requests, {args.spans} spans, {size / args.spans:.0f} bytes a span",
        flush=True,
    )
    results = []
    if not args.skip_evalhub:
        results.append(bench_evalhub(payloads, args.spans, args.clients, args.workers))
        print(json.dumps(results[-1]), flush=True)
    if args.grpc:
        grpc_result = bench_evalhub_grpc(
            payloads, args.spans, args.clients, args.grpc_processes, args.grpc_threads
        )
        print(json.dumps(grpc_result), flush=True)
        if results:
            ratio = grpc_result["spans_per_s"] / results[0]["spans_per_s"]  # type: ignore[operator]
            print(f"EvalHub gRPC / HTTP throughput: {ratio:.2f}x")
        return
    if args.phoenix:
        results.append(bench_phoenix(args.phoenix, payloads, args.spans, args.clients))
        print(json.dumps(results[-1]), flush=True)
        if len(results) == 2:
            ratio = results[0]["spans_per_s"] / results[1]["spans_per_s"]  # type: ignore[operator]
            print(f"EvalHub / Phoenix throughput: {ratio:.2f}x")


if __name__ == "__main__":
    main()
