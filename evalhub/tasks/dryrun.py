"""Trying a task before saving it: the span its variables are previewed on, each evaluator's
variable mapping with the values it reads, and the test run ("Test task") on a few matching,
sampled items. Everything here reads; nothing is written (no run, no item, no annotation).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from evalhub.evaluators.definition import EvaluatorConfigError, config_parse
from evalhub.evaluators.models import Evaluator, EvaluatorKind, EvaluatorVersion
from evalhub.evaluators.running import (
    EvaluationResult,
    evaluation_cost,
    evaluation_execute,
    evaluation_prepare,
    evaluation_skip_reason,
)
from evalhub.evaluators.selectors import evaluator_version_latest, variables_preview
from evalhub.tasks.evaluating import representative_spans
from evalhub.tasks.models import Granularity
from evalhub.tasks.planning import Candidate, Window, candidates_iter, candidates_query, sampled
from evalhub.tasks.services import TaskEvaluatorInput, TaskInput
from tracing.models import Project, Span

DRY_RUN_LIMIT = 5
RECENT = timedelta(days=7)  # looked at first; older data only when nothing recent matches
MAX_THREADS = 8


# --- the span previews are shown on -----------------------------------------------------------


def _recent_candidates(
    *,
    project: Project,
    granularity: str,
    filter_text: str,
    rate_percent: float,
    limit: int,
    now: datetime,
) -> list[Candidate]:
    """Up to ``limit`` matching, sampled items, newest first: from the last 7 days, or from
    any time when none of the last 7 days match. Raises ``FilterError`` for a bad filter."""
    if rate_percent <= 0:
        return []
    for start in (now - RECENT, None):
        query = candidates_query(
            project_id=project.pk,
            granularity=granularity,
            filter_text=filter_text,
            window=Window(field="start", start=start, end=None),
        )
        chosen = list(
            sampled(candidates_iter(query, granularity), rate_percent=rate_percent, limit=limit)
        )
        if chosen:
            return chosen
    return []


def preview_span(
    *,
    project: Project,
    granularity: str,
    filter_text: str = "",
    span_id: str = "",
    now: datetime | None = None,
) -> Span | None:
    """The span variables are previewed on: the span ``span_id`` of the project (for trace or
    session granularity, its trace's / session's representative span) when given, else the
    representative span of the newest matching item. Raises ``FilterError`` for a bad filter."""
    if span_id:
        span = Span.objects.filter(project=project, span_id=span_id).first()
        if span is None:
            return None
        if granularity == Granularity.SPAN:
            return representative_spans(Granularity.SPAN, [span.pk]).get(span.pk)
        owner = span.trace_id if granularity == Granularity.TRACE else span.session_id
        if owner is None:  # a span without a session, for session granularity
            return representative_spans(Granularity.SPAN, [span.pk]).get(span.pk)
        return representative_spans(granularity, [owner]).get(owner)
    chosen = _recent_candidates(
        project=project,
        granularity=granularity,
        filter_text=filter_text,
        rate_percent=100.0,
        limit=1,
        now=now or timezone.now(),
    )
    if not chosen:
        return None
    return representative_spans(granularity, [chosen[0].pk]).get(chosen[0].pk)


# --- variable mappings --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VariableRow:
    name: str
    source: str  # what the task maps it to (the evaluator's own source unless changed)
    default: str  # the evaluator's own source
    value: str | None  # its value on the preview span
    error: str | None  # why it has none

    @property
    def changed(self) -> bool:
        return self.source != self.default


@dataclass(frozen=True, slots=True)
class EvaluatorMapping:
    evaluator: Evaluator
    version: EvaluatorVersion
    rows: list[VariableRow]
    error: str | None = None  # the mapping cannot be used (e.g. an unknown source)


def default_mapping(version: EvaluatorVersion) -> dict[str, str]:
    """The version's variables → sources, as the evaluator defines them."""
    try:
        return config_parse(version.config).mapping()
    except EvaluatorConfigError:
        return {}


def evaluator_mappings(
    *, entries: Sequence[TaskEvaluatorInput], span: Span | None
) -> list[EvaluatorMapping]:
    """For each evaluator of a task being edited: its variables, the source each is mapped to
    (``entry.variables`` laid over the evaluator's own mapping) and the value it has on
    ``span`` (None: nothing to preview on)."""
    mappings = []
    for entry in entries:
        version = evaluator_version_latest(evaluator=entry.evaluator)
        defaults = default_mapping(version)
        overrides = {k: v.strip() for k, v in (entry.variables or {}).items() if v and v.strip()}
        sources = {name: overrides.get(name, source) for name, source in defaults.items()}
        config = {
            **version.config,
            "variables": {**version.config.get("variables", {}), **overrides},
        }
        error = None
        values: dict[str, tuple[str | None, str | None]] = {}
        try:
            config_parse(config)
        except EvaluatorConfigError as exc:
            error = str(exc)
        else:
            if span is not None:
                values = {
                    p.name: (p.value, p.error) for p in variables_preview(config=config, span=span)
                }
        rows = [
            VariableRow(
                name=name,
                source=sources[name],
                default=defaults[name],
                value=values.get(name, (None, None))[0],
                error=values.get(name, (None, None))[1],
            )
            for name in defaults
        ]
        mappings.append(
            EvaluatorMapping(evaluator=entry.evaluator, version=version, rows=rows, error=error)
        )
    return mappings


