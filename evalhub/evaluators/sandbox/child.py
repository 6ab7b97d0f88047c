"""The child side of the custom-code sandbox, run as a script by ``evalhub.evaluators.sandbox.run`` with
``python -I -B`` and an empty environment; never imported by EvalHub itself.

Before it reads a byte of user code it confines itself with what the kernel enforces:

1. it imports what it and an evaluator may use (the Python installation need not be readable by
   the sandbox user);
2. started as root, it drops to the sandbox user: supplementary groups cleared, real, effective
   and saved uid and gid set, and it checks that it holds no capability and cannot get root back;
3. resource limits: CPU seconds, address space, threads (``RLIMIT_NPROC``), open files, no file
   size, no core file;
4. a seccomp filter (libseccomp, through ``pyseccomp``) that allows the system calls pure
   computation needs and fails every other with EPERM: no process creation, exec, socket, link,
   rename, unlink, mkdir, chmod, truncate, ptrace, mount, namespace, signal to another process,
   and ``open``/``openat`` only without write, create or truncate flags.

If any step fails it prints a ``refused`` record and exits with ``REFUSED_EXIT`` without running
the code: the parent reports the sandbox as unavailable (fail closed). Otherwise it reads the
payload from stdin, runs ``evaluate(input, output, metadata, reference, span)`` and prints one
JSON line after ``RESULT_MARK``.
"""

# Everything imported here is loaded before the sandbox user takes over: an evaluator may import
# these whether or not that user can read the Python installation. What they can do is decided
# by the kernel filter, not by whether they import (so the modules one would use to attack are
# here too, and fail where it matters).
import ast  # noqa: F401
import base64  # noqa: F401
import binascii  # noqa: F401
import bisect  # noqa: F401
import cmath  # noqa: F401
import collections  # noqa: F401
import copy  # noqa: F401
import csv  # noqa: F401
import ctypes  # noqa: F401
import dataclasses  # noqa: F401
import datetime  # noqa: F401
import decimal  # noqa: F401
import difflib  # noqa: F401
import encodings.ascii
import encodings.cp1252
import encodings.idna
import encodings.latin_1
import encodings.raw_unicode_escape
import encodings.unicode_escape
import encodings.utf_16
import encodings.utf_32  # noqa: F401
import enum  # noqa: F401
import errno
import fnmatch  # noqa: F401
import fractions  # noqa: F401
import functools  # noqa: F401
import hashlib  # noqa: F401
import heapq  # noqa: F401
import html  # noqa: F401
import io
import itertools  # noqa: F401
import json
import linecache
import math  # noqa: F401
import multiprocessing
import multiprocessing.popen_fork
import multiprocessing.popen_spawn_posix
import multiprocessing.util  # noqa: F401
import numbers  # noqa: F401
import operator  # noqa: F401
import os
import pathlib  # noqa: F401
import pprint  # noqa: F401
import pty  # noqa: F401
import random  # noqa: F401
import resource
import shutil  # noqa: F401
import signal  # noqa: F401
import socket  # noqa: F401
import statistics  # noqa: F401
import string  # noqa: F401
import struct  # noqa: F401
import subprocess  # noqa: F401
import sys
import tempfile  # noqa: F401
import textwrap  # noqa: F401
import threading  # noqa: F401
import time  # noqa: F401
import traceback
import typing  # noqa: F401
import unicodedata  # noqa: F401
import urllib.parse  # noqa: F401
import zlib  # noqa: F401

try:  # a ctypes binding: loads the host's libseccomp (and runs ldconfig) while that is allowed
    import pyseccomp
except (ImportError, RuntimeError, OSError) as _exc:
    pyseccomp = None
    _SECCOMP_MISSING = f"libseccomp is not available ({_exc})"

RESULT_MARK = "\x1eevalhub-result\x1e"
REFUSED_EXIT = 86
MAX_THREADS = 64  # RLIMIT_NPROC: tasks (threads) of the sandbox user, all sandboxes together
MAX_OPEN_FILES = 32
MAX_TEXT = 100_000  # characters kept of a label or an explanation

