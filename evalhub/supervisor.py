"""Runs a few long-lived processes together for a single machine (``./dev run``): their output
interleaved with a name in front, and all of them stopped when one exits or on Ctrl-C.

Each child gets its own session, so a Ctrl-C in the terminal reaches only the supervisor, which
then stops every child once, with SIGTERM (graceful for gunicorn and Celery), and kills what is
still running after ``stop_timeout`` seconds.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TextIO

_COLOURS = ("36", "33", "35", "32", "34", "31")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    name: str
    argv: list[str]


def evalhub_processes(
    *,
    python: str,
    base_dir: Path,
    worker_concurrency: int = 2,
    queues: Sequence[str] = ("celery", "sandbox"),
) -> list[ProcessSpec]:
    """The web server, the OTLP/gRPC receiver, one Celery worker (consuming ``queues``: the
    default one and the one custom code evaluators are sent to) and Celery beat."""
    return [
        ProcessSpec(
            "web",
            [
                python,
                "-m",
                "gunicorn",
                "--config",
                str(base_dir / "evalhub" / "gunicorn_conf.py"),
                "evalhub.wsgi",
            ],
        ),
        ProcessSpec("grpc", [python, str(base_dir / "manage.py"), "grpc_ingest"]),
        ProcessSpec(
            "worker",
            [
                python,
                "-m",
                "celery",
                "--app",
                "evalhub",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(worker_concurrency),
                "--queues",
                ",".join(queues),
                "--hostname",
                "worker@%h",
            ],
        ),
        ProcessSpec("beat", [python, "-m", "celery", "--app", "evalhub", "beat", "-l", "INFO"]),
    ]


def _die_with_parent() -> None:
    """In the child (Linux): get SIGTERM if the supervisor itself is killed outright."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        cwd: Path,
        stream: TextIO | None = None,
        stop_timeout: float = 20.0,
    ) -> None:
        self.specs = list(specs)
        self.cwd = cwd
        self.stream = stream or sys.stdout
        self.stop_timeout = stop_timeout
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._width = max(len(spec.name) for spec in self.specs)
        self._colour = self.stream.isatty()

    def _prefix(self, index: int, name: str) -> str:
        label = f"{name:<{self._width}} |"
        if self._colour:
            return f"\033[{_COLOURS[index % len(_COLOURS)]}m{label}\033[0m "
        return f"{label} "

    def _write(self, prefix: str, line: str) -> None:
        with self._lock:
            self.stream.write(prefix + line.rstrip("\n") + "\n")
            self.stream.flush()

    def _pump(self, prefix: str, pipe: IO[str]) -> None:
        for line in pipe:
            self._write(prefix, line)
        pipe.close()

    def request_stop(self, *_args: object) -> None:
        self._stop.set()

    def run(self) -> int:
        """Start everything, wait, stop everything; the exit code of the first child to fail
        (0 when stopped by a signal)."""
        previous: dict[signal.Signals, Callable[..., object] | int | None] = {}
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, self.request_stop)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        children: list[tuple[str, subprocess.Popen[str]]] = []
        pumps: list[threading.Thread] = []
        exit_code = 0
        try:
            for index, spec in enumerate(self.specs):
                prefix = self._prefix(index, spec.name)
                process = subprocess.Popen(  # noqa: S603 - our own fixed commands
                    spec.argv,
                    cwd=self.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    errors="replace",
                    bufsize=1,
                    start_new_session=True,
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                )
                children.append((prefix, process))
                assert process.stdout is not None
                pump = threading.Thread(target=self._pump, args=(prefix, process.stdout))
                pump.daemon = True
                pump.start()
                pumps.append(pump)
            while not self._stop.is_set():
                for prefix, process in children:
                    code = process.poll()
                    if code is not None:
                        self._write(prefix, f"exited with code {code}; stopping the others")
                        exit_code = code or 1
                        self._stop.set()
                        break
                self._stop.wait(0.5)
        finally:
            self._stop_all(children)
            for pump in pumps:
                pump.join(timeout=2)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return exit_code

    def _stop_all(self, children: list[tuple[str, subprocess.Popen[str]]]) -> None:
        running = [(prefix, p) for prefix, p in children if p.poll() is None]
        for prefix, process in running:
            self._write(prefix, "stopping")
            process.terminate()
        deadline = time.monotonic() + self.stop_timeout
        for prefix, process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._write(prefix, f"still running after {self.stop_timeout:.0f}s; killing it")
                process.kill()
                process.wait()
