"""Custom code evaluators against escape attempts (issue 11): process creation by every route
Python offers, file writes and links, the parent's environment and EvalHub's secrets, the
network, resource exhaustion, signals and traces to other processes, raw system calls through
ctypes. Each attempt is one test: it must end as an error result (or a result that proves the
action failed), and the test then checks that the side effect did not happen — a world-writable
file and directory untouched, no connection or datagram at a listener of the test, no process
of the sandbox user left, the parent's memory bounded.

The corpus runs through ``sandbox_run`` (what a worker does) and, for representative attempts,
through the web paths — the playground page, ``/v1/evaluators/{id}/run`` and "Test task" — with a
real Celery worker, checking that the web process never forks the code itself.

CI runs as root, where the code drops to ``nobody``. As another user the code cannot switch
users (``EVALHUB_SANDBOX_USER=current``, set by the suite's conftest); only the attempts on
secrets that the switch protects are skipped then.
"""

from __future__ import annotations

import errno
import html
import json
import os
import re
import resource
import shutil
import socket
import stat
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from evalhub.evaluators.models import Evaluator
from evalhub.evaluators.running import evaluator_run
from evalhub.evaluators.sandbox.run import OUTPUT_LIMIT, SandboxResult, sandbox_run
from evalhub.evaluators.selectors import evaluator_version_latest
from evalhub.evaluators.services import evaluator_create
from tests import factories
from tests.evalhub.tasks.worker_process import Worker

ROOT = os.geteuid() == 0
ARGS = {"input": "q", "output": "a", "metadata": {}, "reference": None, "span": {}}
NOBODY = 65534
VICTIM_TEXT = "untouched\n"


@dataclass
class Target:
    """What an attempt aims at: a world-writable directory and file (so only the sandbox stands
    in the way), a TCP listener and a UDP socket on loopback."""

    directory: Path
    victim: Path
    tcp: socket.socket
    udp: socket.socket
    marker: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Processes of the sandbox user before the attempt (a host may run a daemon as nobody).
    sandbox_user_processes: set[int] = field(default_factory=lambda: _processes_of(NOBODY))

    def values(self) -> dict[str, object]:
        return {
            "dir": str(self.directory),
            "victim": str(self.victim),
            "tcp_port": self.tcp.getsockname()[1],
            "udp_port": self.udp.getsockname()[1],
            "marker": self.marker,
            "var": str(settings.VAR_DIR),
        }

    def assert_untouched(self) -> None:
        assert self.victim.read_text() == VICTIM_TEXT
        assert stat.S_IMODE(self.victim.stat().st_mode) == 0o666
        assert sorted(p.name for p in self.directory.iterdir()) == ["victim.txt"]
        assert not Path(f"/dev/shm/evalhub-{self.marker}").exists()
        with pytest.raises(BlockingIOError):
            self.tcp.accept()  # nobody connected
        with pytest.raises(BlockingIOError):
            self.udp.recv(1024)  # nothing sent
        if ROOT:
            assert _processes_of(NOBODY) - self.sandbox_user_processes == set()


