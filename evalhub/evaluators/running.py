"""``evaluator_run``: the one entry point that evaluates a span (or pasted values) with an
evaluator version. It reads what it needs (provider, trace, session, prices) and writes
nothing; a result becomes an annotation by ``evalhub.evaluators.results.result_annotation``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from django.views.decorators.debug import sensitive_variables

from evalhub.evaluators.checks import CheckError, CodeInput, check_run
from evalhub.evaluators.definition import (
    CodeConfig,
    EvaluatorConfigError,
    LlmJudgeConfig,
    config_parse,
)
from evalhub.evaluators.judge import (
    JudgeRequest,
    TemplateVariableMissing,
    UnparseableAnswer,
    judge_parse,
    judge_request,
)
from evalhub.evaluators.sandbox.dispatch import custom_code_run
from evalhub.evaluators.variables import (
    is_missing,
    path_get,
    source_value,
    value_text,
    variables_resolve,
)
from evalhub.providers.crypto import SecretUndecryptable
from evalhub.providers.limiter import Limiter
from evalhub.providers.llm import LlmError, ProviderConfig, RetryPolicy, chat_complete
from evalhub.providers.selectors import provider_config, provider_for

if TYPE_CHECKING:
    from evalhub.evaluators.models import EvaluatorVersion
    from evalhub.providers.models import Provider
    from tracing.models import Span


@dataclass(frozen=True, slots=True)
class DocumentResult:
    """A check's verdict on one retrieved document of the span."""

    label: str | None
    score: float | None
    explanation: str | None


