"""Deterministic demo traces: OpenInference spans and evaluations, built without touching the
database.

Everything comes from one RNG seeded with ``(seed, project)``, and every trace and span id is a
hash of ``(seed, project, trace index, span index)``: the same arguments give the same records,
and seeding again finds the spans already stored. Times are laid out backwards from ``now`` over
the last ``days`` days.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from tracing.demo import content
from tracing.demo.content import AgentTask, Customer, KnowledgeQuestion
from tracing.demo.evaluations import DemoAnnotation, judge_annotations, review_annotation
from tracing.demo.failures import (
    Failure,
    llm_failure,
    llm_failure_ms,
    retrieval_failure,
    tool_failure,
)
from tracing.demo.spans import (
    EMBEDDING_MODEL,
    RERANKER_MODEL,
    Message,
    TraceBuilder,
    document_attributes,
    hex_id,
    llm_attributes,
    llm_latency_ms,
    llm_span_name,
    lognormal_ms,
    model_choose,
    token_count,
    tool_attributes,
)
from tracing.models import SpanKind
from tracing.store.records import SpanRecord

DEMO_SEED = 1729
ERROR_RATE = 0.08
SESSION_RATE = 0.8  # share of conversations with 2 to 6 turns; the rest are one-off questions
HALLUCINATION_RATE = 0.12

TraceKind = Literal["agent", "rag"]


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


@dataclass(slots=True)
class _Turn:
    """What one turn of a conversation needs from the conversation around it."""

    index: int
    start: datetime
    customer: Customer
    session_id: str | None
    history: list[Message]
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
                str(uuid.UUID(hex_id(self.seed, self.project, "session", conversation, width=32)))
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
            history: list[Message] = []
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
                        Message("user", question),
                        Message("assistant", answer),
                    ][-8:]
            conversation += 1
        return result

    # -- agent traces --------------------------------------------------------------------

    def _agent(self, turn: _Turn) -> DemoTrace:
        rng = self.rng
        task: AgentTask = rng.choice(content.AGENT_TASKS)(rng, turn.customer)
        chat = model_choose(rng)
        provider = chat[1]
        params: dict[str, Any] = {"temperature": 0.2, "max_tokens": 1024}
        # The two providers spell "let the model choose a tool" differently.
        auto = "auto" if provider == "openai" else {"type": "auto"}
        plan_params = {**params, "tool_choice": auto}
        tags = ["support", "agent", "multi-turn" if turn.session_id else "one-off"]
        builder = self._builder(turn, tags)
        fails = rng.random() < ERROR_RATE
        fail_at = rng.choices(("plan", "tool", "answer"), weights=(4, 4, 2))[0] if fails else ""
        answer_span: SpanRecord | None = None

        messages = [
            Message("system", content.SYSTEM_PROMPT_AGENT),
            *turn.history,
            Message("user", task.question),
        ]
        tools = sorted(
            {call.tool for call in task.calls} | set(rng.sample(sorted(content.TOOLS), 3))
        )
        call_ids = [
            (f"call_{hex_id(self.seed, self.project, turn.index, 'call', i, width=24)}", call)
            for i, call in enumerate(task.calls)
        ]
        plan = Message("assistant", "", tuple(call_ids))
        _, failure = self._llm_span(
            builder,
            chat,
            failing="plan" if fail_at == "plan" else "",
            messages=messages,
            reply=plan,
            tools=tools,
            params=plan_params,
        )
        if failure is None:
            failing_call = rng.randrange(len(call_ids)) if fail_at == "tool" else -1
            tool_messages = []
            for position, (call_id, call) in enumerate(call_ids):
                attrs = tool_attributes(call_id, call)
                if position == failing_call:
                    failure = tool_failure(rng, call.tool)
                    latency = 5000 + rng.uniform(0, 40) if failure.type == "TimeoutError" else 0.0
                    builder.child(
                        name=call.tool,
                        kind=SpanKind.TOOL,
                        latency_ms=latency or lognormal_ms(rng, 140, 0.5),
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
                    latency_ms=lognormal_ms(rng, 120, 0.6),
                    attributes=attrs,
                    gap_ms=rng.uniform(1, 6),
                )
                tool_messages.append(Message("tool", result, tool_call_id=call_id))
            if failure is None:
                answer_span, failure = self._llm_span(
                    builder,
                    chat,
                    failing="answer" if fail_at == "answer" else "",
                    messages=[*messages, plan, *tool_messages],
                    reply=Message("assistant", task.answer),
                    tools=[],
                    params=params,
                )
        return self._trace(
            builder,
            turn,
            kind="agent",
            root=("support_agent", SpanKind.AGENT, {"agent.name": "lumio-support-agent"}),
            question=task.question,
            answer=task.answer,
            failure=failure,
            answer_span=answer_span,
        )

    # -- RAG traces ----------------------------------------------------------------------

    def _rag(self, turn: _Turn, follow_up: bool) -> DemoTrace:
        rng = self.rng
        pool = content.FOLLOW_UPS if follow_up else content.KNOWLEDGE_QUESTIONS
        item: KnowledgeQuestion = rng.choice(pool)
        chat = model_choose(rng)
        tags = ["support", "rag", "multi-turn" if turn.session_id else "one-off"]
        if rng.random() < 0.15:
            tags.append("prompt-v2")
        builder = self._builder(turn, tags)
        fails = rng.random() < ERROR_RATE
        fail_at = (
            rng.choices(("embedding", "retriever", "llm"), weights=(1, 3, 4))[0] if fails else ""
        )
        failure: Failure | None = None
        question = item.question

        vector = [round(rng.uniform(-0.12, 0.12), 5) for _ in range(16)]
        embed_attrs: dict[str, Any] = {
            "embedding.model_name": EMBEDDING_MODEL,
            "embedding.invocation_parameters": json.dumps({"model": EMBEDDING_MODEL}),
            "embedding.embeddings.0.embedding.text": question,
            "input.value": question,
            "input.mime_type": "text/plain",
            "llm.token_count.prompt": token_count(question),
            "llm.token_count.total": token_count(question),
        }
        if fail_at == "embedding":
            failure = retrieval_failure(rng, "embedding")
        else:
            embed_attrs["embedding.embeddings.0.embedding.vector"] = vector
        builder.child(
            name="CreateEmbeddings",
            kind=SpanKind.EMBEDDING,
            latency_ms=lognormal_ms(rng, 45, 0.4),
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
                failure = retrieval_failure(rng, "retriever")
                latency = 3000 + rng.uniform(0, 30) if failure.message == "timed out" else 4.0
            else:
                retriever_attrs.update(document_attributes("retrieval.documents", scored))
                latency = lognormal_ms(rng, 90, 0.5)
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
                latency_ms=lognormal_ms(rng, 180, 0.4),
                attributes={
                    "reranker.model_name": RERANKER_MODEL,
                    "reranker.query": question,
                    "reranker.top_k": 3,
                    "input.value": question,
                    "input.mime_type": "text/plain",
                    **document_attributes("reranker.input_documents", scored),
                    **document_attributes("reranker.output_documents", reranked),
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
                Message("system", content.SYSTEM_PROMPT_RAG.format(context=context)),
                *turn.history,
                Message("user", question),
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
            answer_span, failure = self._llm_span(
                builder,
                chat,
                failing="generate" if fail_at == "llm" else "",
                messages=messages,
                reply=Message("assistant", answer_text),
                tools=[],
                params=params,
                extra={
                    "llm.prompt_template.template": content.SYSTEM_PROMPT_RAG,
                    "llm.prompt_template.variables": json.dumps({"context": context}),
                    "llm.prompt_template.version": "v2" if "prompt-v2" in tags else "v1",
                },
            )
        return self._trace(
            builder,
            turn,
            kind="rag",
            root=("answer_question", SpanKind.CHAIN, {}),
            question=question,
            answer=answer_text,
            failure=failure,
            answer_span=answer_span,
            hallucinated=hallucinated,
            claim=claim,
            docs=docs,
        )

    # -- the spans every trace has ----------------------------------------------------------

    def _llm_span(
        self,
        builder: TraceBuilder,
        chat: tuple[str, str, float],
        *,
        failing: str,
        messages: list[Message],
        reply: Message,
        tools: list[str],
        params: dict[str, Any],
        extra: Mapping[str, Any] | None = None,
    ) -> tuple[SpanRecord, Failure | None]:
        """A chat call to ``chat`` (``model_choose``) answering ``reply``, or failing where the
        app calls it (``failing``, "" for a call that succeeds)."""
        model, provider, ms_per_token = chat
        failure: Failure | None = None
        if failing:
            failure = llm_failure(self.rng, provider, model, failing)
            output, latency = None, llm_failure_ms(self.rng, failure)
        else:
            output, latency = reply, llm_latency_ms(self.rng, reply.tokens(), ms_per_token)
        attributes = llm_attributes(
            model=model,
            provider=provider,
            messages=messages,
            output=output,
            tools=tools,
            params=params,
        )
        record = builder.child(
            name=llm_span_name(provider),
            kind=SpanKind.LLM,
            latency_ms=latency,
            attributes={**attributes, **(extra or {})},
            failure=failure,
        )
        return record, failure

    def _builder(self, turn: _Turn, tags: list[str]) -> TraceBuilder:
        return TraceBuilder(
            seed=self.seed,
            project=self.project,
            index=turn.index,
            start=turn.start,
            common={**turn.common, "tag.tags": tags},
        )

    def _trace(
        self,
        builder: TraceBuilder,
        turn: _Turn,
        *,
        kind: TraceKind,
        root: tuple[str, str, dict[str, Any]],
        question: str,
        answer: str,
        failure: Failure | None,
        answer_span: SpanRecord | None,
        hallucinated: bool = False,
        claim: str = "",
        docs: list[tuple[content.Document, float]] | None = None,
    ) -> DemoTrace:
        """The root span (``root``: name, kind, attributes of its own) over the children built,
        then the trace with the judge's results on its answer and perhaps a person's review."""
        name, span_kind, own = root
        attributes: dict[str, Any] = {"input.value": question, "input.mime_type": "text/plain"}
        attributes.update(own)
        if failure is None:
            attributes["output.value"] = answer
            attributes["output.mime_type"] = "text/plain"
        builder.root(name=name, kind=span_kind, attributes=attributes, failure=failure)
        trace = DemoTrace(
            index=turn.index,
            kind=kind,
            trace_id=builder.trace_id,
            root_span_id=builder.root_span_id,
            session_id=turn.session_id,
            failed=failure is not None,
            records=builder.records,
        )
        if failure is None and answer_span is not None:
            trace.annotations.extend(
                judge_annotations(
                    self.rng,
                    span_id=answer_span.span_id,
                    rag=kind == "rag",
                    hallucinated=hallucinated,
                    claim=claim,
                    docs=docs or [],
                )
            )
        review = review_annotation(
            self.rng,
            root_span_id=trace.root_span_id,
            failed=trace.failed,
            hallucinated=hallucinated,
        )
        if review is not None:
            trace.annotations.append(review)
        return trace


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