def _processes_of(uid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        uids = next(line for line in status.splitlines() if line.startswith("Uid:"))
        if int(uids.split()[1]) == uid:
            found.add(int(entry.name))
    return found


@pytest.fixture
def target() -> Iterator[Target]:
    directory = Path(tempfile.mkdtemp(prefix="evalhub-escape-", dir="/tmp"))
    directory.chmod(0o777)
    victim = directory / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    victim.chmod(0o666)
    tcp = socket.create_server(("127.0.0.1", 0))
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    try:
        yield Target(directory=directory, victim=victim, tcp=tcp, udp=udp)
    finally:
        tcp.close()
        udp.close()
        shutil.rmtree(directory, ignore_errors=True)


def _evaluator(body: str, values: dict[str, object]) -> str:
    """``body`` (with ``{placeholders}`` from ``Target.values``) as ``evaluate``'s body."""
    text = body.format(**values)
    indented = "\n".join("    " + line for line in text.splitlines())
    return (
        "import ctypes, os, signal, socket, sys\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "def evaluate(input, output, metadata, reference, span):\n" + indented + "\n"
    )


def _said(result: SandboxResult) -> str:
    return " ".join(
        str(part or "")
        for part in (
            result.label,
            result.explanation,
            result.error,
            result.traceback,
            result.stdout,
        )
    )


# --- what each attempt must end as ---------------------------------------------------------


def denied(*fragments: str) -> Callable[[SandboxResult], None]:
    """An error result naming one of ``fragments`` (default: the kernel's EPERM)."""
    wanted = fragments or ("PermissionError: [Errno 1] Operation not permitted",)

    def check(result: SandboxResult) -> None:
        assert result.error is not None, f"the attempt succeeded: {result}"
        assert not result.unavailable, result.error
        assert any(f in result.error for f in wanted), result.error

    return check


def returned(label: str) -> Callable[[SandboxResult], None]:
    """A harmless result that proves the call failed (e.g. ``(-1, errno)`` from libc)."""

    def check(result: SandboxResult) -> None:
        assert result.error is None, result.error
        assert result.label == label

    return check


def syscall_failed(number: int) -> Callable[[SandboxResult], None]:
    return returned(str((-1, number)))


def shell_not_started(result: SandboxResult) -> None:
    # glibc's system() reports a shell it could not start as exit status 127 (127 << 8); a
    # shell that ran ``exit 0`` would give 0.
    assert result.error is None, result.error
    assert result.score == 127 << 8


@dataclass(frozen=True)
class Attempt:
    id: str
    body: str
    check: Callable[[SandboxResult], None]
    root_only: bool = False  # what it reads is protected by the switch to another user
    timeout: float = 5.0
    memory_mb: int = 256


EPERM, ENOSYS = errno.EPERM, errno.ENOSYS
SYSCALL = "r = libc.syscall({args})\nreturn str((r, ctypes.get_errno()))"

PROCESSES = [
    Attempt("os-fork", "os.fork()\nreturn 'forked'", denied()),
    Attempt("fork-bomb", "while True:\n    os.fork()", denied()),
    Attempt("os-forkpty", "os.forkpty()\nreturn 'forked'", denied("OSError", "PermissionError")),
    Attempt("os-system", "return os.system('exit 0')", shell_not_started),
    Attempt("os-popen", "return os.popen('echo pwned').read()", denied()),
    Attempt(
        "subprocess-run",
        "import subprocess\nreturn subprocess.run(['/usr/bin/id'], capture_output=True).stdout",
        denied(),
    ),
    Attempt(
        "subprocess-shell",
        "import subprocess\nreturn subprocess.check_output('id', shell=True).decode()",
        denied(),
    ),
    Attempt("posix-spawn", "return os.posix_spawn('/usr/bin/id', ['id'], {{}})", denied()),
    Attempt("posix-spawnp", "return os.posix_spawnp('id', ['id'], {{}})", denied()),
    Attempt(
        "posixsubprocess-fork-exec",
        "import _posixsubprocess\n"
        "r, w = os.pipe()\n"
        "return _posixsubprocess.fork_exec([b'/usr/bin/id'], [b'/usr/bin/id'], True, (), None,"
        " None, -1, -1, -1, -1, -1, -1, r, w, False, False, -1, None, None, None, -1, None,"
        " False)",
        denied(),
    ),
    Attempt(
        "multiprocessing-process",
        "import multiprocessing\n"
        "p = multiprocessing.get_context('fork').Process(target=print)\n"
        "p.start()\np.join()\nreturn p.exitcode",
        denied(),
    ),
    Attempt(
        "multiprocessing-spawnv-passfds",
        "import multiprocessing.util as util\n"
        "exe = sys.executable.encode()\n"
        "return util.spawnv_passfds(exe, [exe, b'-c', b'1'], [])",
        denied(),
    ),
    Attempt("os-execv", "os.execv('/bin/sh', ['sh', '-c', 'exit 0'])", denied()),
    Attempt("os-execve", "os.execve('/usr/bin/id', ['id'], {{}})", denied()),
    Attempt("pty-spawn", "import pty\npty.spawn('/bin/sh')\nreturn 1", denied("OSError")),
    Attempt("ctypes-fork", "r = libc.fork()\nreturn str((r, ctypes.get_errno()))", syscall_failed(EPERM)),
    Attempt("ctypes-vfork", "r = libc.vfork()\nreturn str((r, ctypes.get_errno()))", syscall_failed(EPERM)),
    Attempt(
        "ctypes-execve",
        "argv = (ctypes.c_char_p * 2)(b'/usr/bin/id', None)\n"
        "r = libc.execve(b'/usr/bin/id', argv, None)\nreturn str((r, ctypes.get_errno()))",
        syscall_failed(EPERM),
    ),
    Attempt("syscall-fork", SYSCALL.format(args=57), syscall_failed(EPERM)),
    Attempt("syscall-vfork", SYSCALL.format(args=58), syscall_failed(EPERM)),
    Attempt("syscall-clone", SYSCALL.format(args="56, 17, 0, 0, 0, 0"), syscall_failed(EPERM)),
    Attempt("syscall-clone3", SYSCALL.format(args="435, 0, 0"), syscall_failed(ENOSYS)),
    Attempt("syscall-execve", SYSCALL.format(args="59, b'/usr/bin/id', 0, 0"), syscall_failed(EPERM)),
    Attempt("syscall-execveat", SYSCALL.format(args="322, -100, b'/usr/bin/id', 0, 0, 0"), syscall_failed(EPERM)),
    # A 32-bit (x32) system-call number: not of the filter's architecture, the process is killed.
    Attempt("syscall-x32-fork", SYSCALL.format(args="0x40000000 + 57"), denied("killed by the system-call filter")),
    Attempt("syscall-io-uring", SYSCALL.format(args="425, 8, 0"), syscall_failed(EPERM)),
    Attempt("unshare-user-namespace", "os.unshare(os.CLONE_NEWUSER)\nreturn 1", denied()),
    Attempt("setuid-root", "os.setuid(0)\nreturn 1", denied()),
    Attempt("syscall-mount", SYSCALL.format(args="165, b'none', b'/tmp', b'tmpfs', 0, 0"), syscall_failed(EPERM)),
    Attempt("syscall-chroot", SYSCALL.format(args="161, b'/tmp'"), syscall_failed(EPERM)),
]  # fmt: skip

FILES = [
    Attempt("open-write", "open('{victim}', 'w').write('pwned')\nreturn 1", denied()),
    Attempt("open-append", "open('{victim}', 'a').write('pwned')\nreturn 1", denied()),
    Attempt("open-read-write", "os.open('{victim}', os.O_RDWR)\nreturn 1", denied()),
    Attempt("create-in-tmp", "open('{dir}/new.txt', 'x').write('pwned')\nreturn 1", denied()),
    Attempt("create-read-only-ocreat", "os.open('{dir}/new.txt', os.O_RDONLY | os.O_CREAT)\nreturn 1", denied()),
    Attempt("truncate-read-only-otrunc", "os.open('{victim}', os.O_RDONLY | os.O_TRUNC)\nreturn 1", denied()),
    Attempt("dev-shm", "open('/dev/shm/evalhub-{marker}', 'w').write('pwned')\nreturn 1", denied()),
    Attempt("os-link", "os.link('{victim}', '{dir}/hard')\nreturn 1", denied()),
    Attempt("os-link-etc", "os.link('/etc/passwd', '{dir}/passwd')\nreturn 1", denied()),
    Attempt("os-symlink", "os.symlink('/etc/passwd', '{dir}/sym')\nreturn 1", denied()),
    Attempt("os-truncate", "os.truncate('{victim}', 0)\nreturn 1", denied()),
    Attempt(
        "os-ftruncate",
        "fd = os.open('{victim}', os.O_RDONLY)\nos.ftruncate(fd, 0)\nreturn 1",
        denied(),
    ),
    Attempt("os-mkfifo", "os.mkfifo('{dir}/fifo')\nreturn 1", denied()),
    Attempt("os-mknod", "os.mknod('{dir}/node')\nreturn 1", denied()),
    Attempt("os-mkdir", "os.mkdir('{dir}/sub')\nreturn 1", denied()),
    Attempt("os-rename", "os.rename('{victim}', '{dir}/moved')\nreturn 1", denied()),
    Attempt("os-unlink", "os.unlink('{victim}')\nreturn 1", denied()),
    Attempt("os-chmod", "os.chmod('{victim}', 0o777)\nreturn 1", denied()),
    Attempt("os-utime", "os.utime('{victim}', (0, 0))\nreturn 1", denied()),
    Attempt("tempfile", "import tempfile\ntempfile.mkstemp(dir='{dir}')\nreturn 1", denied()),
    Attempt("proc-self-mem", "open('/proc/self/mem', 'r+b')\nreturn 1", denied()),
    Attempt("memfd", "os.memfd_create('x')\nreturn 1", denied()),
]  # fmt: skip

SECRETS = [
    Attempt("environment-empty", "return repr(dict(os.environ))", returned("{}")),
    Attempt(
        "parent-environ",
        "return open('/proc/%d/environ' % os.getppid(), 'rb').read().decode()",
        denied("PermissionError: [Errno 13] Permission denied"),
        root_only=True,
    ),
    Attempt(
        "init-environ",
        "return open('/proc/1/environ', 'rb').read().decode()",
        denied("PermissionError: [Errno 13] Permission denied"),
        root_only=True,
    ),
    Attempt(
        "secret-key-file",
        "return open('{var}/secret_key').read()",
        denied("PermissionError: [Errno 13] Permission denied"),
        root_only=True,
    ),
    Attempt(
        "var-directory",
        "return ','.join(os.listdir('{var}'))",
        denied("PermissionError: [Errno 13] Permission denied"),
        root_only=True,
    ),
    Attempt(
        "settings-import",
        "import evalhub.settings as s\nreturn s.SECRET_KEY",
        denied("Error"),
        root_only=True,
    ),
    Attempt("ptrace-parent", "r = libc.ptrace(16, os.getppid(), 0, 0)\nreturn str((r, ctypes.get_errno()))", syscall_failed(EPERM)),
    Attempt(
        "process-vm-readv-parent",
        "buf = ctypes.create_string_buffer(64)\n"
        "class Iov(ctypes.Structure):\n"
        "    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]\n"
        "local, remote = Iov(ctypes.addressof(buf), 64), Iov(0x400000, 64)\n"
        "r = libc.process_vm_readv(os.getppid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)\n"
        "return str((r, ctypes.get_errno()))",
        syscall_failed(EPERM),
    ),
    Attempt("kill-parent", "os.kill(os.getppid(), signal.SIGKILL)\nreturn 1", denied()),
    Attempt("kill-everything", "os.kill(-1, signal.SIGKILL)\nreturn 1", denied()),
    Attempt("kill-init", "os.kill(1, signal.SIGTERM)\nreturn 1", denied()),
]  # fmt: skip

NETWORK = [
    Attempt("tcp-listener", "socket.create_connection(('127.0.0.1', {tcp_port}), timeout=2)\nreturn 1", denied()),
    Attempt("tcp-postgresql", "socket.create_connection(('127.0.0.1', 5432), timeout=2)\nreturn 1", denied()),
    Attempt("tcp-redis", "socket.create_connection(('127.0.0.1', 6379), timeout=2)\nreturn 1", denied()),
    Attempt(
        "udp-datagram",
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.sendto(b'leak', ('127.0.0.1', {udp_port}))\nreturn 1",
        denied(),
    ),
    Attempt(
        "dns-lookup",
        "return str(socket.getaddrinfo('evalhub-sandbox-test.example.com', 443))",
        denied("gaierror"),
    ),
    Attempt(
        "raw-socket",
        "socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\nreturn 1",
        denied(),
    ),
    Attempt(
        "unix-socket-postgresql",
        "s = socket.socket(socket.AF_UNIX)\ns.connect('/var/run/postgresql/.s.PGSQL.5432')\nreturn 1",
        denied(),
    ),
    Attempt("socketpair", "socket.socketpair()\nreturn 1", denied()),
    Attempt("syscall-socket", SYSCALL.format(args="41, 2, 1, 0"), syscall_failed(EPERM)),
]  # fmt: skip

RESOURCES = [
    Attempt(
        "memory-bomb",
        "blocks = []\nwhile True:\n    blocks.append(bytearray(10**7))",
        denied("MemoryError", "memory"),
        timeout=10,
        memory_mb=128,
    ),
    Attempt(
        "cpu-loop",
        "while True:\n    pass",
        denied("timed out after 1s", "CPU time limit"),
        timeout=1,
    ),
    Attempt("sleep", "import time\ntime.sleep(60)", denied("timed out after 1s"), timeout=1),
    Attempt(
        "pipes-closed-then-loop",
        "os.close(1)\nos.close(2)\nwhile True:\n    pass",
        denied("timed out after 1s", "CPU time limit"),
        timeout=1,
    ),
    Attempt(
        "stdout-400-mib",
        "chunk = b'x' * 2**20\nfor _ in range(400):\n    os.write(1, chunk)\nreturn 1",
        denied(f"more than {OUTPUT_LIMIT // 1024} KiB to stdout"),
    ),
    Attempt(
        "stderr-flood",
        "chunk = 'x' * 2**20\nfor _ in range(400):\n    sys.__stderr__.write(chunk)\nreturn 1",
        denied("KiB to stderr"),
    ),
    Attempt(
        "many-threads",
        "import threading\nstop = threading.Event()\n"
        "for _ in range(500):\n    threading.Thread(target=stop.wait).start()\nreturn 1",
        denied("can't start new thread"),
    ),
    Attempt(
        "many-open-files",
        "files = [open('/etc/hostname') for _ in range(10000)]\nreturn 1",
        denied("Too many open files"),
    ),
]  # fmt: skip

CORPUS = PROCESSES + FILES + SECRETS + NETWORK + RESOURCES


def _attempt(attempt: Attempt, target: Target) -> SandboxResult:
    if attempt.root_only and not ROOT:
        pytest.skip("reading another user's files needs the switch to the sandbox user (root)")
    code = _evaluator(attempt.body, target.values())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = sandbox_run(
        code=code,
        arguments=ARGS,
        timeout_seconds=attempt.timeout,
        memory_mb=attempt.memory_mb,
    )
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 64 * 1024, f"the parent grew by {grown_kib} KiB"
    # Returned within its deadline (plus start-up and the kill), never hanging on a pipe.
    assert result.duration_ms < (attempt.timeout + 20) * 1000
    return result


@pytest.mark.parametrize("attempt", CORPUS, ids=[a.id for a in CORPUS])
def test_escape_attempt_fails(attempt: Attempt, target: Target) -> None:
    result = _attempt(attempt, target)
    attempt.check(result)
    target.assert_untouched()
    # Nothing secret came back in any field.
    said = _said(result)
    if ROOT:
        assert "PATH=" not in said and "DATABASE_URL" not in said
        assert (settings.VAR_DIR / "secret_key").read_text().strip() not in said


def test_the_corpus_has_one_id_per_attempt() -> None:
    ids = [a.id for a in CORPUS]
    assert len(ids) == len(set(ids)) >= 70


# --- what still works ------------------------------------------------------------------------


def test_pure_computation_threads_and_reading_still_work(target: Target) -> None:
    code = _evaluator(
        "import json, re, statistics, threading\n"
        "out = []\n"
        "threads = [threading.Thread(target=out.append, args=(i,)) for i in range(4)]\n"
        "[t.start() for t in threads]\n[t.join() for t in threads]\n"
        "text = open('{victim}').read()\n"
        "return {{'label': text.strip(), 'score': statistics.mean(sorted(out)),"
        " 'explanation': json.dumps(re.findall('t+', text))}}",
        target.values(),
    )
    result = sandbox_run(code=code, arguments=ARGS)
    assert result.error is None, result.traceback
    assert (result.label, result.score, result.explanation) == ("untouched", 1.5, '["t"]')


@pytest.mark.skipif(not ROOT, reason="the switch to another user needs root")
def test_the_code_runs_as_nobody_with_no_groups_capabilities_or_environment() -> None:
    code = (
        "import os\n"
        "def evaluate(**kw):\n"
        "    status = open('/proc/self/status').read()\n"
        "    caps = [l for l in status.splitlines() if l.startswith(('CapEff', 'Seccomp:'))]\n"
        "    return repr((os.getresuid(), os.getresgid(), os.getgroups(), caps, dict(os.environ), os.getcwd()))\n"
    )  # fmt: skip
    result = sandbox_run(code=code, arguments=ARGS)
    assert result.error is None, result.traceback
    assert result.label == repr(
        (
            (NOBODY, NOBODY, NOBODY),
            (NOBODY, NOBODY, NOBODY),
            [],
            ["CapEff:\t0000000000000000", "Seccomp:\t2"],
            {},
            "/",
        )
    )


# --- fail closed -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "reason"),
    [
        ("no-such-user-evalhub", "EVALHUB_SANDBOX_USER='no-such-user-evalhub': no such user"),
        ("0", "evaluator code never runs as root (EVALHUB_SANDBOX_USER)"),
        ("0:0", "evaluator code never runs as root (EVALHUB_SANDBOX_USER)"),
    ],
)
def test_without_a_safe_user_the_code_is_refused(user: str, reason: str, target: Target) -> None:
    code = _evaluator("open('{dir}/ran', 'x')\nreturn 1", target.values())
    result = sandbox_run(code=code, arguments=ARGS, user=user)
    assert result.unavailable
    assert result.error == f"custom code evaluators are refused on this host: {reason}"
    target.assert_untouched()


