import io
import os
import signal
import sys
import threading
import time

from evalhub.supervisor import ProcessSpec, Supervisor, evalhub_processes

SLEEPER = "import time; print('up', flush=True); time.sleep(60)"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_child_that_fails_stops_the_others_and_gives_its_exit_code(tmp_path):
    pid_file = tmp_path / "sleeper.pid"
    keeper = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); {SLEEPER}"
    failing = "import time; time.sleep(0.5); print('giving up', flush=True); raise SystemExit(3)"
    out = io.StringIO()
    supervisor = Supervisor(
        [
            ProcessSpec("keeper", [sys.executable, "-c", keeper]),
            ProcessSpec("bad", [sys.executable, "-c", failing]),
        ],
        cwd=tmp_path,
        stream=out,
        stop_timeout=5,
    )

    assert supervisor.run() == 3

    lines = out.getvalue().splitlines()
    assert "keeper | up" in lines
    assert "bad    | giving up" in lines
    assert "bad    | exited with code 3; stopping the others" in lines
    assert "keeper | stopping" in lines
    assert not _pid_alive(int(pid_file.read_text()))


def test_sigint_stops_every_child_and_exits_cleanly(tmp_path):
    out = io.StringIO()
    supervisor = Supervisor(
        [
            ProcessSpec("one", [sys.executable, "-c", SLEEPER]),
            ProcessSpec("two", [sys.executable, "-c", SLEEPER]),
        ],
        cwd=tmp_path,
        stream=out,
        stop_timeout=5,
    )

    def interrupt() -> None:
        deadline = time.monotonic() + 10
        while out.getvalue().count("| up") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    started = time.monotonic()
    assert supervisor.run() == 0
    assert time.monotonic() - started < 10
    assert "one | stopping" in out.getvalue() and "two | stopping" in out.getvalue()
    # The handler is put back: a later Ctrl-C is a KeyboardInterrupt again.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_evalhub_runs_gunicorn_with_its_config_the_grpc_receiver_a_worker_and_one_beat(tmp_path):
    specs = {s.name: s.argv for s in evalhub_processes(python="py", base_dir=tmp_path)}
    assert list(specs) == ["web", "grpc", "worker", "beat"]
    assert specs["grpc"] == ["py", str(tmp_path / "manage.py"), "grpc_ingest"]
    assert specs["web"] == [
        "py", "-m", "gunicorn", "--config", str(tmp_path / "evalhub/gunicorn_conf.py"),
        "evalhub.wsgi",
    ]  # fmt: skip
    assert specs["worker"][:6] == ["py", "-m", "celery", "--app", "evalhub", "worker"]
    # The worker also takes the custom code evaluators that web processes send it.
    queues = specs["worker"][specs["worker"].index("--queues") + 1]
    assert queues.split(",") == ["celery", "sandbox"]
    assert specs["beat"][:6] == ["py", "-m", "celery", "--app", "evalhub", "beat"]
