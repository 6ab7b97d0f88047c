"""What a run will cost before it starts: judge calls, tokens, money and time.

- **Calls**: the items the run would list (the task's filter, window, sampling and cap; an
  alignment run's labelled items) times each LLM judge, less the share of a sample of items the
  judge would skip (a variable with no value there).
- **Prompt tokens**: the judge's prompt rendered on a sample of the items (up to
  ``SAMPLE`` of them) with the run's mapping — system prompt, template, the answer's tool or
  schema — at ``CHARS_PER_TOKEN`` characters a token (no tokenizer is installed; English text
  runs at about four). **Completion tokens**: the mean recorded on the evaluator's past
  results, else a default by output (with or without explanations).
- **Cost**: the model price table (``tracing.store.pricing``); None for an unpriced model.
- **Duration** at the provider's limits: calls x the mean latency recorded on the evaluator's
  past results (else ``DEFAULT_LATENCY_S``) over the concurrency the run gets (the provider's,
  capped by ``EVALHUB_TASK_CONCURRENCY``), or the requests-per-minute limit, whichever is
  slower; judges on one provider share its limits.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from django.conf import settings
from django.db.models import Avg, Count, FloatField
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast

from annotations.models import Annotation
from annotations.naming import MACHINE_KINDS
from evalhub.evaluators.definition import EvaluatorConfigError, LlmJudgeConfig, config_parse
from evalhub.evaluators.models import EvaluatorKind, EvaluatorVersion
from evalhub.evaluators.running import evaluation_prepare
from evalhub.providers.models import Provider
from evalhub.providers.selectors import provider_for
from evalhub.tasks.models import Task
from tracing.models import Span
from tracing.store.pricing import cost_of

SAMPLE: Final = 20
CHARS_PER_TOKEN: Final = 4.0
DEFAULT_LATENCY_S: Final = 2.0
DEFAULT_COMPLETION_TOKENS: Final = {True: 80, False: 12}  # with / without explanations
HISTORY: Final = 500  # past results read for completion tokens and latency


@dataclass(frozen=True, slots=True)
class JudgeInput:
    """One judge of a run: its version (saved or a draft), the run's variable mapping, its
    provider and model overrides."""

    version: EvaluatorVersion
    variables: dict[str, str] = field(default_factory=dict)
    provider: Provider | None = None
    model: str = ""


@dataclass(frozen=True, slots=True)
class JudgeEstimate:
    name: str
    model: str
    provider: str
    calls: int
    sampled: int  # items of the sample its prompt was rendered on
    skipped: int  # of those, items it would skip
    prompt_tokens_per_call: float
    completion_tokens_per_call: float
    completion_from_history: bool
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    latency_s: float
    latency_from_history: bool
    error: str = ""  # why it could not be estimated (no provider, a bad definition)


@dataclass(frozen=True, slots=True)
class ProviderTime:
    provider: str
    calls: int
    concurrency: int
    requests_per_minute: int
    seconds: float
    limited_by: str  # "concurrency" / "requests per minute"


@dataclass(frozen=True, slots=True)
class Estimate:
    items: int
    capped: bool  # more items match than the run may take
    judge_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None  # None: some judge's model has no price
    unpriced: list[str]
    seconds: float
    judges: list[JudgeEstimate]
    providers: list[ProviderTime]
    method: str = __doc__.split("\n\n", 1)[1] if __doc__ else ""

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def _history(name: str) -> tuple[float | None, float | None]:
    """Mean completion tokens and latency (seconds) over the evaluator's recent results."""
    recent = (
        Annotation.objects.filter(name=name, annotator_kind__in=MACHINE_KINDS)
        .order_by("-created_at")
        .values("id")[:HISTORY]
    )
    found = Annotation.objects.filter(id__in=recent).aggregate(
        completion=Avg(Cast(KeyTransform("completion_tokens", "metadata"), FloatField())),
        latency=Avg(Cast(KeyTransform("latency_ms", "metadata"), FloatField())),
        n=Count("id"),
    )
    latency = found["latency"] / 1000 if found["latency"] is not None else None
    return found["completion"], latency


def _prompt_chars(prepared: Any) -> int:
    request = prepared.request
    text = sum(len(str(m.get("content") or "")) for m in request.messages)
    schema = request.tools or request.response_format
    return text + (len(json.dumps(schema)) if schema else 0)