@pytest.mark.skipif(not ROOT, reason="as root, 'current' would be root")
def test_the_worker_own_user_is_refused_when_it_is_root(target: Target) -> None:
    result = sandbox_run(code=_evaluator("return 1", {}), arguments=ARGS, user="current")
    assert result.unavailable
    assert "never runs as root" in result.error


if not ROOT:  # only a worker that is not root cannot switch users (CI runs as root)

    def test_a_worker_that_cannot_switch_users_refuses_instead_of_running_as_itself() -> None:
        result = sandbox_run(code=_evaluator("return 1", {}), arguments=ARGS, user="nobody")
        assert result.unavailable
        assert "cannot switch to uid" in result.error


def test_signals_reach_the_process_group_at_the_deadline(target: Target) -> None:
    """The deadline kills the whole group: nothing of the sandbox user is left behind."""
    code = _evaluator("import time\ntime.sleep(30)", target.values())
    result = sandbox_run(code=code, arguments=ARGS, timeout_seconds=0.5)
    assert result.error == "timed out after 0.5s (wall clock)"
    target.assert_untouched()


def test_a_killed_child_is_reported(target: Target) -> None:
    code = _evaluator("os.kill(os.getpid(), signal.SIGKILL)", target.values())
    result = sandbox_run(code=code, arguments=ARGS)
    assert result.error == "the evaluator process killed (CPU or memory limit)"
    target.assert_untouched()


