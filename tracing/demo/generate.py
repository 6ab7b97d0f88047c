"""Deterministic demo traces: OpenInference spans and evaluations, built without touching the
database.

Everything comes from one RNG seeded with ``(seed, project)``, and every trace and span id is a
hash of ``(seed, project, trace index, span index)``: the same arguments give the same records,
and seeding again finds the spans already stored. Times are laid out backwards from ``now`` over
the last ``days`` days.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from tracing.demo import content
from tracing.demo.content import AgentTask, Customer, KnowledgeQuestion, ToolCall
from tracing.models import SpanKind, StatusCode
from tracing.store.records import SpanRecord

DEMO_SEED = 1729
ERROR_RATE = 0.08
SESSION_RATE = 0.8  # share of conversations with 2 to 6 turns; the rest are one-off questions
HALLUCINATION_RATE = 0.12

MODELS = (  # (model, provider, weight, ms per completion token)
    ("gpt-4o", "openai", 5, 11.0),
    ("gpt-4o-mini", "openai", 3, 6.0),
    ("claude-3-5-sonnet-20241022", "anthropic", 2, 13.0),
)
EMBEDDING_MODEL = "text-embedding-3-small"
RERANKER_MODEL = "rerank-english-v3.0"
EVALUATOR_MODEL = "gpt-4o"

TraceKind = Literal["agent", "rag"]


@dataclass(frozen=True, slots=True)
class DemoAnnotation:
    """An evaluation result or human label on one span, as ``annotations_upsert`` takes it."""

    span_id: str
    name: str
    annotator_kind: str
    label: str
    score: float
    explanation: str
    metadata: dict[str, Any]


@dataclass(slots=True)
class DemoTrace:
    index: int
    kind: TraceKind
    trace_id: str
    root_span_id: str
    session_id: str | None
    failed: bool
    records: list[SpanRecord] = field(default_factory=list)
    annotations: list[DemoAnnotation] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Failure:
    type: str
    message: str
    stacktrace: str

    @property
    def status_message(self) -> str:
        return f"{self.type}: {self.message}"

    def event(self, at: datetime) -> dict[str, Any]:
        return {
            "name": "exception",
            "timestamp": at.isoformat(),
            "attributes": {
                "exception.type": self.type,
                "exception.message": self.message,
                "exception.stacktrace": self.stacktrace,
                "exception.escaped": "False",
            },
        }


def _stacktrace(frames: list[tuple[str, int, str, str]], error_type: str, message: str) -> str:
    lines = ["Traceback (most recent call last):"]
    for path, line, function, code in frames:
        lines.append(f'  File "{path}", line {line}, in {function}')
        lines.append(f"    {code}")
    lines.append(f"{error_type}: {message}")
    return "\n".join(lines)


_SITE = "/usr/local/lib/python3.12/site-packages"


def _llm_failure(rng: random.Random, provider: str, model: str, where: str) -> _Failure:
    frames = [
        (
            "/app/support/pipeline.py",
            rng.choice((88, 91, 142)),
            where,
            "response = llm.invoke(messages)",
        ),
        (
            f"{_SITE}/{provider}/_base_client.py",
            1047,
            "request",
            "raise self._make_status_error_from_response(err.response) from None",
        ),
    ]
    if provider == "anthropic":
        options = [
            (
                "anthropic.InternalServerError",
                "Error code: 529 - {'type': 'error', 'error': {'type': 'overloaded_error', "
                "'message': 'Overloaded'}}",
            ),
            ("anthropic.APITimeoutError", "Request timed out."),
        ]
    else:
        used = rng.randint(28000, 29900)
        options = [
            (
                "openai.RateLimitError",
                f"Error code: 429 - {{'error': {{'message': 'Rate limit reached for {model} in "
                f"organization org-lumio on tokens per min (TPM): Limit 30000, Used {used}, "
                f"Requested {rng.randint(900, 2400)}. Please try again in "
                f"{rng.uniform(0.5, 3):.3f}s.', 'type': 'tokens', 'code': 'rate_limit_exceeded'}}}}",
            ),
            ("openai.APITimeoutError", "Request timed out."),
            (
                "openai.BadRequestError",
                "Error code: 400 - {'error': {'message': \"This model's maximum context length "
                "is 128000 tokens. However, your messages resulted in 131584 tokens. Please "
                "reduce the length of the messages.\", 'type': 'invalid_request_error', "
                "'param': 'messages', 'code': 'context_length_exceeded'}}",
            ),
        ]
    error_type, message = rng.choice(options)
    return _Failure(error_type, message, _stacktrace(frames, error_type, message))


def _tool_failure(rng: random.Random, tool: str) -> _Failure:
    service = "orders" if "order" in tool or "return" in tool else "accounts"
    options = [
        ("TimeoutError", f"{service}-service did not respond within 5.0 s"),
        (
            "httpx.HTTPStatusError",
            f"Server error '503 Service Unavailable' for url "
            f"'http://{service}.internal:8080/v2/{tool.replace('_', '-')}'",
        ),
    ]
    error_type, message = rng.choice(options)
    frames = [
        (
            "/app/support/tools.py",
            rng.choice((41, 57, 73, 96)),
            tool,
            f"resp = client.post('/v2/{tool}', json=args)",
        ),
        (f"{_SITE}/httpx/_client.py", 1144, "post", "return self.request("),
        (
            f"{_SITE}/httpx/_models.py",
            829,
            "raise_for_status",
            "raise HTTPStatusError(message, request=request, response=self)",
        ),
    ]
    return _Failure(error_type, message, _stacktrace(frames, error_type, message))


def _retrieval_failure(rng: random.Random, stage: str) -> _Failure:
    if stage == "embedding":
        error_type, message = "openai.APIConnectionError", "Connection error."
        frames = [
            ("/app/support/rag.py", 37, "embed_query", "vector = embedder.embed_query(question)"),
            (
                f"{_SITE}/openai/_base_client.py",
                1012,
                "request",
                "raise APIConnectionError(request=request) from err",
            ),
        ]
    else:
        error_type = "qdrant_client.http.exceptions.ResponseHandlingException"
        message = rng.choice(("timed out", "[Errno 111] Connection refused"))
        frames = [
            (
                "/app/support/rag.py",
                52,
                "retrieve",
                "hits = store.search(collection='help-center', query_vector=vector, limit=k)",
            ),
            (
                f"{_SITE}/qdrant_client/http/api_client.py",
                134,
                "send",
                "raise ResponseHandlingException(e)",
            ),
        ]
    return _Failure(error_type, message, _stacktrace(frames, error_type, message))


def _hex(*parts: object, width: int) -> str:
    text = ":".join(str(part) for part in ("evalhub-demo", *parts))
    return hashlib.sha256(text.encode()).hexdigest()[:width]


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _lognormal_ms(rng: random.Random, median_ms: float, sigma: float) -> float:
    return median_ms * math.exp(rng.gauss(0.0, sigma))


@dataclass(frozen=True, slots=True)
class _Message:
    role: str
    content: str = ""
    tool_calls: tuple[tuple[str, ToolCall], ...] = ()  # (tool call id, call)
    tool_call_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "content": self.content or None}
        if self.tool_calls:
            data["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.tool, "arguments": json.dumps(call.arguments)},
                }
                for call_id, call in self.tool_calls
            ]
        if self.tool_call_id:
            data["tool_call_id"] = self.tool_call_id
        return data

    def tokens(self) -> int:
        return (
            4
            + _tokens(self.content)
            + sum(_tokens(json.dumps(c.arguments)) + 8 for _, c in self.tool_calls)
        )


def _message_attributes(prefix: str, messages: list[_Message]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for i, message in enumerate(messages):
        base = f"{prefix}.{i}.message"
        attrs[f"{base}.role"] = message.role
        if message.content:
            attrs[f"{base}.content"] = message.content
        for j, (call_id, call) in enumerate(message.tool_calls):
            attrs[f"{base}.tool_calls.{j}.tool_call.id"] = call_id
            attrs[f"{base}.tool_calls.{j}.tool_call.function.name"] = call.tool
            attrs[f"{base}.tool_calls.{j}.tool_call.function.arguments"] = json.dumps(
                call.arguments
            )
        if message.tool_call_id:
            attrs[f"{base}.tool_call_id"] = message.tool_call_id
    return attrs


def _document_attributes(prefix: str, docs: list[tuple[content.Document, float]]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for i, (doc, score) in enumerate(docs):
        base = f"{prefix}.{i}.document"
        attrs[f"{base}.id"] = doc.id
        attrs[f"{base}.content"] = doc.content
        attrs[f"{base}.score"] = round(score, 4)
        attrs[f"{base}.metadata"] = json.dumps({"title": doc.title, "url": doc.url})
    return attrs


class _TraceBuilder:
    """Lays out one trace's spans: children one after another under a root made last."""

    def __init__(
        self,
        *,
        seed: int,
        project: str,
        index: int,
        start: datetime,
        common: dict[str, Any],
    ) -> None:
        self.seed, self.project, self.index = seed, project, index
        self.trace_id = _hex(seed, project, index, "trace", width=32)
        self.root_span_id = self._span_id(0)
        self.common = common
        self.start = start
        self.cursor = start + timedelta(milliseconds=3)
        self.records: list[SpanRecord] = []

    def _span_id(self, number: int) -> str:
        return _hex(self.seed, self.project, self.index, "span", number, width=16)

    def child(
        self,
        *,
        name: str,
        kind: str,
        latency_ms: float,
        attributes: dict[str, Any],
        failure: _Failure | None = None,
        gap_ms: float = 2.0,
    ) -> SpanRecord:
        start = self.cursor + timedelta(milliseconds=gap_ms)
        end = start + timedelta(milliseconds=round(latency_ms, 3))
        self.cursor = end
        record = self._record(
            span_id=self._span_id(len(self.records) + 1),
            parent_id=self.root_span_id,
            name=name,
            kind=kind,
            start=start,
            end=end,
            attributes=attributes,
            failure=failure,
        )
        self.records.append(record)
        return record

    def root(
        self, *, name: str, kind: str, attributes: dict[str, Any], failure: _Failure | None
    ) -> SpanRecord:
        end = self.cursor + timedelta(milliseconds=4)
        record = self._record(
            span_id=self.root_span_id,
            parent_id=None,
            name=name,
            kind=kind,
            start=self.start,
            end=end,
            attributes=attributes,
            failure=failure,
        )
        self.records.insert(0, record)
        return record

    def _record(
        self,
        *,
        span_id: str,
        parent_id: str | None,
        name: str,
        kind: str,
        start: datetime,
        end: datetime,
        attributes: dict[str, Any],
        failure: _Failure | None,
    ) -> SpanRecord:
        return SpanRecord(
            trace_id=self.trace_id,
            span_id=span_id,
            parent_id=parent_id,
            name=name,
            start_time=start,
            end_time=end,
            status_code=StatusCode.ERROR if failure else StatusCode.OK,
            status_message=failure.status_message if failure else "",
            attributes={"openinference.span.kind": kind, **attributes, **self.common},
            events=[failure.event(end)] if failure else [],
            project_name=self.project,
        )