def _provider_for(judge: JudgeInput, config: LlmJudgeConfig) -> Provider | None:
    if judge.provider is not None:
        return judge.provider
    return provider_for(config.provider_id)


def _judge(
    judge: JudgeInput, spans: Sequence[Span], items: int
) -> tuple[JudgeEstimate, Provider | None] | None:
    version = judge.version
    if version.evaluator.kind != EvaluatorKind.LLM:
        return None  # code evaluators call no model
    name = version.evaluator.name
    try:
        config = config_parse(version.config)
    except EvaluatorConfigError as exc:
        return _failed(name, str(exc)), None
    assert isinstance(config, LlmJudgeConfig)
    provider = _provider_for(judge, config)
    if provider is None:
        return _failed(name, "no LLM provider: add one under Settings → AI providers"), None
    model = judge.model or config.model or provider.default_model
    chars, rendered, skipped = 0, 0, 0
    for span in spans:
        prepared = evaluation_prepare(
            version=version,
            span=span,
            provider=provider,
            variables=judge.variables or None,
            model=model,
        )
        if prepared.request is None:
            skipped += 1
            continue
        rendered += 1
        chars += _prompt_chars(prepared)
    share = (len(spans) - skipped) / len(spans) if spans else 1.0
    calls = round(items * share)
    prompt_per_call = chars / rendered / CHARS_PER_TOKEN if rendered else 0.0
    completion, latency = _history(name)
    completion_per_call = (
        completion if completion is not None else DEFAULT_COMPLETION_TOKENS[config.explanations]
    )
    prompt_tokens = math.ceil(prompt_per_call * calls)
    completion_tokens = math.ceil(completion_per_call * calls)
    return (
        JudgeEstimate(
            name=name,
            model=model,
            provider=provider.name,
            calls=calls,
            sampled=len(spans),
            skipped=skipped,
            prompt_tokens_per_call=prompt_per_call,
            completion_tokens_per_call=completion_per_call,
            completion_from_history=completion is not None,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=cost_of(model, prompt_tokens, completion_tokens) if calls else 0.0,
            latency_s=latency if latency is not None else DEFAULT_LATENCY_S,
            latency_from_history=latency is not None,
        ),
        provider,
    )


def _failed(name: str, error: str) -> JudgeEstimate:
    return JudgeEstimate(
        name=name, model="", provider="", calls=0, sampled=0, skipped=0,
        prompt_tokens_per_call=0.0, completion_tokens_per_call=0.0,
        completion_from_history=False, prompt_tokens=0, completion_tokens=0, cost=None,
        latency_s=0.0, latency_from_history=False, error=error,
    )  # fmt: skip


def _provider_time(provider: Provider, judges: list[JudgeEstimate]) -> ProviderTime:
    calls = sum(j.calls for j in judges)
    limit = int(getattr(settings, "EVALHUB_TASK_CONCURRENCY", 16))
    concurrency = max(1, min(provider.max_concurrency or limit, limit))
    busy = sum(j.calls * j.latency_s for j in judges) / concurrency
    rated = calls / provider.requests_per_minute * 60 if provider.requests_per_minute else 0.0
    return ProviderTime(
        provider=provider.name,
        calls=calls,
        concurrency=concurrency,
        requests_per_minute=provider.requests_per_minute,
        seconds=max(busy, rated),
        limited_by="requests per minute" if rated > busy else "concurrency",
    )


def run_estimate(
    *, items: int, judges: Sequence[JudgeInput], spans: Sequence[Span], capped: bool = False
) -> Estimate:
    """The estimate of evaluating ``items`` items with ``judges``, their prompts rendered on
    ``spans`` (a sample of the items: at most ``SAMPLE`` are used)."""
    sample = list(spans)[:SAMPLE]
    estimates: list[JudgeEstimate] = []
    by_provider: dict[int, tuple[Provider, list[JudgeEstimate]]] = {}
    for judge in judges:
        found = _judge(judge, sample, items)
        if found is None:
            continue
        estimate, provider = found
        estimates.append(estimate)
        if provider is not None:
            by_provider.setdefault(provider.pk, (provider, []))[1].append(estimate)
    providers = [_provider_time(p, js) for p, js in by_provider.values()]
    unpriced = sorted({j.model or j.name for j in estimates if j.cost is None})
    return Estimate(
        items=items,
        capped=capped,
        judge_calls=sum(j.calls for j in estimates),
        prompt_tokens=sum(j.prompt_tokens for j in estimates),
        completion_tokens=sum(j.completion_tokens for j in estimates),
        cost=None if unpriced else sum(j.cost or 0.0 for j in estimates),
        unpriced=unpriced,
        seconds=max((p.seconds for p in providers), default=0.0),
        judges=estimates,
        providers=providers,
    )


