"""Experiments benchmark on PostgreSQL: a prompt experiment of 1,000 examples against a fake
OpenAI-compatible model that answers in 200 ms, at concurrency 32, and the compare page of two
1,000-example experiments.

    .venv/bin/python bench/experiments_bench.py [--examples 1000] [--latency 0.2]
        [--concurrency 32] [--runs 30] [--skip-compare] [--profile]

The database ``evalhub_bench_experiments`` (``EVALHUB_BENCH_DB``) is created and migrated when
missing, and emptied of datasets, prompts and experiments first. The experiment runs as the
Celery task runs it (``prompt_experiment_execute``, in this process): the provider's limiter,
retries, cost accounting and each run's trace included. The ceiling is ``concurrency / latency`` calls per
second; the figure is the throughput reached as a fraction of it. The compare page is rendered
through the whole Django stack (test client, ``force_login``) ``--runs`` times: p50 and p95.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = os.environ.get("EVALHUB_BENCH_DB", "evalhub_bench_experiments")
os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{DB}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.settings")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")


def _database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        if c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone() is None:
            c.execute(f'CREATE DATABASE "{DB}"')  # DB comes from the environment, not a user


def _start_model(latency: float) -> tuple[subprocess.Popen[bytes], str]:
    """The fake model in its own process, on asyncio (``python -m evalhub.fake_judge``): as a
    remote model, it takes little of this machine's CPU and none of this process's."""
    model = subprocess.Popen(
        [sys.executable, "-m", "evalhub.fake_judge", "--port", "0", "--delay", str(latency)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert model.stdout is not None
    url = model.stdout.readline().decode().strip()
    if not url.startswith("http"):
        raise SystemExit("the fake model did not start")
    return model, url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument(
        "--profile", action="store_true", help="print where the experiment's CPU time goes"
    )
    parser.add_argument("--skip-compare", action="store_true", help="the experiment only")
    args = parser.parse_args()
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # a line per request otherwise

    _database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from django.contrib.auth import get_user_model
    from django.test import Client

    from annotations.datasets.models import Dataset
    from annotations.datasets.upload import UploadRow, dataset_upload
    from annotations.datasets.versions import ExampleContent
    from evalhub.experiments.models import (
        Experiment,
        ExperimentEvaluation,
        ExperimentKind,
        ExperimentRun,
        Prompt,
    )
    from evalhub.experiments.prompts import prompt_version_create
    from evalhub.experiments.runner import prompt_experiment_execute
    from evalhub.experiments.services import RunInput, experiment_create, runs_store
    from evalhub.providers.models import Provider
    from evalhub.providers.services import provider_create
    from tests.evalhub.fake_openai import VALID_KEY

    Experiment.objects.all().delete()
    Dataset.objects.filter(name__startswith="bench").delete()
    Prompt.objects.filter(name="bench").delete()
    Provider.objects.filter(name="bench fake").delete()

    model, base_url = _start_model(args.latency)
    try:
        provider = provider_create(
            name="bench fake",
            kind="compatible",
            base_url=base_url,
            api_key=VALID_KEY,
            default_model="gpt-4o-mini",
            max_concurrency=args.concurrency,
            requests_per_minute=0,
            timeout_seconds=30,
        )
        rows = [
            UploadRow(ExampleContent({"question": f"question {i}"}, {"answer": "ok"}))
            for i in range(args.examples)
        ]
        uploaded = dataset_upload(name="bench", rows=rows)
        prompt = prompt_version_create(
            name="bench",
            version={
                "model_name": "gpt-4o-mini",
                "template": {
                    "type": "chat",
                    "messages": [{"role": "user", "content": "{{question}}"}],
                },
            },
        )
        experiment = experiment_create(
            dataset=uploaded.dataset,
            version=uploaded.version,
            name="bench prompt",
            kind=ExperimentKind.PROMPT,
            prompt_version=prompt,
            provider=provider,
            model="gpt-4o-mini",
            variables={"question": "input.question"},
            concurrency=args.concurrency,
        )
        profiler = cProfile.Profile() if args.profile else None
        started, cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        recorded = prompt_experiment_execute(experiment_id=experiment.pk)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        errors = ExperimentRun.objects.filter(experiment=experiment, error__isnull=False).count()
        ceiling = args.concurrency / args.latency
        rate = recorded / elapsed
        print(
            f"prompt experiment: {recorded} runs ({errors} errors) in {elapsed:.2f} s = "
            f"{rate:.1f} runs/s; ceiling {ceiling:.0f}/s ({args.examples * args.latency / args.concurrency:.2f} s); "
            f"{rate / ceiling:.2f} x ceiling; CPU {cpu:.2f} s in this process "
            f"({cpu / max(recorded, 1) * 1000:.1f} ms per run)"
        )

        if args.skip_compare:
            return
        # A second experiment with SDK-style runs, both scored, then the compare page.
        second = experiment_create(
            dataset=uploaded.dataset, version=uploaded.version, name="bench sdk"
        )
        runs = list(ExperimentRun.objects.filter(experiment=experiment).order_by("example_id"))
        runs_store(
            experiment=second,
            runs=[
                RunInput(example_id=run.example_id, output="ok" if index % 3 else "no")
                for index, run in enumerate(runs)
            ],
        )
        others = {r.example_id: r for r in ExperimentRun.objects.filter(experiment=second)}
        ExperimentEvaluation.objects.bulk_create(
            [ExperimentEvaluation(run=run, name="exact", score=1.0) for run in runs]
            + [
                ExperimentEvaluation(
                    run=others[run.example_id], name="exact", score=1.0 if index % 3 else 0.0
                )
                for index, run in enumerate(runs)
            ]
        )
        user, _ = get_user_model().objects.get_or_create(
            username="bench", defaults={"is_staff": True, "is_superuser": True}
        )
        client = Client()
        client.force_login(user)
        url = f"/experiments/compare/?ids={experiment.pk}&ids={second.pk}"
        for suffix, label in (("", "compare"), ("&regressions=1", "compare, regressions only")):
            client.get(url + suffix)  # warm
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                response = client.get(url + suffix)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, response.status_code
            times.sort()
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            print(
                f"{label} ({args.examples} examples x 2 experiments): "
                f"p50 {statistics.median(times):.0f} ms, p95 {p95:.0f} ms"
            )
    finally:
        model.terminate()
        model.wait(timeout=10)


if __name__ == "__main__":
    main()
