"""Custom Python evaluators, run in a child process that the kernel confines.

``sandbox_run`` starts ``child.py`` (``python -I -B``, an empty environment, ``/`` as
its directory, a session and process group of its own, no descriptor but stdin, stdout and
stderr). Before it reads the code, the child drops to the sandbox user (``EVALHUB_SANDBOX_USER``,
default ``nobody``) when started as root, limits its CPU seconds, address space, threads, open
files and file size, and loads a seccomp filter that allows pure computation only: no new
process, no exec, no socket, no file written, linked, renamed or truncated, no signal or trace
to another process. See the runner's docstring and the README ("Isolation of code evaluators").

Fail closed: when the child cannot set all of that up (no seccomp, no way to switch user), it
refuses before running anything and ``SandboxResult.unavailable`` says why.

The parent reads the child's output with a byte cap and a wall-clock deadline, never waiting on
a pipe: at the deadline, or past the cap, it kills the whole process group. A timeout, a limit,
an exception or a bad return value becomes a ``SandboxResult`` with ``error``; nothing here
raises for them.

Only Celery workers call this (``evalhub.evaluators.sandbox.dispatch``): a web process never forks user code.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNNER = Path(__file__).with_name("child.py")  # run by path, as a file
RESULT_MARK = b"\x1eevalhub-result\x1e"
REFUSED_EXIT = 86  # child.REFUSED_EXIT
OUTPUT_LIMIT = 1024 * 1024  # bytes of stdout (the result line included)
STDERR_LIMIT = 64 * 1024
_SIGNALS = {
    signal.SIGXCPU: "the CPU time limit was reached",
    signal.SIGKILL: "killed (CPU or memory limit)",
    signal.SIGSEGV: "crashed (segmentation fault)",
    signal.SIGSYS: "killed by the system-call filter",
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
    # The sandbox cannot be set up on this host: no code ran, and none will until it is fixed.
    unavailable: bool = False


class SandboxUnavailable(Exception):
    pass


def _unavailable(reason: str) -> SandboxResult:
    return SandboxResult(
        error=f"custom code evaluators are refused on this host: {reason}",
        unavailable=True,
    )


def sandbox_identity(user: str) -> tuple[int, int]:
    """The uid and gid evaluator code runs as: ``user`` is a user name, ``uid`` or ``uid:gid``,
    or ``current`` (the worker's own user, refused if that is root)."""
    spec = user.strip()
    if spec == "current":
        return os.geteuid(), os.getegid()
    uid_text, _, gid_text = spec.partition(":")
    if uid_text.isdigit():
        uid = int(uid_text)
        if gid_text.isdigit():
            return uid, int(gid_text)
        try:
            return uid, pwd.getpwuid(uid).pw_gid
        except KeyError:
            return uid, uid
    try:
        entry = pwd.getpwnam(spec)
    except KeyError:
        raise SandboxUnavailable(f"EVALHUB_SANDBOX_USER={user!r}: no such user") from None
    return entry.pw_uid, entry.pw_gid


def _configured_user() -> str:
    from django.conf import settings

    return str(getattr(settings, "EVALHUB_SANDBOX_USER", "nobody"))


def sandbox_run(
    *,
    code: str,
    arguments: Mapping[str, Any],
    timeout_seconds: float = 5.0,
    memory_mb: int = 256,
    user: str | None = None,
) -> SandboxResult:
    """Run ``evaluate(**arguments)`` from ``code`` in a confined child process, as ``user``
    (default: the ``EVALHUB_SANDBOX_USER`` setting)."""
    try:
        uid, gid = sandbox_identity(user if user is not None else _configured_user())
    except SandboxUnavailable as exc:
        return _unavailable(str(exc))
    if uid == 0:
        return _unavailable("evaluator code never runs as root (EVALHUB_SANDBOX_USER)")
    payload = json.dumps({"code": code, "arguments": dict(arguments)}, default=str).encode()
    cpu_seconds = max(1, int(timeout_seconds) + 1)
    command = [
        sys.executable,
        "-I",
        "-B",
        str(RUNNER),
        str(uid),
        str(gid),
        str(cpu_seconds),
        str(memory_mb * 1024 * 1024),
    ]
    started = time.monotonic()
    deadline = started + timeout_seconds
    # No preexec_fn (unsafe in a threaded parent): the child confines itself before it reads.
    try:
        process = subprocess.Popen(  # noqa: S603 — a fixed command; the code goes in on stdin
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={},
            cwd="/",
            close_fds=True,
            start_new_session=True,
        )
    except OSError as exc:
        return _unavailable(f"could not start the sandbox process ({exc})")
    try:
        stdout, stderr, problem = _exchange(process, payload, deadline, timeout_seconds)
    except OSError as exc:  # no pidfd (Linux < 5.3)
        return _unavailable(f"could not watch the sandbox process ({exc})")
    finally:
        _kill(process)
    duration_ms = (time.monotonic() - started) * 1000
    if problem is not None:
        return SandboxResult(error=problem, duration_ms=duration_ms)
    record = _record(stdout)
    if record is not None and "refused" in record:
        return _unavailable(str(record["refused"]))
    if record is None:
        return SandboxResult(
            error=_death(process.returncode, stderr),
            traceback=stderr.decode(errors="replace").strip()[-2000:] or None,
            duration_ms=duration_ms,
        )
    return SandboxResult(
        label=record.get("label"),
        score=record.get("score"),
        explanation=record.get("explanation"),
        error=record.get("error"),
        traceback=record.get("traceback"),
        stdout=record.get("stdout", ""),
        duration_ms=duration_ms,
    )


class _OutputTooLarge(Exception):
    pass


class _Pipes:
    """The child's stdout and stderr, each read into a buffer with a byte cap."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout and process.stderr
        self.names = {process.stdout.fileno(): "stdout", process.stderr.fileno(): "stderr"}
        self.limits = {process.stdout.fileno(): OUTPUT_LIMIT, process.stderr.fileno(): STDERR_LIMIT}
        self.buffers = {fd: bytearray() for fd in self.names}
        self.open = set(self.names)
        for fd in self.names:
            os.set_blocking(fd, False)

    def read(self, fd: int) -> None:
        """Read what ``fd`` holds now (until it would block or closes)."""
        while fd in self.open:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                self.open.discard(fd)
                return
            self.buffers[fd] += chunk
            if len(self.buffers[fd]) > self.limits[fd]:
                raise _OutputTooLarge(
                    f"the evaluator wrote more than {self.limits[fd] // 1024} KiB to "
                    f"{self.names[fd]}"
                )


def _exchange(
    process: subprocess.Popen[bytes], payload: bytes, deadline: float, timeout: float
) -> tuple[bytes, bytes, str | None]:
    """Write ``payload`` to the child and read its stdout and stderr until it exits, the
    deadline passes or the output grows past its cap. Never blocks on a pipe: once the child
    has exited (its pidfd is readable) what its pipes hold is read and nothing more is awaited,
    whoever else might hold them."""
    assert process.stdin and process.stdout and process.stderr
    pipes = _Pipes(process)
    stdin = process.stdin.fileno()
    os.set_blocking(stdin, False)
    sent = 0
    pidfd = os.pidfd_open(process.pid)
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(pidfd, selectors.EVENT_READ)
            selector.register(stdin, selectors.EVENT_WRITE)
            for fd in pipes.open:
                selector.register(fd, selectors.EVENT_READ)
            exited = False
            while not exited:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return b"", b"", f"timed out after {timeout:g}s (wall clock)"
                for key, _events in selector.select(remaining):
                    if key.fd == pidfd:
                        exited = True
                    elif key.fd == stdin:
                        try:
                            sent += os.write(stdin, payload[sent : sent + 65536])
                        except BlockingIOError:
                            continue
                        except BrokenPipeError:
                            sent = len(payload)
                        if sent >= len(payload):
                            selector.unregister(stdin)
                            process.stdin.close()
                    else:
                        pipes.read(key.fd)
                        if key.fd not in pipes.open:
                            selector.unregister(key.fd)
            for fd in list(pipes.open):
                pipes.read(fd)
    except _OutputTooLarge as exc:
        return b"", b"", str(exc)
    finally:
        os.close(pidfd)
    stdout_fd, stderr_fd = process.stdout.fileno(), process.stderr.fileno()
    return bytes(pipes.buffers[stdout_fd]), bytes(pipes.buffers[stderr_fd]), None


def _record(stdout: bytes) -> dict[str, Any] | None:
    # split(b"\n"), not splitlines(): the mark itself holds \x1e, a line boundary to splitlines.
    marked = [line for line in stdout.split(b"\n") if line.startswith(RESULT_MARK)]
    if not marked:
        return None
    try:
        record = json.loads(marked[-1][len(RESULT_MARK) :])
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _death(code: int | None, stderr: bytes) -> str:
    if code is not None and code < 0:
        try:
            reason = _SIGNALS.get(signal.Signals(-code), f"killed by signal {-code}")
        except ValueError:
            reason = f"killed by signal {-code}"
    else:
        reason = f"exited with code {code}"
    if b"MemoryError" in stderr[-2000:]:
        reason = "the memory limit was reached (MemoryError)"
    return f"the evaluator process {reason}"


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the child's whole process group — before the child is reaped, so the group
    is still its own —, then reap it; close every pipe."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    # Stuck in the kernel past the timeout: reaped by a later wait.
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None and not pipe.closed:
            pipe.close()