def backfill_estimate(
    *,
    project_id: int,
    granularity: str,
    filter_text: str,
    sampling_rate: float,
    judges: Sequence[JudgeInput],
    start: datetime | None,
    end: datetime | None,
    max_items: int | None,
    task_id: int | None = None,
) -> Estimate:
    """The estimate of a backfill over items that started in ``[start, end)``: the items it
    would list (the filter, the task's sampling, items the task has not evaluated yet when
    ``task_id`` is given, at most ``max_items``), their first ``SAMPLE`` to render prompts on.
    Raises ``FilterError`` for a bad filter."""
    from evalhub.tasks.evaluating import representative_spans
    from evalhub.tasks.planning import Unlisted, Window, candidates_iter, candidates_query, sampled

    query = candidates_query(
        project_id=project_id,
        granularity=granularity,
        filter_text=filter_text,
        window=Window(field="start", start=start, end=end),
    )
    candidates: Any = candidates_iter(query, granularity)
    if task_id is not None:
        candidates = iter(Unlisted(candidates, task_id=task_id, granularity=granularity))
    limit = max_items + 1 if max_items is not None else None
    first: list[int] = []
    items = 0
    for candidate in sampled(candidates, rate_percent=sampling_rate, limit=limit):
        items += 1
        if len(first) < SAMPLE:
            first.append(candidate.pk)
    capped = max_items is not None and items > max_items
    spans = representative_spans(granularity, first)
    return run_estimate(
        items=min(items, max_items) if max_items is not None else items,
        judges=judges,
        spans=[spans[pk] for pk in first if pk in spans],
        capped=capped,
    )


def task_backfill_estimate(
    *, task: Task, start: datetime | None, end: datetime | None, max_items: int | None
) -> Estimate:
    """The estimate of a backfill of ``task`` (its filter, sampling, judges with their
    mappings, its provider and model), over items it has not evaluated yet."""
    from evalhub.evaluators.selectors import evaluator_version_latest

    judges = [
        JudgeInput(
            version=evaluator_version_latest(evaluator=entry.evaluator),
            variables=dict(entry.variables or {}),
            provider=task.provider,
            model=task.model,
        )
        for entry in task.task_evaluators.select_related("evaluator")
    ]
    if task.project_id is None:  # a dataset task: no spans to backfill
        return run_estimate(items=0, judges=judges, spans=[])
    return backfill_estimate(
        project_id=task.project_id,
        granularity=task.granularity,
        filter_text=task.filter,
        sampling_rate=task.sampling_rate,
        judges=judges,
        start=start,
        end=end,
        max_items=max_items,
        task_id=task.pk,
    )


def estimate_out(estimate: Estimate) -> dict[str, Any]:
    """The estimate as the API answers it."""
    return {
        "items": estimate.items,
        "capped": estimate.capped,
        "judge_calls": estimate.judge_calls,
        "prompt_tokens": estimate.prompt_tokens,
        "completion_tokens": estimate.completion_tokens,
        "tokens": estimate.tokens,
        "cost": estimate.cost,
        "unpriced_models": estimate.unpriced,
        "seconds": estimate.seconds,
        "judges": [
            {k: getattr(j, k) for k in JudgeEstimate.__dataclass_fields__} for j in estimate.judges
        ],
        "providers": [
            {k: getattr(p, k) for k in ProviderTime.__dataclass_fields__}
            for p in estimate.providers
        ],
        "method": estimate.method,
    }


def duration_text(seconds: float) -> str:
    """3725 → "1 h 2 min"; 42 → "42 s"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


__all__ = [
    "CHARS_PER_TOKEN",
    "SAMPLE",
    "Estimate",
    "JudgeEstimate",
    "JudgeInput",
    "ProviderTime",
    "backfill_estimate",
    "duration_text",
    "estimate_out",
    "run_estimate",
    "task_backfill_estimate",
]
