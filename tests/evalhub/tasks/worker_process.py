"""A real Celery worker (with its beat) in a child process, on the test database and a Redis
broker of its own — for the online-task integration tests. PostgreSQL only: the worker must
see what the test commits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[3]
# Parallel checkouts on one machine each take their own database (EVALHUB_TEST_REDIS_DB).
BROKER_DB = int(os.environ.get("EVALHUB_TEST_REDIS_DB", "9"))


def redis_url() -> str:
    return os.environ.get("EVALHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379") + f"/{BROKER_DB}"


class Worker:
    """``start()`` / ``kill()`` (SIGKILL to the whole process group, as when a machine dies)."""

    def __init__(self, tmp: Path, *, queues: str = "celery", beat: bool = True, **env: str) -> None:
        self.tmp = tmp
        self.queues = queues
        self.beat = beat
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tmp / f"worker-{uuid.uuid4().hex[:6]}.log"

    def _environment(self) -> dict[str, str]:
        db = settings.DATABASES["default"]
        url = (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
        return {
            **os.environ,
            "DATABASE_URL": url,
            "CELERY_BROKER_URL": redis_url(),
            "REDIS_URL": redis_url(),
            "EVALHUB_TASKS_TICK_SECONDS": "1",
            "EVALHUB_RUNS_SWEEP_SECONDS": "1",
            "EVALHUB_RUN_LEASE_SECONDS": "3",
            "EVALHUB_RUN_SLICE_SECONDS": "20",
            "EVALHUB_TASK_LATE_COMMIT_SECONDS": "30",
            "EVALHUB_LLM_MAX_BACKOFF_SECONDS": "1",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            # Not root (a developer's checkout): evaluator code cannot drop to another user.
            **({} if os.geteuid() == 0 else {"EVALHUB_SANDBOX_USER": "current"}),
            **self.env,
        }

    def start(self) -> Worker:
        assert connection.vendor == "postgresql"
        schedule = self.tmp / f"beat-{uuid.uuid4().hex[:6]}"
        beat = ["--beat", "--schedule", str(schedule)] if self.beat else []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "--app",
                "evalhub",
                "worker",
                *beat,
                "--queues",
                self.queues,
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "--hostname",
                f"test-{uuid.uuid4().hex[:6]}@%h",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=self._environment(),
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


def broker_flush() -> None:
    redis.Redis.from_url(redis_url()).flushdb()


def wait_for(condition: Callable[[], object], *, timeout: float, worker: Worker) -> object:
    """Poll ``condition`` until truthy; on timeout fail with the worker's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if worker.process is not None and worker.process.poll() is not None:
            raise AssertionError(f"the worker exited:\n{worker.output()}")
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s; worker log:\n{worker.output()}")