# --- through the web: the playground page, /v1 and "Test task", answered by a real worker --------

ATTEMPTS = {a.id: a for a in CORPUS}
THROUGH_THE_WEB = [
    "posixsubprocess-fork-exec",
    "multiprocessing-spawnv-passfds",
    "os-link",
    "open-write",
    "tcp-postgresql",
    "dns-lookup",
    "parent-environ",
    "secret-key-file",
    "stdout-400-mib",
]


def web(test: Callable[..., None]) -> Callable[..., None]:
    """A test of the web paths with a real worker, which must see what the test commits."""
    test = pytest.mark.django_db(transaction=True)(test)
    needs = pytest.mark.skipif(
        connection.vendor != "postgresql", reason="a worker process needs PostgreSQL"
    )
    return needs(test)


@pytest.fixture(scope="module")
def sandbox_worker(tmp_path_factory, django_db_setup, django_db_blocker) -> Iterator[Worker]:  # type: ignore[no-untyped-def]
    """A Celery worker consuming only the sandbox queue of this process's broker (empty: the
    same filesystem broker under var/, which settings set up only when no URL is given)."""
    broker = "" if settings.CELERY_BROKER_URL == "filesystem://" else settings.CELERY_BROKER_URL
    worker = Worker(
        tmp_path_factory.mktemp("sandbox-worker"),
        queues=settings.EVALHUB_SANDBOX_QUEUE,
        beat=False,
        CELERY_BROKER_URL=broker,
        CELERY_RESULT_BACKEND=settings.CELERY_RESULT_BACKEND,
        REDIS_URL=settings.REDIS_URL or "",
    ).start()
    yield worker
    worker.stop()