# The system calls an evaluator may make. Everything else fails with EPERM.
_ALLOWED = (
    # reading and writing already-open descriptors (stdin, stdout, stderr, files opened to read)
    "read", "readv", "pread64", "preadv", "preadv2", "write", "writev", "lseek", "close",
    "close_range", "dup", "dup2", "dup3", "fcntl", "pipe", "pipe2",
    # looking at files (read-only)
    "fstat", "newfstatat", "stat", "lstat", "statx", "statfs", "fstatfs", "access",
    "faccessat", "faccessat2", "readlink", "readlinkat", "getdents64", "getcwd", "chdir",
    "fchdir", "umask",
    # waiting
    "poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl", "epoll_wait",
    "epoll_pwait", "epoll_pwait2", "nanosleep", "clock_nanosleep", "sched_yield",
    "restart_syscall",
    # memory
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
    # threads of this process
    "futex", "set_robust_list", "get_robust_list", "rseq", "set_tid_address", "gettid",
    "sched_getaffinity", "exit",
    # about itself
    "getpid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid",
    "getgroups", "getpgrp", "getpgid", "getsid", "getrusage", "getrlimit", "times", "sysinfo",
    "uname", "getpriority", "getcpu",
    # time and randomness
    "clock_gettime", "clock_getres", "gettimeofday", "time", "getrandom",
    "getitimer", "setitimer", "alarm",
    # signals to itself
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
    "rt_sigsuspend", "sigaltstack",
    "exit_group",
)  # fmt: skip
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC
_CLONE_THREAD = 0x00010000
_TCGETS = 0x5401
_PR_GET_SECCOMP = 21
_PR_SET_NAME, _PR_GET_NAME = 15, 16
_SECCOMP_MODE_FILTER = 2


class Refused(Exception):
    """The sandbox could not be set up; the code must not run."""


def _drop_privileges(uid: int, gid: int) -> None:
    if os.geteuid() == uid:
        if uid == 0:
            raise Refused("evaluator code never runs as root")
    else:
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
        except PermissionError:
            raise Refused(
                f"this worker runs as uid {os.geteuid()}, which cannot switch to uid {uid} "
                "(run the worker as root, or set EVALHUB_SANDBOX_USER=current to run evaluator "
                "code as the worker's own user)"
            ) from None
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise Refused(f"the user switch did not hold: uid {os.getresuid()} gid {os.getresgid()}")
    if uid != 0:
        try:
            os.setuid(0)
        except PermissionError:
            pass
        else:
            raise Refused("the sandbox user could become root again")


def _limit(*, cpu_seconds: int, memory_bytes: int) -> None:
    limits = {
        resource.RLIMIT_CPU: (cpu_seconds, cpu_seconds + 1),
        resource.RLIMIT_AS: (memory_bytes, memory_bytes),
        resource.RLIMIT_NPROC: (MAX_THREADS, MAX_THREADS),
        resource.RLIMIT_NOFILE: (MAX_OPEN_FILES, MAX_OPEN_FILES),
        resource.RLIMIT_FSIZE: (0, 0),
        resource.RLIMIT_CORE: (0, 0),
        resource.RLIMIT_MEMLOCK: (0, 0),
        resource.RLIMIT_MSGQUEUE: (0, 0),
    }
    for which, (soft, hard) in limits.items():
        current_hard = resource.getrlimit(which)[1]
        if current_hard != resource.RLIM_INFINITY:
            hard = min(hard, current_hard)
        resource.setrlimit(which, (min(soft, hard), hard))


def _seccomp_load() -> None:
    seccomp = pyseccomp
    if seccomp is None:
        raise Refused(_SECCOMP_MISSING)
    pid = os.getpid()
    deny = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(deny)
    for name in _ALLOWED:
        rules.add_rule(seccomp.ALLOW, name)
    # Opening files to read only: no write access mode, no O_CREAT, no O_TRUNC.
    read_only = (_WRITE_FLAGS, 0)
    rules.add_rule(seccomp.ALLOW, "open", seccomp.Arg(1, seccomp.MASKED_EQ, *read_only))
    rules.add_rule(seccomp.ALLOW, "openat", seccomp.Arg(2, seccomp.MASKED_EQ, *read_only))
    # Threads, not processes: clone only with CLONE_THREAD; clone3 (whose flags sit behind a
    # pointer the filter cannot read) says ENOSYS so the C library falls back to clone.
    rules.add_rule(
        seccomp.ALLOW, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, _CLONE_THREAD, _CLONE_THREAD)
    )
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "openat2")
    # Signals and limits: this process only.
    rules.add_rule(seccomp.ALLOW, "kill", seccomp.Arg(0, seccomp.EQ, pid))
    rules.add_rule(seccomp.ALLOW, "tgkill", seccomp.Arg(0, seccomp.EQ, pid))
    rules.add_rule(seccomp.ALLOW, "prlimit64", seccomp.Arg(0, seccomp.EQ, 0))
    rules.add_rule(seccomp.ALLOW, "ioctl", seccomp.Arg(1, seccomp.EQ, _TCGETS))  # isatty()
    for option in (_PR_GET_SECCOMP, _PR_SET_NAME, _PR_GET_NAME):
        rules.add_rule(seccomp.ALLOW, "prctl", seccomp.Arg(0, seccomp.EQ, option))
    try:
        rules.load()  # sets no_new_privs first
    except OSError as exc:
        raise Refused(f"the kernel refused the seccomp filter ({exc})") from None