@dataclass(slots=True)
class EvaluationResult:
    """What one evaluation produced. ``error`` set means no verdict: the reason (a missing
    variable, a provider error, an unparseable answer, a code exception with ``traceback``)."""

    evaluator: str  # the evaluator's name
    version_id: int | None
    version: int | None
    kind: str  # "LLM" / "CODE"
    label: str | None = None
    score: float | None = None
    explanation: str | None = None
    error: str | None = None
    # The evaluation could not run on this item — a variable has no value on it (an error
    # trace without an output) — so an online run skips it: why, the same for every such item.
    skipped: str | None = None
    traceback: str | None = None
    values: dict[str, str] = field(default_factory=dict)  # the resolved variables
    rendered_prompt: str | None = None
    raw_response: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    latency_ms: float | None = None
    cost: float | None = None
    attempts: int | None = None
    # When the judge call started and ended (epoch seconds, retries included), and the attempts
    # that failed before its answer (``evalhub.providers.llm.ChatResult.failures``).
    started_at: float | None = None
    ended_at: float | None = None
    attempt_failures: list[dict[str, Any]] = field(default_factory=list)
    # The trace of the judge call, when the task records its judge calls (Enable tracing).
    judge_trace_id: str | None = None
    judge_project: str | None = None
    # The error is not about this item: a bad key, an exhausted quota, an unknown model or a
    # missing provider. Every other item would fail the same way, so a run stops on it.
    fatal: bool = False

    # One result per retrieved document of the span, in order (document checks only); a task
    # stores each on its document (``annotations``' DOCUMENT target).
    documents: list[DocumentResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def annotation_metadata(self) -> dict[str, Any]:
        """What an annotation keeps about the run (not the prompt or raw response)."""
        keys = (
            "version_id",
            "version",
            "error",
            "model",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "latency_ms",
            "cost",
            "judge_trace_id",
            "judge_project",
        )
        data = {"evaluator": self.evaluator, **{k: getattr(self, k) for k in keys}}
        if self.traceback:
            data["traceback"] = self.traceback[-4000:]
        return {k: v for k, v in data.items() if v is not None}


@sensitive_variables("api_key")
def _provider_for(config: LlmJudgeConfig) -> Provider:
    provider = provider_for(config.provider_id)
    if provider is not None:
        return provider
    if config.provider_id is not None:
        raise LlmError(
            f"provider #{config.provider_id} no longer exists; choose another", fatal=True
        )
    raise LlmError("no default LLM provider: add one under Settings → AI providers", fatal=True)


@dataclass(slots=True)
class PreparedEvaluation:
    """An evaluation with everything read from the database: the variables resolved, the
    provider's settings decrypted. ``evaluation_execute`` runs it without touching the database,
    so many can run at once on threads. ``result.error`` set: nothing left to run."""

    result: EvaluationResult
    config: LlmJudgeConfig | CodeConfig | None = None
    request: JudgeRequest | None = None
    provider: ProviderConfig | None = None
    code_input: CodeInput | None = None


def _prepare_judge(
    prepared: PreparedEvaluation,
    config: LlmJudgeConfig,
    span: Any,
    values: Mapping[str, Any],
    provider: Any,
    model: str,
) -> None:
    result = prepared.result
    result.values = variables_resolve(mapping=config.mapping(), span=span, values=values)
    prepared.request = judge_request(
        template=config.template,
        values=result.values,
        system_prompt=config.system_prompt,
        labels=config.labels(),
        mode=config.output_mode,
        explanations=config.explanations,
    )
    result.rendered_prompt = prepared.request.rendered_prompt
    provider = provider or _provider_for(config)
    prepared.provider = provider_config(provider)
    result.model = model or config.model or prepared.provider.default_model


def _call_judge(
    prepared: PreparedEvaluation, limiter: Limiter | None, retry: RetryPolicy | None
) -> None:
    result, config, request = prepared.result, prepared.config, prepared.request
    assert isinstance(config, LlmJudgeConfig) and request is not None
    assert prepared.provider is not None
    result.started_at = time.time()
    chat = chat_complete(
        prepared.provider,
        messages=request.messages,
        model=result.model or "",
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        tools=request.tools,
        tool_choice=request.tool_choice,
        response_format=request.response_format,
        limiter=limiter,
        retry=retry,
    )
    result.ended_at = time.time()
    result.attempt_failures = chat.failures
    result.raw_response = chat.raw
    result.model = chat.model or result.model
    result.prompt_tokens = chat.prompt_tokens
    result.completion_tokens = chat.completion_tokens
    result.total_tokens = chat.total_tokens
    result.latency_ms = round(chat.latency_ms, 1)
    result.attempts = chat.attempts
    answer = judge_parse(
        content=chat.content,
        tool_calls=chat.tool_calls,
        labels=config.labels(),
        mode=config.output_mode,
        explanations=config.explanations,
    )
    result.label = answer.label
    result.score = config.score_of(answer.label)
    result.explanation = answer.explanation


def _span_summary(span: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    if span is not None:
        summary = {
            "span_id": span.span_id,
            "name": span.name,
            "kind": span.span_kind,
            "status_code": span.status_code,
            "status_message": span.status_message,
            "latency_ms": span.latency_ms,
            "model_name": span.model_name,
            "attributes": span.attributes,
        }
    for key in ("latency_ms", "status_code", "status_message"):
        if values.get(key) is not None:
            summary[key] = values[key]
    return summary


def _document_contents(span: Any) -> tuple[str, ...]:
    """The contents of the span's ``retrieval.documents``, one per document in order (``""``
    for one without content), so a document's place is its ``document_position``."""
    if span is None:
        return ()
    docs = path_get(span.attributes or {}, "retrieval.documents")
    if not isinstance(docs, list):
        return ()
    contents = []
    for item in docs:
        document = item.get("document", item) if isinstance(item, Mapping) else None
        content = document.get("content") if isinstance(document, Mapping) else None
        contents.append("" if content is None else str(content))
    return tuple(contents)


def _code_input(config: CodeConfig, span: Any, values: Mapping[str, Any]) -> CodeInput:
    texts: dict[str, str | None] = {}
    for name, source in config.mapping().items():
        if values.get(name) is not None:
            texts[name] = value_text(values[name])
        elif span is not None:
            raw = source_value(span, source)
            texts[name] = None if is_missing(raw) else value_text(raw)
        else:
            texts[name] = None
    metadata = values.get("metadata")
    if not isinstance(metadata, dict):
        metadata = dict(span.metadata or {}) if span is not None else {}
    return CodeInput(
        input=texts["input"],
        output=texts["output"],
        reference=texts["reference"],
        metadata=metadata,
        span=_span_summary(span, values),
        documents=_document_contents(span),
    )


def _run_code(result: EvaluationResult, config: CodeConfig, data: CodeInput) -> None:
    result.values = {
        k: v
        for k, v in (("input", data.input), ("output", data.output), ("reference", data.reference))
        if v is not None
    }
    started = time.monotonic()
    if config.check != "custom":
        outcome = check_run(config.check, data, config.params)
        result.label, result.score, result.explanation = (
            outcome.label,
            outcome.score,
            outcome.explanation,
        )
        result.documents = [
            DocumentResult(label=o.label, score=o.score, explanation=o.explanation)
            for o in outcome.documents
        ]
        result.latency_ms = round((time.monotonic() - started) * 1000, 3)
        return
    sandboxed = custom_code_run(
        version_id=result.version_id,
        code=config.code,
        arguments={
            "input": data.input,
            "output": data.output,
            "metadata": data.metadata,
            "reference": data.reference,
            "span": data.span,
        },
        timeout_seconds=config.timeout_seconds,
        memory_mb=config.memory_mb,
    )
    result.latency_ms = round(sandboxed.duration_ms, 1)
    result.raw_response = sandboxed.stdout or None
    if sandboxed.error:
        result.error, result.traceback = sandboxed.error, sandboxed.traceback
        result.fatal = sandboxed.unavailable  # no other item could run either
        return
    if sandboxed.label is None and sandboxed.score is None:
        result.error = "evaluate() returned neither a label nor a score"
        result.explanation = sandboxed.explanation
        return
    result.label, result.score, result.explanation = (
        sandboxed.label,
        sandboxed.score,
        sandboxed.explanation,
    )


def _fail(result: EvaluationResult, exc: Exception) -> None:
    prefix = "unparseable answer: " if isinstance(exc, UnparseableAnswer) else ""
    result.error = prefix + str(exc)
    result.fatal = isinstance(exc, SecretUndecryptable) or (isinstance(exc, LlmError) and exc.fatal)


_EXPECTED = (
    TemplateVariableMissing,
    LlmError,
    UnparseableAnswer,
    CheckError,
    EvaluatorConfigError,
    SecretUndecryptable,
)


def evaluation_prepare(
    *,
    version: EvaluatorVersion,
    span: Span | None = None,
    values: Mapping[str, Any] | None = None,
    provider: Provider | None = None,
    variables: Mapping[str, str] | None = None,
    model: str = "",
) -> PreparedEvaluation:
    """Read what evaluating ``span`` / ``values`` with ``version`` needs (see
    ``evaluator_run``). ``variables`` overrides the version's variable mapping (a task's
    mapping), ``model`` its model. Never raises for a failing evaluation: ``result.error``."""
    evaluator = version.evaluator
    result = EvaluationResult(
        evaluator=evaluator.name,
        version_id=version.pk,
        version=version.number,
        kind=evaluator.kind,
    )
    prepared = PreparedEvaluation(result=result)
    values = values or {}
    try:
        config = config_parse(version.config)
        if variables:
            data = {**version.config, "variables": {**config.variables, **variables}}
            config = config_parse(data)
        prepared.config = config
        if isinstance(config, LlmJudgeConfig):
            _prepare_judge(prepared, config, span, values, provider, model)
        else:
            prepared.code_input = _code_input(config, span, values)
    except TemplateVariableMissing as exc:
        _fail(result, exc)
        result.skipped = exc.reason
    except _EXPECTED as exc:
        _fail(result, exc)
    return prepared


def evaluation_skip_reason(
    *, version: EvaluatorVersion, span: Span, variables: Mapping[str, str] | None = None
) -> str | None:
    """Why an online run would skip evaluating ``span`` with ``version`` (and a task's
    ``variables`` mapping): a variable with no value on it, as ``evaluation_prepare`` finds it;
    ``None`` when it would run. Reads the span only: no provider, no call."""
    try:
        config = config_parse(version.config)
        if variables:
            config = config_parse(
                {**version.config, "variables": {**config.variables, **variables}}
            )
    except EvaluatorConfigError:
        return None  # not a skip: the run reports the error
    if not isinstance(config, LlmJudgeConfig):
        return None
    try:
        variables_resolve(mapping=config.mapping(), span=span)
    except TemplateVariableMissing as exc:
        return exc.reason
    return None


def evaluation_execute(
    prepared: PreparedEvaluation,
    *,
    limiter: Limiter | None = None,
    retry: RetryPolicy | None = None,
) -> EvaluationResult:
    """Run a prepared evaluation: the judge call or the code. No database access (the cost
    is ``evaluation_cost``'s); never raises for a failing evaluation."""
    result = prepared.result
    if result.error is not None:
        return result
    try:
        if isinstance(prepared.config, LlmJudgeConfig):
            _call_judge(prepared, limiter, retry)
        elif isinstance(prepared.config, CodeConfig) and prepared.code_input is not None:
            _run_code(result, prepared.config, prepared.code_input)
    except _EXPECTED as exc:
        _fail(result, exc)
        if result.started_at is not None and result.ended_at is None:
            result.ended_at = time.time()
        if isinstance(exc, LlmError):
            result.attempt_failures = exc.failures
            result.attempts = len(exc.failures) + 1
    return result


def evaluation_cost(result: EvaluationResult) -> None:
    """Price the judge call from the model price table (reads it, cached per process)."""
    from tracing.store.pricing import cost_of

    if result.model and result.kind == "LLM":
        result.cost = cost_of(result.model, result.prompt_tokens, result.completion_tokens)


def evaluator_run(
    *,
    version: EvaluatorVersion,
    span: Span | None = None,
    values: Mapping[str, Any] | None = None,
    provider: Provider | None = None,
    limiter: Limiter | None = None,
    retry: RetryPolicy | None = None,
    variables: Mapping[str, str] | None = None,
    model: str = "",
) -> EvaluationResult:
    """Evaluate ``span`` (a ``tracing.models.Span``; for trace or session granularity, a span of
    that trace or session — usually its root) and/or pasted ``values`` (variable → value, which
    win over the span's) with ``version`` (an ``EvaluatorVersion``).

    Never raises for an evaluation that fails: the result carries the error (and ``fatal`` when
    no other item could succeed either). ``provider`` overrides the version's provider (the
    playground's "Test connection"; a task's LLM override), ``variables`` its variable mapping,
    ``model`` its model; ``limiter`` and ``retry`` the defaults (tests).
    """
    prepared = evaluation_prepare(
        version=version,
        span=span,
        values=values,
        provider=provider,
        variables=variables,
        model=model,
    )
    result = evaluation_execute(prepared, limiter=limiter, retry=retry)
    evaluation_cost(result)
    return result
