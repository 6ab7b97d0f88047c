"""Custom Python evaluators, run in a separate process.

The child (``sandbox_runner.py``, run with ``python -I -B``) gets no environment but ``PATH`` and
``LANG`` (no secrets, no ``DATABASE_URL``), sets its own CPU-seconds, address-space and
file-size limits (``resource.setrlimit``), and refuses network access,
subprocesses, file writes and reads outside the Python installation through an audit hook, so it
can reach neither the database nor the settings. The parent enforces a wall-clock timeout and
kills the child's whole process group. A timeout, a limit, an exception or a bad return value
becomes a ``SandboxResult`` with ``error`` (and the traceback); nothing here raises for them.

This is containment for code written by staff users, not a boundary against hostile code: for
that, run workers in a container with no credentials mounted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNNER = Path(__file__).with_name("sandbox_runner.py")
RESULT_MARK = "\x1eevalhub-result\x1e"
_SIGNALS = {
    signal.SIGXCPU: "the CPU time limit was reached",
    signal.SIGKILL: "killed (CPU or memory limit)",
    signal.SIGSEGV: "crashed (segmentation fault)",
}


@dataclass(frozen=True, slots=True)
class SandboxResult:
    label: str | None = None
    score: float | None = None
    explanation: str | None = None
    error: str | None = None
    traceback: str | None = None
    stdout: str = ""
    duration_ms: float = 0.0


def sandbox_run(
    *,
    code: str,
    arguments: Mapping[str, Any],
    timeout_seconds: float = 5.0,
    memory_mb: int = 256,
) -> SandboxResult:
    """Run ``evaluate(**arguments)`` from ``code`` in a limited child process."""
    payload = json.dumps({"code": code, "arguments": dict(arguments)}, default=str)
    cpu_seconds = max(1, int(timeout_seconds) + 1)
    command = [
        sys.executable,
        "-I",
        "-B",
        str(RUNNER),
        str(cpu_seconds),
        str(memory_mb * 1024 * 1024),
    ]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    started = time.monotonic()
    process = subprocess.Popen(  # noqa: S603 — a fixed command; the code goes in on stdin
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd="/",
        start_new_session=True,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(payload, timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        _kill(process)
        process.communicate()
        return SandboxResult(
            error=f"timed out after {timeout_seconds:g}s (wall clock)",
            duration_ms=(time.monotonic() - started) * 1000,
        )
    finally:
        if process.poll() is None:
            _kill(process)
    duration_ms = (time.monotonic() - started) * 1000
    # split("\n"), not splitlines(): the mark itself holds \x1e, a line boundary to splitlines.
    marked = [line for line in stdout.split("\n") if line.startswith(RESULT_MARK)]
    if not marked:
        code_ = process.returncode
        if code_ is not None and code_ < 0:
            reason = _SIGNALS.get(signal.Signals(-code_), f"killed by signal {-code_}")
        else:
            reason = f"exited with code {code_}"
        tail = stderr.strip()[-2000:]
        if "MemoryError" in tail:
            reason = "the memory limit was reached (MemoryError)"
        return SandboxResult(
            error=f"the evaluator process {reason}",
            traceback=tail or None,
            duration_ms=duration_ms,
        )
    data = json.loads(marked[-1][len(RESULT_MARK) :])
    return SandboxResult(
        label=data.get("label"),
        score=data.get("score"),
        explanation=data.get("explanation"),
        error=data.get("error"),
        traceback=data.get("traceback"),
        stdout=data.get("stdout", ""),
        duration_ms=duration_ms,
    )


def _kill(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()