# --- what a run would skip ------------------------------------------------------------------------

SKIP_FORECAST_LIMIT = 50


@dataclass(frozen=True, slots=True)
class SkipForecast:
    """Of the ``checked`` newest matching items, how many a run would skip (a variable with
    no value on them), and why: ``reasons`` are (evaluator, reason, items), most items first."""

    checked: int
    skipped: int
    reasons: list[tuple[str, str, int]]


def skip_forecast(
    *,
    project: Project,
    granularity: str,
    filter_text: str,
    entries: Sequence[TaskEvaluatorInput],
    limit: int = SKIP_FORECAST_LIMIT,
    now: datetime | None = None,
) -> SkipForecast:
    """Check the ``limit`` newest matching items (the last 7 days, else any time) the way a run
    would before calling a judge: an item is skipped when none of its evaluators can fill its
    variables. Reads only; raises ``FilterError`` for a bad filter."""
    chosen = _recent_candidates(
        project=project,
        granularity=granularity,
        filter_text=filter_text,
        rate_percent=100.0,
        limit=limit,
        now=now or timezone.now(),
    )
    if not chosen or not entries:
        return SkipForecast(checked=len(chosen), skipped=0, reasons=[])
    spans = representative_spans(granularity, [c.pk for c in chosen])
    versions = [(e, evaluator_version_latest(evaluator=e.evaluator)) for e in entries]
    counts: dict[tuple[str, str], int] = {}
    skipped = 0
    for candidate in chosen:
        span = spans.get(candidate.pk)
        if span is None:
            continue
        reasons = [
            (entry.evaluator.name, reason)
            for entry, version in versions
            if (
                reason := evaluation_skip_reason(
                    version=version, span=span, variables=entry.variables
                )
            )
        ]
        for key in reasons:
            counts[key] = counts.get(key, 0) + 1
        if len(reasons) == len(versions):
            skipped += 1
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    return SkipForecast(
        checked=len(chosen),
        skipped=skipped,
        reasons=[(name, reason, n) for (name, reason), n in ranked],
    )


# --- the test run -------------------------------------------------------------------------------


@dataclass(slots=True)
class DryRunItem:
    """One item of a test run: which span / trace / session, the span the evaluators saw, and
    one result per evaluator (in the task's order), each with its label, score and
    explanation or its error."""

    granularity: str
    key: str  # span_id / trace_id / session_id
    start_time: datetime | None
    span: Span | None
    results: list[EvaluationResult] = field(default_factory=list)
    error: str = ""  # the item could not be evaluated at all


def task_dry_run(
    *, data: TaskInput, limit: int = DRY_RUN_LIMIT, now: datetime | None = None
) -> list[DryRunItem]:
    """Evaluate up to ``limit`` matching, sampled items of ``data``'s project, newest first,
    with each evaluator's newest version, the task's variable mapping and its LLM override —
    as a run would — and return the results. Writes nothing. Raises ``FilterError`` for a bad
    filter.

    Evaluations are read from the database on this thread (``evaluation_prepare``) and run on
    a few threads (``evaluation_execute`` does not touch the database): five items with two
    judges take about as long as one judge call."""
    assert data.project is not None  # the form asks for one before a test run
    chosen = _recent_candidates(
        project=data.project,
        granularity=data.granularity,
        filter_text=data.filter or "",
        rate_percent=data.sampling_rate,
        limit=limit,
        now=now or timezone.now(),
    )
    if not chosen:
        return []
    spans = representative_spans(data.granularity, [c.pk for c in chosen])
    versions = [(e, evaluator_version_latest(evaluator=e.evaluator)) for e in data.evaluators]
    items = []
    prepared = []
    for candidate in chosen:
        span = spans.get(candidate.pk)
        item = DryRunItem(
            granularity=data.granularity,
            key=candidate.key,
            start_time=candidate.start_time,
            span=span,
        )
        items.append(item)
        if span is None:
            item.error = f"{data.granularity} {candidate.key} has no spans"
            continue
        for entry, version in versions:
            is_llm = entry.evaluator.kind == EvaluatorKind.LLM
            prepared.append(
                evaluation_prepare(
                    version=version,
                    span=span,
                    provider=data.provider,
                    variables=entry.variables,
                    model=data.model if is_llm else "",
                )
            )
            item.results.append(prepared[-1].result)
    if prepared:
        with ThreadPoolExecutor(max_workers=min(len(prepared), MAX_THREADS)) as pool:
            list(pool.map(evaluation_execute, prepared))
        for unit in prepared:
            evaluation_cost(unit.result)
    return items


__all__ = [
    "DRY_RUN_LIMIT",
    "DryRunItem",
    "EvaluatorMapping",
    "SkipForecast",
    "VariableRow",
    "default_mapping",
    "evaluator_mappings",
    "preview_span",
    "skip_forecast",
    "task_dry_run",
]
