"""What a run's worker evaluates with and on: the run's evaluators (``run_evaluators``: each
version with its provider, and the shadow candidates), an item being evaluated (``WorkItem``),
and the span that stands for an item (``representative_spans``). The engine (``engine``) leases
and works the items; ``writing`` writes their results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from annotations.models import AnnotatorKind
from evalhub.evaluators.definition import LlmJudgeConfig, config_parse
from evalhub.evaluators.models import EvaluatorKind, EvaluatorVersion
from evalhub.evaluators.running import (
    EvaluationResult,
    PreparedEvaluation,
)
from evalhub.providers.models import Provider
from evalhub.providers.selectors import provider_for
from evalhub.tasks.models import (
    Granularity,
    TaskRun,
    TaskRunItem,
)
from tracing.models import Span, Trace


@dataclass
class RunEvaluator:
    version: EvaluatorVersion
    name: str
    annotator_kind: str
    variables: dict[str, str]
    provider: Provider | None
    shadow_id: int | None = None  # a shadow candidate: results to ``shadow_written`` only


@dataclass
class WorkItem:
    row: TaskRunItem
    span: Span | None
    results: list[EvaluationResult | None] = field(default_factory=list)
    prepared: dict[int, PreparedEvaluation] = field(default_factory=dict)  # for judge tracing
    skip_reason: str = ""

    @property
    def complete(self) -> bool:
        return all(r is not None for r in self.results)


class RunFatal(Exception):
    """The run cannot go on (an evaluator deleted, no provider): it fails and its task pauses."""


def run_evaluators(run: TaskRun) -> list[RunEvaluator]:
    """The evaluators a run evaluates with, as its settings name them (each version, its
    variables and the provider it calls), then its shadow candidates. ``RunFatal`` when one
    cannot be called (deleted, no provider)."""
    config = run.config
    override = None
    if config.get("provider_id") is not None:
        override = Provider.objects.filter(pk=config["provider_id"]).first()
        if override is None:
            raise RunFatal("the task's LLM provider no longer exists; choose another")
    versions = EvaluatorVersion.objects.select_related("evaluator").in_bulk(
        [e["version_id"] for e in config["evaluators"]]
    )

    def provider_of(version: EvaluatorVersion) -> Provider | None:
        if override is not None or version.evaluator.kind != EvaluatorKind.LLM:
            return override
        parsed = config_parse(version.config)
        assert isinstance(parsed, LlmJudgeConfig)
        return provider_for(parsed.provider_id)

    evaluators = []
    for entry in config["evaluators"]:
        version = versions.get(entry["version_id"])
        if version is None:
            raise RunFatal(f"evaluator {entry['name']} was deleted")
        provider = provider_of(version)
        if provider is None and version.evaluator.kind == EvaluatorKind.LLM:
            raise RunFatal(f"evaluator {entry['name']} has no LLM provider")
        evaluators.append(_run_evaluator(version, entry, provider))
    active = {e.version.evaluator_id: e.version.evaluator for e in evaluators}
    return evaluators + _shadows(run, provider_of, active)


def _shadows(run: TaskRun, provider_of: Any, active: dict[int, Any]) -> list[RunEvaluator]:
    """The run's shadow candidates (``config["shadows"]``, added by ``hooks``): each an
    unsaved version of an evaluator the run evaluates, called like it on the same items.
    One without a provider is left out (a shadow never stops the active evaluation)."""
    shadows = []
    for entry in run.config.get("shadows") or []:
        if entry["evaluator_id"] not in active:
            continue
        version = EvaluatorVersion(
            evaluator=active[entry["evaluator_id"]], number=0, config=entry["candidate"]
        )
        provider = provider_of(version)
        if provider is None and version.evaluator.kind == EvaluatorKind.LLM:
            continue
        shadows.append(_run_evaluator(version, entry, provider, shadow_id=entry["shadow_id"]))
    return shadows


def _run_evaluator(
    version: EvaluatorVersion,
    entry: dict[str, Any],
    provider: Provider | None,
    *,
    shadow_id: int | None = None,
) -> RunEvaluator:
    """An evaluator of the run's settings (``entry``: its variables) as the engine holds it."""
    return RunEvaluator(
        version=version,
        name=version.evaluator.name,
        annotator_kind=AnnotatorKind.LLM
        if version.evaluator.kind == EvaluatorKind.LLM
        else AnnotatorKind.CODE,
        variables=dict(entry.get("variables") or {}),
        provider=provider,
        shadow_id=shadow_id,
    )


# --- representative spans -------------------------------------------------------------------


def _span_query() -> Any:
    return Span.objects.select_related("trace", "session", "project")


def _trace_spans(trace_rows: dict[int, str | None]) -> dict[int, Span]:
    """Trace pk → its root span (else its earliest span)."""
    spans: dict[int, Span] = {}
    roots = [root for root in trace_rows.values() if root]
    by_span_id = {s.span_id: s for s in _span_query().filter(span_id__in=roots)}
    for trace_pk, root in trace_rows.items():
        span = by_span_id.get(root) if root else None
        if span is None:
            span = _span_query().filter(trace_id=trace_pk).order_by("start_time", "id").first()
        if span is not None:
            spans[trace_pk] = span
    return spans


def representative_spans(granularity: str, pks: list[int]) -> dict[int, Span]:
    """Item pk → the span that stands for it: the span itself, a trace's root span, a
    session's first trace's root span (items without spans are left out)."""
    if granularity == Granularity.SPAN:
        return {s.pk: s for s in _span_query().filter(pk__in=pks)}
    if granularity == Granularity.TRACE:
        rows = dict(Trace.objects.filter(pk__in=pks).values_list("pk", "root_span_id"))
        return _trace_spans(rows)
    first_trace: dict[int, tuple[int, str | None]] = {}
    for session_pk, trace_pk, root in (
        Trace.objects.filter(session_id__in=pks)
        .order_by("session_id", "start_time", "id")
        .values_list("session_id", "pk", "root_span_id")
    ):
        first_trace.setdefault(session_pk, (trace_pk, root))
    by_trace = _trace_spans({trace_pk: root for trace_pk, root in first_trace.values()})
    return {
        session_pk: by_trace[trace_pk]
        for session_pk, (trace_pk, _) in first_trace.items()
        if trace_pk in by_trace
    }