def _verify(uid: int) -> None:
    """Read back from the kernel what the steps above should have done."""
    with open("/proc/self/status", "rb") as status:
        lines = status.read().decode().splitlines()
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    if fields.get("Seccomp", "").strip() != str(_SECCOMP_MODE_FILTER):
        raise Refused("the seccomp filter is not in force")
    if fields.get("NoNewPrivs", "").strip() != "1":
        raise Refused("no_new_privs is not set")
    if uid != 0 and int(fields.get("CapEff", "0").strip(), 16) != 0:
        raise Refused("the sandbox user still holds capabilities")


def _clean(value, what):
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"{what} must be a string or number, not {type(value).__name__}")


def _outcome(returned):
    if isinstance(returned, dict):
        unknown = set(returned) - {"label", "score", "explanation"}
        if unknown:
            raise TypeError(f"evaluate() returned unknown keys: {', '.join(sorted(unknown))}")
        label = _clean(returned.get("label"), "label")
        score = _clean(returned.get("score"), "score")
        explanation = _clean(returned.get("explanation"), "explanation")
    elif isinstance(returned, bool):
        label, score, explanation = str(returned).lower(), float(returned), None
    elif isinstance(returned, int | float):
        label, score, explanation = None, returned, None
    elif isinstance(returned, str):
        label, score, explanation = returned, None, None
    else:
        raise TypeError(
            "evaluate() must return a dict with label/score/explanation, a number, "
            f"a bool or a string, not {type(returned).__name__}"
        )
    if score is not None and not isinstance(score, int | float):
        raise TypeError("score must be a number")
    return {
        "label": None if label is None else str(label)[:MAX_TEXT],
        "score": None if score is None else float(score),
        "explanation": None if explanation is None else str(explanation)[:MAX_TEXT],
    }


def _emit(stream, record: dict) -> None:
    stream.write(RESULT_MARK + json.dumps(record) + "\n")
    stream.flush()


def main() -> None:
    uid, gid, cpu_seconds, memory_bytes = (int(arg) for arg in sys.argv[1:5])
    real_stdout = sys.stdout
    os.environ.clear()
    try:
        _drop_privileges(uid, gid)
        _limit(cpu_seconds=cpu_seconds, memory_bytes=memory_bytes)
        _seccomp_load()
        _verify(uid)
    except Refused as exc:
        _emit(real_stdout, {"refused": str(exc)})
        sys.exit(REFUSED_EXIT)
    except Exception as exc:
        _emit(real_stdout, {"refused": f"could not set up the sandbox: {exc!r}"})
        sys.exit(REFUSED_EXIT)

    payload = json.loads(sys.stdin.read())
    source = payload["code"]
    # Tracebacks show the evaluator's own lines.
    linecache.cache["<evaluator>"] = (len(source), None, source.splitlines(True), "<evaluator>")
    sys.stdout = sys.stderr = captured = io.StringIO()
    result: dict
    try:
        namespace: dict = {"__name__": "evaluator"}
        exec(compile(source, "<evaluator>", "exec"), namespace)  # noqa: S102
        evaluate = namespace.get("evaluate")
        if not callable(evaluate):
            raise NameError(
                "the code defines no evaluate(input, output, metadata, reference, span)"
            )
        result = _outcome(evaluate(**payload["arguments"]))
    except BaseException as exc:
        # Free what the code held (an unbounded allocation) before formatting anything.
        traceback.clear_frames(exc.__traceback__)
        lines = traceback.format_exception(exc)
        # Keep the user's frames: drop the runner's own.
        kept = [lines[0]] + [line for line in lines[1:] if "sandbox/child.py" not in line]
        result = {"error": f"{type(exc).__name__}: {exc}"[:MAX_TEXT], "traceback": "".join(kept)}
    result["stdout"] = captured.getvalue()[-2000:]
    _emit(real_stdout, result)
    os._exit(0)  # not waiting for threads the code left running


if __name__ == "__main__":
    main()
