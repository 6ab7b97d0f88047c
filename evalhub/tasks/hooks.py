"""What other products plug into a run, so that the engine imports none of them: a guard asked
before each judge call and told what the call spent (spend budgets), and what happens once a
batch of items has its results written (calibration sampling). Each app registers its hook in
its ``AppConfig.ready``; the engine calls ``run_guards`` and ``items_written``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol


class CallGuard(Protocol):
    def check(self, evaluator: Any) -> str | None:
        """Before a judge call by ``evaluator``: why it may not start, or None."""

    def spend(self, evaluator: Any, result: Any) -> None:
        """After the call: what it spent (the result's recorded tokens and cost)."""


GuardFactory = Callable[..., CallGuard]  # (task_id=…, evaluators=…) -> CallGuard
ItemsWritten = Callable[..., object]  # (run=…, rows=…), inside the write's transaction

_GUARDS: list[GuardFactory] = []
_ITEMS_WRITTEN: list[ItemsWritten] = []


def guard_register(factory: GuardFactory) -> None:
    if factory not in _GUARDS:
        _GUARDS.append(factory)


def items_written_register(hook: ItemsWritten) -> None:
    if hook not in _ITEMS_WRITTEN:
        _ITEMS_WRITTEN.append(hook)


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