@pytest.fixture
def web_process(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """This process is a web process: were it to run the sandbox or start any child process,
    the test would fail."""
    from evalhub.evaluators.sandbox import dispatch as custom_code
    from evalhub.evaluators.sandbox import run as sandbox

    assert not custom_code.runs_here()

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("custom code was started in the web process")

    monkeypatch.setattr(custom_code, "sandbox_run", forbidden)
    monkeypatch.setattr(sandbox.subprocess, "Popen", forbidden)


@pytest.fixture
def staff_client(client, django_user_model):  # type: ignore[no-untyped-def]
    staff = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)
    client.user = staff
    return client


def _custom(name: str, code: str, user, **config: object) -> Evaluator:  # type: ignore[no-untyped-def]
    return evaluator_create(
        name=name, config={"kind": "CODE", "check": "custom", "code": code, **config}, user=user
    )


WHO = (
    "import os\n"
    "def evaluate(input, output, metadata, reference, span):\n"
    "    return {'label': f'{os.getuid()} {os.getppid()}', 'explanation': output}\n"
)


def _who(label: str) -> tuple[int, int]:
    uid, parent = (int(part) for part in label.split())
    return uid, parent


@pytest.mark.parametrize("attempt_id", THROUGH_THE_WEB)
@web
def test_the_playground_page_runs_an_attempt_on_a_worker_and_shows_the_error(
    attempt_id, sandbox_worker, web_process, staff_client, target
):
    attempt = ATTEMPTS[attempt_id]
    if attempt.root_only and not ROOT:
        pytest.skip("reading another user's files needs the switch to the sandbox user (root)")
    code = _evaluator(attempt.body, target.values())
    _custom(f"escape-{attempt_id}", code, staff_client.user)
    response = staff_client.post(
        reverse("evaluators:playground", args=[f"escape-{attempt_id}"]),
        {"values": json.dumps({"output": "a"}), "action": "run"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    shown = re.search(r'<p class="form-error" role="alert">Error: (.*?)</p>', page)
    assert shown is not None, page
    attempt.check(SandboxResult(error=html.unescape(shown.group(1))))
    target.assert_untouched()


@web
def test_the_playground_result_comes_from_a_worker_as_the_sandbox_user(
    sandbox_worker, web_process, staff_client
):
    _custom("who", WHO, staff_client.user)
    response = staff_client.post(
        reverse("evaluators:playground", args=["who"]),
        {"values": json.dumps({"output": "a <b>"}), "action": "run"},
    )
    page = response.content.decode()
    label = re.search(r'<div class="value">([\d ]+)</div><div class="label">label', page)
    assert label is not None, page
    uid, parent = _who(label.group(1))
    assert parent != os.getpid()  # forked by the worker, not by this (web) process
    assert uid == (NOBODY if ROOT else os.geteuid())
    assert "<p>a &lt;b&gt;</p>" in page


@pytest.mark.parametrize("attempt_id", ["posixsubprocess-fork-exec", "open-write", "tcp-redis"])
@web
def test_the_api_run_gets_the_error_from_a_worker(
    attempt_id, sandbox_worker, web_process, staff_client, target, auth
):
    attempt = ATTEMPTS[attempt_id]
    _custom(f"api-{attempt_id}", _evaluator(attempt.body, target.values()), staff_client.user)
    response = staff_client.post(
        f"/v1/evaluators/api-{attempt_id}/run",
        {"values": {"output": "a"}},
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["label"] is None and body["score"] is None
    attempt.check(SandboxResult(error=body["error"]))
    target.assert_untouched()


@web
def test_test_task_runs_custom_code_on_a_worker(sandbox_worker, web_process, staff_client):
    from evalhub.tasks.dryrun import task_dry_run
    from evalhub.tasks.services import TaskEvaluatorInput, TaskInput

    factories.trace(start=timezone.now() - timedelta(minutes=5))
    evaluator = _custom("who", WHO, staff_client.user)
    items = task_dry_run(
        data=TaskInput(
            name="draft",
            project=factories.project(),
            evaluators=[TaskEvaluatorInput(evaluator=evaluator, variables={})],
            filter="span_kind = 'LLM'",
        )
    )
    [result] = [r for item in items for r in item.results]
    assert result.error is None, result.error
    uid, parent = _who(result.label)
    assert parent != os.getpid()
    assert uid == (NOBODY if ROOT else os.geteuid())


@web
def test_the_celery_task_runs_the_stored_version(sandbox_worker, staff_client, target):
    from evalhub.tasks.jobs import code_evaluate

    attempt = ATTEMPTS["syscall-fork"]
    evaluator = _custom("task", _evaluator(attempt.body, target.values()), staff_client.user)
    version = evaluator_version_latest(evaluator=evaluator)
    pending = code_evaluate.apply_async(
        args=(version.pk, ARGS), queue=settings.EVALHUB_SANDBOX_QUEUE, ignore_result=False
    )
    answer = pending.get(timeout=60)
    pending.forget()
    attempt.check(SandboxResult(**answer))
    target.assert_untouched()


# --- without a worker, or where the sandbox cannot be set up ------------------------------------


@pytest.mark.django_db
def test_without_a_worker_the_playground_says_so(web_process, staff_client, settings):  # type: ignore[no-untyped-def]
    settings.EVALHUB_SANDBOX_QUEUE = f"nobody-listens-{uuid.uuid4().hex}"
    settings.EVALHUB_SANDBOX_WAIT_SECONDS = 1
    _custom("lonely", WHO, staff_client.user, timeout_seconds=1)
    response = staff_client.post(
        reverse("evaluators:playground", args=["lonely"]),
        {"values": json.dumps({"output": "a"}), "action": "run"},
    )
    page = html.unescape(response.content.decode())
    assert (
        "Error: no worker ran the evaluator within 2s: custom code runs on a Celery worker "
        f"consuming the '{settings.EVALHUB_SANDBOX_QUEUE}' queue"
    ) in page


@pytest.mark.django_db
def test_a_host_without_isolation_refuses_in_the_page_and_the_api(
    celery_eager, staff_client, settings, auth, target
):  # type: ignore[no-untyped-def]
    settings.EVALHUB_SANDBOX_USER = "no-such-user-evalhub"
    code = _evaluator("open('{dir}/ran', 'x')\nreturn 1", target.values())
    evaluator = _custom("refused", code, staff_client.user)
    refusal = (
        "custom code evaluators are refused on this host: "
        "EVALHUB_SANDBOX_USER='no-such-user-evalhub': no such user"
    )
    page = staff_client.post(
        reverse("evaluators:playground", args=["refused"]),
        {"values": json.dumps({"output": "a"}), "action": "run"},
    ).content.decode()
    assert f"Error: {refusal}" in html.unescape(page)
    body = staff_client.post(
        "/v1/evaluators/refused/run",
        {"values": {"output": "a"}},
        content_type="application/json",
        headers=auth,
    ).json()
    assert body["error"] == refusal
    # A run stops on it: no other item could be evaluated either.
    version = evaluator_version_latest(evaluator=evaluator)
    assert evaluator_run(version=version, values={"output": "a"}).fatal
    target.assert_untouched()
