"""EvalHub's own servers in child processes, as production runs them: gunicorn with
``evalhub/gunicorn_conf.py`` and ``manage.py grpc_ingest``, on the test database. PostgreSQL
only: a child process sees what the test commits (``transactional_db``), which SQLite's
in-memory test database cannot offer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("a server in a child process needs the PostgreSQL test database")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(*, port: int | None = None) -> str:
    """The test database's URL (``port`` to reach it through something else)."""
    db = settings.DATABASES["default"]
    return (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{port or db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )


class ChildServer:
    """A server process with its output in a log file; ``stop()`` sends SIGTERM to its group."""

    name = "server"

    def __init__(self, tmp: Path, **env: str) -> None:
        self.tmp = tmp
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tmp / f"{self.name}-{uuid.uuid4().hex[:6]}.log"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DB_CONN_MAX_AGE": "0",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }

    def start(self) -> ChildServer:
        needs_postgresql()
        self.process = subprocess.Popen(
            self.argv(),
            cwd=ROOT,
            env=self.environment(),
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-8000:]

    def wait_until(self, ready: object, *, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if callable(ready) and ready():
                return
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.output()}")
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not come up in {timeout}s:\n{self.output()}")

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        return self.process.returncode


class Gunicorn(ChildServer):
    """``gunicorn -c evalhub/gunicorn_conf.py evalhub.wsgi`` on a free port."""

    name = "gunicorn"

    def __init__(self, tmp: Path, **env: str) -> None:
        super().__init__(tmp, **env)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(ROOT / "evalhub" / "gunicorn_conf.py"),
            "evalhub.wsgi",
        ]

    def environment(self) -> dict[str, str]:
        return {
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "1",
            **super().environment(),
        }

    def start(self) -> Gunicorn:
        super().start()

        def answers() -> bool:
            try:
                requests.get(f"{self.url}/healthz", timeout=2)
            except requests.RequestException:
                return False
            return True

        self.wait_until(answers)
        return self


class GrpcIngest(ChildServer):
    """``manage.py grpc_ingest`` with ``processes`` ingest processes."""

    name = "grpc_ingest"

    def __init__(self, tmp: Path, *, processes: int = 1, **env: str) -> None:
        super().__init__(tmp, **env)
        self.processes = processes
        self.port = free_port()
        self.endpoint = f"127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        return [
            sys.executable,
            str(ROOT / "manage.py"),
            "grpc_ingest",
            "--port",
            str(self.port),
            "--processes",
            str(self.processes),
            "--threads",
            "4",
        ]

    def start(self) -> GrpcIngest:
        super().start()
        self.wait_until(lambda: "OTLP/gRPC listening on " in self.output())
        return self

    def ingest_processes(self) -> list[int]:
        """The process ids of the ingest processes: the server's children that multiprocessing
        spawned (not its resource tracker)."""
        assert self.process is not None
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                    command = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                parent = int(stat.rsplit(")", 1)[1].split()[1])
                if parent == self.process.pid and b"spawn_main" in command:
                    children.append(int(entry.name))
        return children
