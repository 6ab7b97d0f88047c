"""The child side of the custom-code sandbox. Standard library only; run as a script by
``evalhub.hub.sandbox`` with ``python -I``, never imported by EvalHub itself.

It limits itself before it reads any user code (CPU seconds, address space, open files, the
size of files it may write), installs an audit hook that refuses
network access, new processes, file writes and reads outside the Python installation, then runs
``evaluate(input, output, metadata, reference, span)`` and prints one JSON line.
"""

import io
import json
import os
import resource
import sys
import traceback

RESULT_MARK = "\x1eevalhub-result\x1e"


def _limit(cpu_seconds: int, memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _allowed_roots() -> tuple[str, ...]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return tuple(os.path.realpath(r) + os.sep for r in roots if r)


_REFUSED_EVENTS = {
    "socket.connect",
    "socket.bind",
    "socket.getaddrinfo",
    "socket.sendto",
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "ctypes.dlopen",
    "ctypes.cdata",
    "ctypes.addressof",
    "sys.addaudithook",
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.putenv",
    "os.unsetenv",
    "shutil.rmtree",
}


def _install_hook() -> None:
    roots = _allowed_roots()

    def hook(event: str, args: tuple) -> None:
        if event in _REFUSED_EVENTS:
            raise PermissionError(f"not allowed in an evaluator: {event}")
        if event == "import" and args and str(args[0]).split(".")[0] in ("ctypes", "_ctypes"):
            raise PermissionError("not allowed in an evaluator: ctypes")
        if event == "open":
            path, mode, flags = args[0], args[1], args[2]
            if isinstance(path, int):
                return
            writing = (mode and any(c in str(mode) for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            )
            if writing:
                raise PermissionError(f"not allowed in an evaluator: writing {path}")
            real = os.path.realpath(os.fsdecode(path))
            if not real.startswith(roots):
                raise PermissionError(f"not allowed in an evaluator: reading {path}")

    sys.addaudithook(hook)


def _clean(value, what):
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"{what} must be a string or number, not {type(value).__name__}")


def main() -> None:
    cpu_seconds, memory_bytes = int(sys.argv[1]), int(sys.argv[2])
    _limit(cpu_seconds, memory_bytes)
    payload = json.loads(sys.stdin.read())
    real_stdout = sys.stdout
    sys.stdout = sys.stderr = captured = io.StringIO()
    _install_hook()
    result: dict
    try:
        namespace: dict = {"__name__": "evaluator"}
        exec(compile(payload["code"], "<evaluator>", "exec"), namespace)  # noqa: S102
        evaluate = namespace.get("evaluate")
        if not callable(evaluate):
            raise NameError(
                "the code defines no evaluate(input, output, metadata, reference, span)"
            )
        returned = evaluate(**payload["arguments"])
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
        result = {
            "label": None if label is None else str(label),
            "score": None if score is None else float(score),
            "explanation": None if explanation is None else str(explanation),
        }
    except BaseException as exc:
        # Free what the code held (an unbounded allocation) before formatting anything.
        traceback.clear_frames(exc.__traceback__)
        lines = traceback.format_exception(exc)
        # Keep the user's frames: drop the runner's own.
        kept = [lines[0]] + [line for line in lines[1:] if "sandbox_runner.py" not in line]
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": "".join(kept)}
    result["stdout"] = captured.getvalue()[-2000:]
    real_stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    real_stdout.flush()


if __name__ == "__main__":
    main()
