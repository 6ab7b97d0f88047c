"""Where custom code evaluators run: in a Celery worker, never in a web process.

``custom_code_run`` runs the sandbox (``evalhub.evaluators.sandbox.run``) itself only in a process marked
as a worker (``worker_process_mark``, connected to Celery's worker signals in
``evalhub.celery``). Anywhere else — a gunicorn web worker serving the playground or "Test
task", runserver, a shell — it sends ``evalhub.code_evaluate`` to the ``EVALHUB_SANDBOX_QUEUE``
queue and waits for the answer, up to the code's own timeout plus
``EVALHUB_SANDBOX_WAIT_SECONDS``; no answer is an error result that says a worker must consume
that queue. The message expires with the wait, so a worker started later does not run it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any

from evalhub.evaluators.sandbox.run import SandboxResult, sandbox_run

_worker_process = False

CODE_EVALUATE = "evalhub.code_evaluate"  # the Celery task that runs code in a worker


def worker_process_mark(**_signal: object) -> None:
    """This process is a Celery worker: custom code runs here, in the sandbox."""
    global _worker_process
    _worker_process = True


def runs_here() -> bool:
    return _worker_process


def custom_code_run(
    *,
    version_id: int | None,
    code: str,
    arguments: Mapping[str, Any],
    timeout_seconds: float,
    memory_mb: int,
) -> SandboxResult:
    """Run custom evaluator code (``code``, the definition of version ``version_id``) on
    ``arguments`` in the sandbox: here in a worker, through the sandbox queue elsewhere."""
    if runs_here():
        return sandbox_run(
            code=code, arguments=arguments, timeout_seconds=timeout_seconds, memory_mb=memory_mb
        )
    if version_id is None:
        return SandboxResult(error="an unsaved evaluator version cannot run custom code")
    return _on_worker(version_id=version_id, arguments=arguments, timeout_seconds=timeout_seconds)


def _on_worker(
    *, version_id: int, arguments: Mapping[str, Any], timeout_seconds: float
) -> SandboxResult:
    from celery import current_app
    from celery.exceptions import TimeoutError as CeleryTimeout
    from celery.result import EagerResult
    from django.conf import settings
    from kombu.exceptions import OperationalError

    code_evaluate = current_app.tasks[CODE_EVALUATE]  # evalhub.tasks.jobs, registered when ready

    queue = settings.EVALHUB_SANDBOX_QUEUE
    wait = timeout_seconds + settings.EVALHUB_SANDBOX_WAIT_SECONDS
    data = json.loads(json.dumps(dict(arguments), default=str))
    try:
        pending = code_evaluate.apply_async(
            args=(version_id, data), queue=queue, expires=wait, ignore_result=False
        )
    except OperationalError as exc:
        return SandboxResult(
            error=f"custom code runs on a Celery worker: the queue is out of reach ({exc})"
        )
    try:
        answer = pending.get(timeout=wait, propagate=False, disable_sync_subtasks=False)
    except CeleryTimeout:
        return SandboxResult(
            error=(
                f"no worker ran the evaluator within {wait:g}s: custom code runs on a Celery "
                f"worker consuming the {queue!r} queue (celery -A evalhub worker -Q "
                f"celery,{queue}); is one running?"
            )
        )
    except OperationalError as exc:
        return SandboxResult(error=f"custom code runs on a Celery worker: no answer ({exc})")
    finally:
        if not isinstance(pending, EagerResult):
            # Nothing stored (no answer) is an error to the file backend: nothing to forget.
            with contextlib.suppress(OSError, OperationalError):
                pending.forget()
    if not isinstance(answer, dict):
        return SandboxResult(error=f"the worker could not run the evaluator: {answer!r}")
    known = {f.name for f in fields(SandboxResult)}
    return SandboxResult(**{k: v for k, v in answer.items() if k in known})


def custom_code_evaluate(*, version_id: int, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The worker's side of ``custom_code_run``: the custom code of evaluator version
    ``version_id`` run in the sandbox on ``arguments``, as a JSON-able dict. Writes nothing."""
    from evalhub.evaluators.definition import CodeConfig, EvaluatorConfigError, config_parse
    from evalhub.evaluators.models import EvaluatorVersion

    version = EvaluatorVersion.objects.filter(pk=version_id).first()
    if version is None:
        return asdict(SandboxResult(error=f"evaluator version #{version_id} no longer exists"))
    try:
        config = config_parse(version.config)
    except EvaluatorConfigError as exc:
        return asdict(SandboxResult(error=str(exc)))
    if not isinstance(config, CodeConfig) or config.check != "custom":
        return asdict(SandboxResult(error=f"{version} is not a custom code evaluator"))
    result = sandbox_run(
        code=config.code,
        arguments=arguments,
        timeout_seconds=config.timeout_seconds,
        memory_mb=config.memory_mb,
    )
    return asdict(result)