@dataclass(slots=True)
class _Turn:
    """What one turn of a conversation needs from the conversation around it."""

    index: int
    start: datetime
    customer: Customer
    session_id: str | None
    history: list[_Message]
    common: dict[str, Any]


class _Generator:
    def __init__(self, *, seed: int, project: str, now: datetime, days: int) -> None:
        self.seed, self.project, self.now, self.days = seed, project, now, days
        self.rng = random.Random(f"evalhub-demo:{seed}:{project}")  # noqa: S311 - demo data
        self.customers = content.customers(self.rng)

    # -- conversations -------------------------------------------------------------------

    def traces(self, count: int) -> list[DemoTrace]:
        rng = self.rng
        result: list[DemoTrace] = []
        conversation = 0
        while len(result) < count:
            turns = rng.randint(2, 6) if rng.random() < SESSION_RATE else 1
            turns = min(turns, count - len(result))
            customer = rng.choice(self.customers)
            channel = rng.choices(content.CHANNELS, weights=(5, 3, 2))[0]
            version = rng.choices(content.APP_VERSIONS, weights=(2, 5, 3))[0]
            session_id = (
                str(uuid.UUID(_hex(self.seed, self.project, "session", conversation, width=32)))
                if turns > 1
                else None
            )
            # Conversations end at least a minute ago and start within the last ``days``.
            span_seconds = self.days * 86400 - 60 - turns * 300
            start = self.now - timedelta(seconds=60 + rng.uniform(0, max(span_seconds, 60)))
            start -= timedelta(seconds=turns * 300)
            metadata = json.dumps(
                {
                    "region": customer.region,
                    "plan": customer.plan,
                    "app_version": version,
                    "channel": channel,
                }
            )
            history: list[_Message] = []
            for _turn in range(turns):
                common: dict[str, Any] = {"user.id": customer.user_id, "metadata": metadata}
                if session_id:
                    common["session.id"] = session_id
                turn = _Turn(len(result), start, customer, session_id, history, common)
                rag = rng.random() < 0.5
                follow_up = bool(history) and rag and rng.random() < 0.3
                trace = self._rag(turn, follow_up) if rag else self._agent(turn)
                result.append(trace)
                last = trace.records[0]
                start = last.end_time + timedelta(seconds=rng.uniform(15, 240))
                if not trace.failed:
                    question = str(last.attributes["input.value"])
                    answer = str(last.attributes["output.value"])
                    history = [
                        *history,
                        _Message("user", question),
                        _Message("assistant", answer),
                    ][-8:]
            conversation += 1
        return result

    # -- shared pieces -------------------------------------------------------------------

    def _model(self) -> tuple[str, str, float]:
        model, provider, _, ms_per_token = self.rng.choices(MODELS, weights=[m[2] for m in MODELS])[
            0
        ]
        return model, provider, ms_per_token

    def _llm_latency(self, completion_tokens: int, ms_per_token: float) -> float:
        latency = (180 + completion_tokens * ms_per_token) * math.exp(self.rng.gauss(0, 0.3))
        if self.rng.random() < 0.04:  # the slow tail: queueing at the provider
            latency *= self.rng.uniform(3.0, 7.0)
        return latency

    def _llm_attributes(
        self,
        *,
        model: str,
        provider: str,
        messages: list[_Message],
        output: _Message | None,
        tools: list[str],
        params: dict[str, Any],
    ) -> dict[str, Any]:
        invocation = {"model": model, **params}
        request: dict[str, Any] = {**invocation, "messages": [m.as_dict() for m in messages]}
        if tools:
            request["tools"] = [json.loads(content.TOOLS[t].json_schema()) for t in tools]
        prompt_tokens = sum(m.tokens() for m in messages) + 60 * len(tools)
        attrs: dict[str, Any] = {
            "llm.model_name": model,
            "llm.provider": provider,
            "llm.system": provider,
            "llm.invocation_parameters": json.dumps(invocation),
            "input.value": json.dumps(request),
            "input.mime_type": "application/json",
            **_message_attributes("llm.input_messages", messages),
        }
        for i, tool in enumerate(tools):
            attrs[f"llm.tools.{i}.tool.json_schema"] = content.TOOLS[tool].json_schema()
        if output is not None:
            completion_tokens = output.tokens()
            attrs.update(_message_attributes("llm.output_messages", [output]))
            if output.tool_calls:
                attrs["output.value"] = json.dumps(output.as_dict())
                attrs["output.mime_type"] = "application/json"
            else:
                attrs["output.value"] = output.content
                attrs["output.mime_type"] = "text/plain"
            attrs["llm.token_count.completion"] = completion_tokens
            attrs["llm.token_count.total"] = prompt_tokens + completion_tokens
        attrs["llm.token_count.prompt"] = prompt_tokens
        return attrs

    # -- agent traces --------------------------------------------------------------------

    def _agent(self, turn: _Turn) -> DemoTrace:
        rng = self.rng
        task: AgentTask = rng.choice(content.AGENT_TASKS)(rng, turn.customer)
        model, provider, ms_per_token = self._model()
        params: dict[str, Any] = {"temperature": 0.2, "max_tokens": 1024}
        # The two providers spell "let the model choose a tool" differently.
        auto = "auto" if provider == "openai" else {"type": "auto"}
        plan_params = {**params, "tool_choice": auto}
        tags = ["support", "agent", "multi-turn" if turn.session_id else "one-off"]
        builder = _TraceBuilder(
            seed=self.seed,
            project=self.project,
            index=turn.index,
            start=turn.start,
            common={**turn.common, "tag.tags": tags},
        )
        fails = rng.random() < ERROR_RATE
        fail_at = rng.choices(("plan", "tool", "answer"), weights=(4, 4, 2))[0] if fails else ""
        failure: _Failure | None = None
        answer_span: SpanRecord | None = None

        messages = [
            _Message("system", content.SYSTEM_PROMPT_AGENT),
            *turn.history,
            _Message("user", task.question),
        ]
        tools = sorted(
            {call.tool for call in task.calls} | set(rng.sample(sorted(content.TOOLS), 3))
        )
        call_ids = [
            (f"call_{_hex(self.seed, self.project, turn.index, 'call', i, width=24)}", call)
            for i, call in enumerate(task.calls)
        ]
        plan = _Message("assistant", "", tuple(call_ids))
        if fail_at == "plan":
            failure = _llm_failure(rng, provider, model, "plan")
            latency = rng.uniform(200, 900) if "RateLimit" in failure.type else 30_000.0
            builder.child(
                name="ChatCompletion" if provider == "openai" else "Messages",
                kind=SpanKind.LLM,
                latency_ms=latency,
                attributes=self._llm_attributes(
                    model=model,
                    provider=provider,
                    messages=messages,
                    output=None,
                    tools=tools,
                    params=plan_params,
                ),
                failure=failure,
            )
        else:
            plan_attrs = self._llm_attributes(
                model=model,
                provider=provider,
                messages=messages,
                output=plan,
                tools=tools,
                params=plan_params,
            )
            builder.child(
                name="ChatCompletion" if provider == "openai" else "Messages",
                kind=SpanKind.LLM,
                latency_ms=self._llm_latency(plan.tokens(), ms_per_token),
                attributes=plan_attrs,
            )
            failing_call = rng.randrange(len(call_ids)) if fail_at == "tool" else -1
            tool_messages = []
            for position, (call_id, call) in enumerate(call_ids):
                tool = content.TOOLS[call.tool]
                attrs = {
                    "tool.name": tool.name,
                    "tool.description": tool.description,
                    "tool.parameters": json.dumps(tool.parameters),
                    "tool.id": call_id,
                    "input.value": json.dumps(call.arguments),
                    "input.mime_type": "application/json",
                }
                if position == failing_call:
                    failure = _tool_failure(rng, call.tool)
                    latency = 5000 + rng.uniform(0, 40) if failure.type == "TimeoutError" else 0.0
                    builder.child(
                        name=call.tool,
                        kind=SpanKind.TOOL,
                        latency_ms=latency or _lognormal_ms(rng, 140, 0.5),
                        attributes=attrs,
                        failure=failure,
                        gap_ms=rng.uniform(1, 6),
                    )
                    break
                result = json.dumps(call.result)
                attrs["output.value"] = result
                attrs["output.mime_type"] = "application/json"
                builder.child(
                    name=call.tool,
                    kind=SpanKind.TOOL,
                    latency_ms=_lognormal_ms(rng, 120, 0.6),
                    attributes=attrs,
                    gap_ms=rng.uniform(1, 6),
                )
                tool_messages.append(_Message("tool", result, tool_call_id=call_id))
            if failure is None:
                answer = _Message("assistant", task.answer)
                final_messages = [*messages, plan, *tool_messages]
                if fail_at == "answer":
                    failure = _llm_failure(rng, provider, model, "answer")
                    output = None
                    latency = rng.uniform(200, 900) if "RateLimit" in failure.type else 30_000.0
                else:
                    output = answer
                    latency = self._llm_latency(answer.tokens(), ms_per_token)
                answer_span = builder.child(
                    name="ChatCompletion" if provider == "openai" else "Messages",
                    kind=SpanKind.LLM,
                    latency_ms=latency,
                    attributes=self._llm_attributes(
                        model=model,
                        provider=provider,
                        messages=final_messages,
                        output=output,
                        tools=[],
                        params=params,
                    ),
                    failure=failure,
                )
        root_attrs: dict[str, Any] = {
            "input.value": task.question,
            "input.mime_type": "text/plain",
            "agent.name": "lumio-support-agent",
        }
        if failure is None:
            root_attrs["output.value"] = task.answer
            root_attrs["output.mime_type"] = "text/plain"
        builder.root(
            name="support_agent", kind=SpanKind.AGENT, attributes=root_attrs, failure=failure
        )
        trace = DemoTrace(
            index=turn.index,
            kind="agent",
            trace_id=builder.trace_id,
            root_span_id=builder.root_span_id,
            session_id=turn.session_id,
            failed=failure is not None,
            records=builder.records,
        )
        if failure is None and answer_span is not None:
            self._evaluate(trace, answer_span.span_id, hallucinated=False, claim="", docs=[])
        self._human_review(trace, hallucinated=False)
        return trace

    # -- RAG traces ----------------------------------------------------------------------

    def _rag(self, turn: _Turn, follow_up: bool) -> DemoTrace:
        rng = self.rng
        pool = content.FOLLOW_UPS if follow_up else content.KNOWLEDGE_QUESTIONS
        item: KnowledgeQuestion = rng.choice(pool)
        model, provider, ms_per_token = self._model()
        tags = ["support", "rag", "multi-turn" if turn.session_id else "one-off"]
        if rng.random() < 0.15:
            tags.append("prompt-v2")
        builder = _TraceBuilder(
            seed=self.seed,
            project=self.project,
            index=turn.index,
            start=turn.start,
            common={**turn.common, "tag.tags": tags},
        )
        fails = rng.random() < ERROR_RATE
        fail_at = (
            rng.choices(("embedding", "retriever", "llm"), weights=(1, 3, 4))[0] if fails else ""
        )
        failure: _Failure | None = None
        question = item.question

        vector = [round(rng.uniform(-0.12, 0.12), 5) for _ in range(16)]
        embed_attrs: dict[str, Any] = {
            "embedding.model_name": EMBEDDING_MODEL,
            "embedding.invocation_parameters": json.dumps({"model": EMBEDDING_MODEL}),
            "embedding.embeddings.0.embedding.text": question,
            "input.value": question,
            "input.mime_type": "text/plain",
            "llm.token_count.prompt": _tokens(question),
            "llm.token_count.total": _tokens(question),
        }
        if fail_at == "embedding":
            failure = _retrieval_failure(rng, "embedding")
        else:
            embed_attrs["embedding.embeddings.0.embedding.vector"] = vector
        builder.child(
            name="CreateEmbeddings",
            kind=SpanKind.EMBEDDING,
            latency_ms=_lognormal_ms(rng, 45, 0.4),
            attributes=embed_attrs,
            failure=failure,
        )
        answer_span: SpanRecord | None = None
        hallucinated, claim = False, ""
        docs: list[tuple[content.Document, float]] = []
        if failure is None:
            relevant = [content.DOCUMENTS_BY_ID[d] for d in item.documents]
            others = [d for d in content.DOCUMENTS if d.id not in item.documents]
            top_k = rng.choice((4, 5))
            found = relevant + rng.sample(others, top_k - len(relevant))
            scored = sorted(
                (
                    (doc, rng.uniform(0.78, 0.93) if doc in relevant else rng.uniform(0.55, 0.8))
                    for doc in found
                ),
                key=lambda pair: -pair[1],
            )
            retriever_attrs: dict[str, Any] = {
                "input.value": question,
                "input.mime_type": "text/plain",
            }
            if fail_at == "retriever":
                failure = _retrieval_failure(rng, "retriever")
                latency = 3000 + rng.uniform(0, 30) if failure.message == "timed out" else 4.0
            else:
                retriever_attrs.update(_document_attributes("retrieval.documents", scored))
                latency = _lognormal_ms(rng, 90, 0.5)
            builder.child(
                name="VectorStoreRetriever",
                kind=SpanKind.RETRIEVER,
                latency_ms=latency,
                attributes=retriever_attrs,
                failure=failure,
            )
            docs = scored[:3]
        if failure is None and rng.random() < 0.5:
            reranked = sorted(
                (
                    (
                        doc,
                        rng.uniform(0.85, 0.99)
                        if doc.id in item.documents
                        else rng.uniform(0.02, 0.4),
                    )
                    for doc, _ in scored
                ),
                key=lambda pair: -pair[1],
            )[:3]
            builder.child(
                name="CohereRerank",
                kind=SpanKind.RERANKER,
                latency_ms=_lognormal_ms(rng, 180, 0.4),
                attributes={
                    "reranker.model_name": RERANKER_MODEL,
                    "reranker.query": question,
                    "reranker.top_k": 3,
                    "input.value": question,
                    "input.mime_type": "text/plain",
                    **_document_attributes("reranker.input_documents", scored),
                    **_document_attributes("reranker.output_documents", reranked),
                },
            )
            docs = reranked
        answer_text = item.answer
        if failure is None:
            hallucinated = rng.random() < HALLUCINATION_RATE
            if hallucinated:
                claim = rng.choice(content.UNSUPPORTED_CLAIMS)
                answer_text = f"{item.answer} {claim}"
            context = "\n\n".join(f"[{doc.id}] {doc.title}\n{doc.content}" for doc, _ in docs)
            messages = [
                _Message("system", content.SYSTEM_PROMPT_RAG.format(context=context)),
                *turn.history,
                _Message("user", question),
            ]
            params = {"temperature": 0.0, "max_tokens": 512}
            # LangChain's ChatPromptTemplate: an OpenInference PROMPT span formats the messages.
            builder.child(
                name="ChatPromptTemplate",
                kind="PROMPT",
                latency_ms=0.4,
                attributes={
                    "input.value": json.dumps({"context": context, "question": question}),
                    "input.mime_type": "application/json",
                    "output.value": messages[0].content,
                    "output.mime_type": "text/plain",
                    "llm.prompt_template.template": content.SYSTEM_PROMPT_RAG,
                    "llm.prompt_template.version": "v2" if "prompt-v2" in tags else "v1",
                },
            )
            if fail_at == "llm":
                failure = _llm_failure(rng, provider, model, "generate")
                output = None
                latency = rng.uniform(200, 900) if "RateLimit" in failure.type else 30_000.0
            else:
                output = _Message("assistant", answer_text)
                latency = self._llm_latency(output.tokens(), ms_per_token)
            answer_span = builder.child(
                name="ChatCompletion" if provider == "openai" else "Messages",
                kind=SpanKind.LLM,
                latency_ms=latency,
                attributes={
                    **self._llm_attributes(
                        model=model,
                        provider=provider,
                        messages=messages,
                        output=output,
                        tools=[],
                        params=params,
                    ),
                    "llm.prompt_template.template": content.SYSTEM_PROMPT_RAG,
                    "llm.prompt_template.variables": json.dumps({"context": context}),
                    "llm.prompt_template.version": "v2" if "prompt-v2" in tags else "v1",
                },
                failure=failure,
            )
        root_attrs: dict[str, Any] = {"input.value": question, "input.mime_type": "text/plain"}
        if failure is None:
            root_attrs["output.value"] = answer_text
            root_attrs["output.mime_type"] = "text/plain"
        builder.root(
            name="answer_question", kind=SpanKind.CHAIN, attributes=root_attrs, failure=failure
        )
        trace = DemoTrace(
            index=turn.index,
            kind="rag",
            trace_id=builder.trace_id,
            root_span_id=builder.root_span_id,
            session_id=turn.session_id,
            failed=failure is not None,
            records=builder.records,
        )
        if failure is None and answer_span is not None:
            self._evaluate(
                trace, answer_span.span_id, hallucinated=hallucinated, claim=claim, docs=docs
            )
        self._human_review(trace, hallucinated=hallucinated)
        return trace

    # -- evaluations -----------------------------------------------------------------------

    def _evaluate(
        self,
        trace: DemoTrace,
        span_id: str,
        *,
        hallucinated: bool,
        claim: str,
        docs: list[tuple[content.Document, float]],
    ) -> None:
        """LLM-judged "Correctness" on most answers, "Hallucination" on most RAG answers."""
        rng = self.rng
        meta = {"model": EVALUATOR_MODEL, "evaluator": "demo"}
        if rng.random() < 0.7:
            correct = rng.random() < (0.15 if hallucinated else 0.93)
            trace.annotations.append(
                DemoAnnotation(
                    span_id=span_id,
                    name="Correctness",
                    annotator_kind="LLM",
                    label="correct" if correct else "incorrect",
                    score=1.0 if correct else 0.0,
                    explanation=rng.choice(
                        content.CORRECT_EXPLANATIONS if correct else content.INCORRECT_EXPLANATIONS
                    ),
                    metadata=meta,
                )
            )
        if trace.kind == "rag" and rng.random() < 0.85:
            detected = hallucinated and rng.random() < 0.9
            sources = ", ".join(doc.id for doc, _ in docs)
            explanation = (
                f'The answer says "{claim}", which none of the retrieved documents '
                f"({sources}) support."
                if detected
                else f"Every statement in the answer is supported by the retrieved documents "
                f"({sources})."
            )
            trace.annotations.append(
                DemoAnnotation(
                    span_id=span_id,
                    name="Hallucination",
                    annotator_kind="LLM",
                    label="hallucinated" if detected else "factual",
                    score=0.0 if detected else 1.0,
                    explanation=explanation,
                    metadata=meta,
                )
            )

    def _human_review(self, trace: DemoTrace, *, hallucinated: bool) -> None:
        """A support lead's "Quality" label on some conversations' root spans."""
        rng = self.rng
        if rng.random() >= 0.12:
            return
        if trace.failed:
            good, note = False, content.HUMAN_BAD[2]
        elif hallucinated:
            good, note = False, content.HUMAN_BAD[1]
        else:
            good = rng.random() < 0.9
            note = rng.choice(content.HUMAN_GOOD) if good else content.HUMAN_BAD[0]
        trace.annotations.append(
            DemoAnnotation(
                span_id=trace.root_span_id,
                name="Quality",
                annotator_kind="HUMAN",
                label="good" if good else "bad",
                score=1.0 if good else 0.0,
                explanation=note,
                metadata={"reviewer": "support-lead"},
            )
        )


def demo_generate(
    *, traces: int, project: str, days: int, now: datetime, seed: int = DEMO_SEED
) -> list[DemoTrace]:
    """The demo traces for ``project``, newest data ending just before ``now``.

    The same arguments always give the same traces; ids depend only on ``seed``, ``project``
    and each trace's position, so a longer run starts with the traces of a shorter one.
    """
    if traces < 1:
        raise ValueError("traces must be at least 1")
    if days < 1:
        raise ValueError("days must be at least 1")
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    generator = _Generator(seed=seed, project=project, now=now, days=days)
    return generator.traces(traces)
