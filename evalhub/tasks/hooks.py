"""What other products plug into a run, so that the engine imports none of them: a guard asked
before each judge call and told what the call spent (spend budgets), what happens once a
batch of items has its results written (calibration sampling), what a run's settings add
(shadow versions: candidates evaluated beside the active versions) and where those shadow
results go (never to the annotations), and the targets other than a project's spans (a
dataset's experiment runs). Each app registers its hook in its ``AppConfig.ready``; the engine
calls ``run_guards``, ``items_written``, ``shadow_written`` and ``run_target``,
``run_config`` calls ``run_config_extend``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class CallGuard(Protocol):
    def check(self, evaluator: Any) -> str | None:
        """Before a judge call by ``evaluator``: why it may not start, or None."""

    def spend(self, evaluator: Any, result: Any) -> None:
        """After the call: what it spent (the result's recorded tokens and cost)."""


GuardFactory = Callable[..., CallGuard]  # (task_id=…, evaluators=…) -> CallGuard
ItemsWritten = Callable[..., object]  # (run=…, rows=…), inside the write's transaction

ConfigExtend = Callable[..., Mapping[str, Any]]  # (task=…, config=…) -> keys the run adds
ShadowWritten = Callable[
    ..., object
]  # (run=…, results=[ShadowOutcome]), in the write's transaction

_GUARDS: list[GuardFactory] = []
_ITEMS_WRITTEN: list[ItemsWritten] = []
_CONFIG_EXTEND: list[ConfigExtend] = []
_SHADOW_WRITTEN: list[ShadowWritten] = []


@dataclass(frozen=True, slots=True)
class ShadowOutcome:
    """A shadow candidate's result on one item of a run: ``shadow_id`` names the candidate (the
    run's ``config["shadows"]`` entry), ``row`` the item, ``span`` the span that stood for it."""

    shadow_id: int
    row: Any  # TaskRunItem
    span: Any  # tracing.models.Span
    result: Any  # EvaluationResult


class RunTarget(Protocol):
    """Where a task of another target kind finds its items, what its evaluators read of them
    and where their results go (instead of a project's spans and annotations)."""

    def plan(self, *, task: Any, now: Any) -> tuple[dict[str, Any], list[Any]] | None:
        """The next run's extra config and its items (``planning.Candidate``s), or None."""

    def inputs(
        self, *, run: Any, pks: list[int], evaluators: list[Any]
    ) -> dict[int, tuple[Any, list[dict[str, Any]]]]:
        """Item pk → (the span variables may read, or None; for each of ``evaluators`` —
        with ``version`` and the task's ``variables`` — its values by variable name), for
        each item that still exists."""

    def write(self, *, run: Any, results: list[tuple[Any, str, str, Any]]) -> None:
        """Store ``(item row, evaluator name, annotator kind, EvaluationResult)``s, in the
        engine's write transaction."""


_TARGETS: dict[str, RunTarget] = {}


def target_register(kind: str, target: RunTarget) -> None:
    _TARGETS[kind] = target


def run_target(kind: str | None) -> RunTarget | None:
    """The registered target of ``kind`` (None for a project's spans)."""
    return _TARGETS.get(kind or "")


def guard_register(factory: GuardFactory) -> None:
    if factory not in _GUARDS:
        _GUARDS.append(factory)


def items_written_register(hook: ItemsWritten) -> None:
    if hook not in _ITEMS_WRITTEN:
        _ITEMS_WRITTEN.append(hook)


def run_config_register(hook: ConfigExtend) -> None:
    if hook not in _CONFIG_EXTEND:
        _CONFIG_EXTEND.append(hook)


def shadow_written_register(hook: ShadowWritten) -> None:
    if hook not in _SHADOW_WRITTEN:
        _SHADOW_WRITTEN.append(hook)


class RunGuards:
    """Every registered guard of one run: a call starts only when none objects."""

    def __init__(self, guards: Iterable[CallGuard]) -> None:
        self.guards = list(guards)

    def check(self, evaluator: Any) -> str | None:
        for guard in self.guards:
            reason = guard.check(evaluator)
            if reason:
                return reason
        return None

    def spend(self, evaluator: Any, result: Any) -> None:
        for guard in self.guards:
            guard.spend(evaluator, result)


def run_guards(*, task_id: int | None, evaluators: Iterable[Any]) -> RunGuards:
    """The guards of a run whose judges are ``evaluators`` (as the engine holds them)."""
    chosen = list(evaluators)
    return RunGuards(factory(task_id=task_id, evaluators=chosen) for factory in _GUARDS)


def items_written(*, run: Any, rows: list[Any]) -> None:
    """After the engine wrote ``rows`` (``TaskRunItem``s with their results) of ``run``, in the
    same transaction."""
    for hook in _ITEMS_WRITTEN:
        hook(run=run, rows=rows)


def run_config_extend(*, task: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """What the registered hooks add to the settings a run of ``task`` keeps."""
    extra: dict[str, Any] = {}
    for hook in _CONFIG_EXTEND:
        extra.update(hook(task=task, config=config))
    return extra


def shadow_written(*, run: Any, results: list[ShadowOutcome]) -> None:
    """After the engine evaluated shadow candidates on items of ``run``, in the transaction that
    writes the items' results (the only place shadow results go)."""
    if not results:
        return
    for hook in _SHADOW_WRITTEN:
        hook(run=run, results=results)
