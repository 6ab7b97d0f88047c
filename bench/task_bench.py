"""Online-task benchmarks on PostgreSQL + Redis, with the fake OpenAI-compatible judge
answering every request after 200 ms (``python -m evalhub.fake_judge`` in its own process).

    .venv/bin/python bench/task_bench.py backfill --spans 100000 --concurrency 64
    .venv/bin/python bench/task_bench.py latency --seconds 180 --interval 30
    .venv/bin/python bench/task_bench.py workers --spans 3000 --delay 0.4 --concurrency 8 \
        --provider-limit 256 --workers 1 2 4

``backfill``: one Celery worker process (prefork, one child) works a backfill over every span;
reports the evaluation rate once the run is going (evaluations/s against the concurrency
limit's ceiling of concurrency / 0.2 s) and the worker's peak memory (VmHWM of its processes).

``workers``: one backfill over every span, worked by 1, 2, 4… worker processes at once (each
``--concurrency`` judge calls in flight, the provider allowing ``--provider-limit`` across all of
them); reports each count's evaluation rate and its speed-up over one worker, and checks that
every item was evaluated exactly once (one result, one judge call each).

``latency``: a continuous task (check interval ``--interval`` s) on a project receiving LLM
spans steadily; reports the delay from each span's ingestion to its result (p50 / p95 / max).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Parallel checkouts on one machine each take their own (EVALHUB_BENCH_DB, _REDIS_URL).
DB = os.environ.get("EVALHUB_BENCH_DB", "evalhub_bench_tasks")
BROKER = os.environ.get("EVALHUB_BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{DB}"
os.environ["REDIS_URL"] = BROKER
os.environ["CELERY_BROKER_URL"] = BROKER
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.settings")


def fresh_database() -> None:
    import psycopg
    import redis

    stale = subprocess.run(["pgrep", "-f", "hostname bench"], capture_output=True, text=True)
    if stale.stdout.strip():
        raise SystemExit(
            f"a benchmark worker is still running (pids {stale.stdout.split()}); stop it first"
        )
    redis.Redis.from_url(BROKER).flushdb()
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')


def start_judge(delay: float, port: int = 0) -> tuple[subprocess.Popen[bytes], str]:
    judge = subprocess.Popen(
        [sys.executable, "-m", "evalhub.fake_judge", "--key", "sk-test-fake-0123456789abcdef", "--label", "correct", "--port", str(port), "--delay",
         str(delay)],
        cwd=ROOT, stdout=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    assert judge.stdout is not None
    url = judge.stdout.readline().decode().strip()  # its base URL: it is listening
    if not url.startswith("http"):
        raise SystemExit("the fake judge did not start")
    return judge, url


def start_worker(
    concurrency: int, *, beat: bool, log: Path, name: str = "bench"
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "EVALHUB_TASK_CONCURRENCY": str(concurrency),
        "EVALHUB_RUN_SLICE_SECONDS": "120",
    }
    command = [
        sys.executable, "-m", "celery", "--app", "evalhub", "worker", "--loglevel", "INFO",
        "--concurrency", "1", "--hostname", f"{name}@%h", "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    if beat:
        command += ["--beat", "--schedule", str(log.with_suffix(".beat"))]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def group_memory_mib(pgid: int) -> tuple[float, float]:
    """(current RSS summed, largest VmHWM) over the processes of a process group, in MiB."""
    rss = hwm = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            fields = dict(
                line.split(":", 1) for line in (entry / "status").read_text().splitlines()
            )
        except (OSError, ValueError):
            continue
        rss += int(fields.get("VmRSS", "0 kB").split()[0]) / 1024
        hwm = max(hwm, int(fields.get("VmHWM", "0 kB").split()[0]) / 1024)
    return rss, hwm


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes of a process group."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def setup(concurrency: int, judge_url: str):  # type: ignore[no-untyped-def]
    import django

    django.setup()
    from django.core.management import call_command

    from evalhub.evaluators.services import evaluator_create
    from evalhub.providers.services import provider_create

    call_command("migrate", verbosity=0)
    provider = provider_create(
        name="fake judge", kind="compatible", base_url=judge_url,
        api_key="sk-test-fake-0123456789abcdef", default_model="judge-small",
        max_concurrency=concurrency, requests_per_minute=0, timeout_seconds=30,
    )  # fmt: skip
    evaluator = evaluator_create(
        name="correctness",
        config={
            "kind": "LLM",
            "template": "Span: {span_name}\nInput: {input}\nIs this step correct?",
            "variables": {"span_name": "name"},
            "choices": [{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
            "output_mode": "tool",
        },
    )
    return provider, evaluator


def ingest(spans: int) -> None:
    from bench.payloads import requests
    from tracing.ingest.otlp import spans_from_otlp_protobuf
    from tracing.store.services import spans_ingest

    for body in requests(spans, min(spans, 5000), seed=5, run="t"):
        spans_ingest(records=spans_from_otlp_protobuf(body, project_name="bench").records)


def backfill(args: argparse.Namespace) -> None:
    fresh_database()
    judge, judge_url = start_judge(args.delay)
    log = Path("/tmp/task-bench-worker.log")
    try:
        _provider, evaluator = setup(args.concurrency, judge_url)
        from django.utils import timezone

        from evalhub.tasks.backfill import run_backfill_create
        from evalhub.tasks.models import RunStatus, TaskRun
        from evalhub.tasks.runs import run_dispatch  # fmt: skip
        from evalhub.tasks.services import TaskEvaluatorInput, TaskInput, task_create
        from tracing.models import Project

        print(f"ingesting {args.spans} spans…", flush=True)
        ingest(args.spans)
        task = task_create(
            data=TaskInput(
                name="bench", project=Project.objects.get(name="bench"), continuous=False,
                evaluators=[TaskEvaluatorInput(evaluator=evaluator)],
            )
        )  # fmt: skip
        worker = start_worker(args.concurrency, beat=False, log=log)
        time.sleep(3)
        run = run_backfill_create(
            task=task, start=timezone.now() - timedelta(days=7), max_items=args.spans
        )
        run_dispatch(run.pk)
        started = time.monotonic()
        samples: list[tuple[float, int]] = []
        peak_rss = peak_hwm = 0.0
        cpu: list[tuple[float, float]] = []
        while True:
            time.sleep(1)
            run.refresh_from_db()
            rss, hwm = group_memory_mib(worker.pid)
            peak_rss, peak_hwm = max(peak_rss, rss), max(peak_hwm, hwm)
            samples.append((time.monotonic(), run.evaluated))
            cpu.append((group_cpu_seconds(worker.pid), group_cpu_seconds(judge.pid)))
            if len(samples) % 15 == 0:
                print(
                    f"  {time.monotonic() - started:5.0f}s  {run.status:9}  evaluated "
                    f"{run.evaluated:7}/{run.sampled}  worker RSS {rss:6.1f} MiB", flush=True
                )  # fmt: skip
            if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
                break
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited; see {log}")
        stop(worker)
        going = [i for i, (_, n) in enumerate(samples) if n > 0]
        (t0, n0), (t1, n1) = samples[going[0]], samples[going[-1]]
        (worker_cpu0, judge_cpu0), (worker_cpu1, judge_cpu1) = cpu[going[0]], cpu[going[-1]]
        rate = (n1 - n0) / (t1 - t0)
        ceiling = args.concurrency / args.delay
        run = TaskRun.objects.get(pk=run.pk)
        print(f"run #{run.pk}: {run.status}, {run.succeeded} succeeded, {run.errored} errored")
        print(
            f"evaluations/s while running: {rate:.1f} ({100 * rate / ceiling:.0f}% of the "
            f"{ceiling:.0f}/s that {args.concurrency} concurrent x {args.delay}s allow)"
        )
        print(
            f"CPU while running, per evaluation: worker {1000 * (worker_cpu1 - worker_cpu0) / (n1 - n0):.2f} ms "
            f"({(worker_cpu1 - worker_cpu0) / (t1 - t0):.2f} cores), fake judge "
            f"{1000 * (judge_cpu1 - judge_cpu0) / (n1 - n0):.2f} ms"
        )  # fmt: skip
        print(f"worker peak memory: largest process VmHWM {peak_hwm:.1f} MiB; "
              f"sum of RSS peak {peak_rss:.1f} MiB")  # fmt: skip
    finally:
        stop(judge)


def workers(args: argparse.Namespace) -> None:
    fresh_database()
    judge, judge_url = start_judge(args.delay)
    try:
        _provider, evaluator = setup(args.provider_limit, judge_url)
        from django.utils import timezone

        from annotations.models import Annotation
        from evalhub.tasks.backfill import run_backfill_create  # fmt: skip
        from evalhub.tasks.models import RunStatus, TaskRun
        from evalhub.tasks.services import TaskEvaluatorInput, TaskInput, task_create
        from tracing.models import Project

        print(f"ingesting {args.spans} spans…", flush=True)
        ingest(args.spans)
        project = Project.objects.get(name="bench")
        rates: dict[int, float] = {}
        for count in args.workers:
            logs = [Path(f"/tmp/task-bench-workers-{count}-{i}.log") for i in range(count)]
            processes = [
                start_worker(args.concurrency, beat=False, log=log, name=f"bench{i}")
                for i, log in enumerate(logs)
            ]
            deadline = time.monotonic() + 60
            while not all(" ready." in log.read_text(errors="replace") for log in logs):
                if time.monotonic() > deadline:
                    raise SystemExit(f"the workers did not start; see {logs}")
                time.sleep(0.2)
            task = task_create(
                data=TaskInput(
                    name=f"bench x{count}", project=project, continuous=False,
                    evaluators=[TaskEvaluatorInput(evaluator=evaluator)],
                )
            )  # fmt: skip
            calls_before = judge_requests(judge_url)
            run = run_backfill_create(
                task=task, start=timezone.now() - timedelta(days=7), max_items=args.spans
            )  # dispatched on commit
            samples: list[tuple[float, int]] = []
            while True:
                time.sleep(0.5)
                run.refresh_from_db()
                samples.append((time.monotonic(), run.evaluated))
                if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
                    break
                if any(p.poll() is not None for p in processes):
                    raise SystemExit(f"a worker exited; see {logs}")
            for process in processes:
                stop(process)
            going = [i for i, (_, n) in enumerate(samples) if n > 0]
            (t0, n0) = samples[max(going[0] - 1, 0)]
            (t1, n1) = samples[going[-1]]
            rates[count] = (n1 - n0) / (t1 - t0)
            results = Annotation.objects.filter(metadata__run_id=run.pk).count()
            calls = judge_requests(judge_url) - calls_before
            per_worker = sorted(n for n in _items_by_host(run).values())  # items each worker wrote
            print(
                f"{count} worker(s): run #{run.pk} {run.status}, {run.evaluated} evaluated in "
                f"{run.shards.count()} shards; {rates[count]:.1f} evaluations/s "
                f"(x{rates[count] / rates[args.workers[0]]:.2f}); results {results}, judge "
                f"calls {calls}; items per worker {per_worker}",
                flush=True,
            )
            assert results == run.sampled == calls, "an item was not evaluated exactly once"
        ceiling = args.concurrency / args.delay
        print(f"ceiling per worker: {args.concurrency} in flight / {args.delay}s = {ceiling:.0f}/s")
        for count, rate in rates.items():
            print(
                f"  {count} worker(s): {rate:6.1f}/s  speed-up x{rate / rates[args.workers[0]]:.2f}"
                f"  ({100 * rate / (count * ceiling):.0f}% of {count * ceiling:.0f}/s)"
            )
        TaskRun.objects.all()  # keep the database for inspection
    finally:
        stop(judge)


def _items_by_host(run) -> dict[str, int]:  # type: ignore[no-untyped-def]
    counts: dict[str, int] = {}
    for name in run.items.values_list("worker", flat=True):
        host = name.split(":", 1)[0]
        counts[host] = counts.get(host, 0) + 1
    return counts


def judge_requests(judge_url: str) -> int:
    """Requests the standalone fake judge has answered."""
    import json
    import urllib.request

    root = judge_url.rsplit("/v1", 1)[0]
    with urllib.request.urlopen(f"{root}/stats", timeout=5) as response:
        return int(json.load(response)["requests"])


def latency(args: argparse.Namespace) -> None:
    fresh_database()
    judge, judge_url = start_judge(args.delay)
    log = Path("/tmp/task-bench-latency.log")
    os.environ["EVALHUB_TASKS_TICK_SECONDS"] = "5"
    try:
        _provider, evaluator = setup(16, judge_url)
        from django.db.models import F

        from annotations.models import Annotation
        from bench.payloads import requests
        from evalhub.tasks.services import TaskEvaluatorInput, TaskInput, task_create
        from tracing.ingest.otlp import spans_from_otlp_protobuf
        from tracing.models import Project, Span
        from tracing.store.services import spans_ingest

        project = Project.objects.get_or_create(name="bench")[0]
        task_create(
            data=TaskInput(
                name="live", project=project, filter="span_kind = 'LLM'",
                interval_seconds=args.interval, evaluators=[TaskEvaluatorInput(evaluator=evaluator)],
            )
        )  # fmt: skip
        worker = start_worker(16, beat=True, log=log)
        time.sleep(3)
        bodies = requests(args.seconds * args.rate, args.rate, seed=9, run="l")
        print(f"sending {args.rate} spans/s for {args.seconds}s…", flush=True)
        began = time.monotonic()
        for second, body in enumerate(bodies):
            spans_ingest(records=spans_from_otlp_protobuf(body, project_name="bench").records)
            time.sleep(max(0.0, began + second + 1 - time.monotonic()))
        llm = Span.objects.filter(project=project, span_kind="LLM")
        expected = llm.count()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            done = Annotation.objects.filter(name="eval.correctness").count()
            if done >= expected:
                break
            time.sleep(1)
        stop(worker)
        delays = sorted(
            (a.created_at - a.ingested).total_seconds()
            for a in Annotation.objects.filter(name="eval.correctness").annotate(
                ingested=F("span__ingested_at")
            )
        )  # fmt: skip
        p95 = delays[int(0.95 * (len(delays) - 1))]
        print(f"{len(delays)}/{expected} LLM spans evaluated; ingestion → result delay: "
              f"p50 {statistics.median(delays):.1f}s, p95 {p95:.1f}s, max {delays[-1]:.1f}s "
              f"(interval {args.interval}s)")  # fmt: skip
    finally:
        stop(judge)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    one = sub.add_parser("backfill")
    one.add_argument("--spans", type=int, default=100_000)
    one.add_argument("--concurrency", type=int, default=64)
    one.add_argument("--delay", type=float, default=0.2)
    two = sub.add_parser("latency")
    two.add_argument("--seconds", type=int, default=180)
    two.add_argument("--rate", type=int, default=50, help="spans per second (whole traces)")
    two.add_argument("--interval", type=int, default=30)
    two.add_argument("--delay", type=float, default=0.2)
    three = sub.add_parser("workers")
    three.add_argument("--spans", type=int, default=3000)
    three.add_argument("--concurrency", type=int, default=8, help="judge calls per worker")
    three.add_argument("--provider-limit", type=int, default=256)
    three.add_argument("--delay", type=float, default=0.4)
    three.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    {"backfill": backfill, "latency": latency, "workers": workers}[args.mode](args)


if __name__ == "__main__":
    main()
