"""The fields a filter can name: the catalogue (for docs and autocomplete) and resolution of a
written path (``eval."Q&A".label``, ``llm.model_name``, ``metadata.region``) to what it means."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from annotations.naming import FILTER_HEADS, TRACE_FILTER_HEADS, kinds_selected
from tracing.models import SpanKind, StatusCode
from tracing.query.errors import FilterError
from tracing.query.membership import REGISTERED as _MEMBERSHIP_FIELDS
from tracing.query.membership import MembershipField, membership_get
from tracing.query.parser import FieldRef, Segment

FieldType = Literal["string", "enum", "number", "integer", "datetime", "list", "json"]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A field of the language. ``column`` is the ORM path on ``Span`` (or on ``Annotation`` for
    eval/annotation attributes); pattern entries (``attributes.<path>``) have none."""

    name: str
    type: FieldType
    description: str
    column: str = ""
    nullable: bool = False  # NULL in the database means "absent"
    empty_is_null: bool = False  # the column keeps "" for "absent"
    choices: tuple[str, ...] = ()
    alias_of: str = ""
    # An enum whose ``choices`` are the known values, not all of them: any other text is taken
    # too (upper-cased), the choices are what the UI and the catalogue suggest.
    open: bool = False


def _column(
    name: str,
    type_: FieldType,
    description: str,
    column: str,
    *,
    nullable: bool = False,
    empty_is_null: bool = False,
    choices: tuple[str, ...] = (),
    open: bool = False,
) -> FieldSpec:
    return FieldSpec(name, type_, description, column, nullable, empty_is_null, choices, open=open)


_COLUMNS: tuple[FieldSpec, ...] = (
    _column("name", "string", "Span name, e.g. 'retrieve'", "name"),
    _column(
        "span_kind",
        "enum",
        "OpenInference span kind: " + ", ".join(SpanKind.values) + ", or any other kind sent",
        "span_kind",
        choices=tuple(SpanKind.values),
        open=True,
    ),
    _column(
        "status_code",
        "enum",
        "UNSET, OK or ERROR",
        "status_code",
        choices=tuple(StatusCode.values),
    ),
    _column(
        "status_message",
        "string",
        "Error message of the span",
        "status_message",
        empty_is_null=True,
    ),
    _column("span_id", "string", "Span id (hex)", "span_id"),
    _column(
        "parent_id", "string", "Parent span id; null for a root span", "parent_id", nullable=True
    ),
    _column("trace_id", "string", "Trace id (hex)", "trace__trace_id"),
    _column("start_time", "datetime", "Start, ISO 8601 (no zone means UTC)", "start_time"),
    _column("end_time", "datetime", "End, ISO 8601 (no zone means UTC)", "end_time"),
    _column("latency_ms", "number", "Duration in milliseconds", "latency_ms"),
    _column("input", "string", "Input value (input.value)", "input_value", nullable=True),
    _column("output", "string", "Output value (output.value)", "output_value", nullable=True),
    _column(
        "model_name", "string", "LLM or embedding model name", "model_name", empty_is_null=True
    ),
    _column("session_id", "string", "Session id (session.id)", "session_key", empty_is_null=True),
    _column("user_id", "string", "User id (user.id)", "user_id", empty_is_null=True),
    _column("cost", "number", "Cost in USD, from the model price table", "cost", nullable=True),
    _column("llm.token_count.prompt", "integer", "Prompt tokens", "prompt_tokens", nullable=True),
    _column(
        "llm.token_count.completion",
        "integer",
        "Completion tokens",
        "completion_tokens",
        nullable=True,
    ),
    _column("llm.token_count.total", "integer", "Total tokens", "total_tokens", nullable=True),
    _column("tags", "list", "Tags (tag.tags): 'x' IN tags, tags CONTAINS 'x'", "tags"),
)

ALIASES: dict[str, str] = {
    "llm.model_name": "model_name",
    "prompt_tokens": "llm.token_count.prompt",
    "completion_tokens": "llm.token_count.completion",
    "total_tokens": "llm.token_count.total",
    "input.value": "input",
    "output.value": "output",
    "session.id": "session_id",
    "user.id": "user_id",
    "tag.tags": "tags",
    "context.span_id": "span_id",
    "context.trace_id": "trace_id",
    "parent_span_id": "parent_id",
    "kind": "span_kind",
    "status": "status_code",
}

# Span attributes under these OpenInference namespaces may be named without ``attributes.``.
NAMESPACES = (
    "llm",
    "retrieval",
    "tool",
    "embedding",
    "reranker",
    "session",
    "user",
    "openinference",
    "tool_call",
    "document",
)

# Token counts of a span and everything below it (Phoenix's cumulative counts), by part; the
# client's spelling ``cumulative_llm_token_count_<part>`` is accepted too.
CUMULATIVE_COLUMNS: dict[str, str] = {
    "prompt": "prompt_tokens",
    "completion": "completion_tokens",
    "total": "total_tokens",
}
CUMULATIVE_ALIASES: dict[str, str] = {
    **{f"cumulative_token_count.{part}": part for part in CUMULATIVE_COLUMNS},
    **{f"cumulative_llm_token_count_{part}": part for part in CUMULATIVE_COLUMNS},
}
# ``parent_span IS NULL``: a root span or an orphan (its parent is not stored).
PARENT_SPAN = "parent_span"

ANNOTATION_ATTRIBUTES: dict[str, FieldType] = {
    "label": "string",
    "score": "number",
    "explanation": "string",
}


def _catalogue() -> dict[str, FieldSpec]:
    fields = {spec.name: spec for spec in _COLUMNS}
    for alias, target in ALIASES.items():
        spec = fields[target]
        fields[alias] = FieldSpec(
            alias,
            spec.type,
            f"Same as {target}",
            spec.column,
            spec.nullable,
            spec.empty_is_null,
            spec.choices,
            alias_of=target,
            open=spec.open,
        )
    fields["attributes.<path>"] = FieldSpec(
        "attributes.<path>",
        "json",
        "Any span attribute by its dotted OpenInference key, e.g. attributes.llm.model_name; "
        "list positions are numbers (attributes.llm.input_messages.0.message.role). Paths that "
        "start with " + ", ".join(f"{n}." for n in NAMESPACES) + " may leave out 'attributes.'",
    )
    fields["metadata.<path>"] = FieldSpec(
        "metadata.<path>", "json", "A key of the span's metadata, e.g. metadata.region"
    )
    for part in CUMULATIVE_COLUMNS:
        name = f"cumulative_token_count.{part}"
        fields[name] = FieldSpec(
            name,
            "integer",
            f"{part.capitalize()} tokens of the span and all spans below it "
            f"(also cumulative_llm_token_count_{part})",
        )
    fields[PARENT_SPAN] = FieldSpec(
        PARENT_SPAN,
        "string",
        "parent_span IS NULL: a root span or an orphan (its parent span is not stored); "
        "IS NOT NULL: its parent is stored",
    )
    for head, kinds in (
        ("eval", "an LLM or code evaluator's result"),
        ("annotation", "a person's annotation"),
        ("trace_eval", "an LLM or code evaluator's result on the span's trace"),
        ("trace_annotation", "a person's annotation on the span's trace"),
    ):
        for attribute, type_ in ANNOTATION_ATTRIBUTES.items():
            name = f"{head}.<name>.{attribute}"
            fields[name] = FieldSpec(
                name,
                type_,
                f"The {attribute} of {kinds} named <name> (an evaluator's or rubric's name); "
                f'quote names with spaces: {head}."Q&A Correctness".{attribute}',
                attribute,
                nullable=True,
            )
    return fields


FIELDS: dict[str, FieldSpec] = _catalogue()


@dataclass(frozen=True, slots=True)
class ColumnTarget:
    spec: FieldSpec


@dataclass(frozen=True, slots=True)
class JSONTarget:
    column: str  # "attributes" or "metadata"
    path: tuple[str | int, ...]
    label: str  # how the user wrote it, for messages


@dataclass(frozen=True, slots=True)
class AnnotationTarget:
    name: str  # "" for the head alone: ``'X' in evals`` names the result in the value
    kinds: tuple[str, ...]  # eval.X: LLM and CODE annotators; annotation.X: HUMAN
    attribute: str  # label, score, explanation, or "" for the annotation itself
    label: str
    on_trace: bool = False  # trace_eval.X / trace_annotation.X: results on the span's trace


@dataclass(frozen=True, slots=True)
class CumulativeTarget:
    column: str  # the Span token column summed over the span and its descendants
    label: str


@dataclass(frozen=True, slots=True)
class ParentSpanTarget:
    label: str


@dataclass(frozen=True, slots=True)
class MembershipTarget:
    spec: MembershipField
    label: str


Target = (
    ColumnTarget
    | JSONTarget
    | AnnotationTarget
    | MembershipTarget
    | CumulativeTarget
    | ParentSpanTarget
)

_MAX_INDEX = 2**31 - 1


def resolve(field: FieldRef) -> Target:
    """What a written field path means. Raises ``FilterError`` for unknown fields."""
    segments = field.segments
    head = segments[0].text
    plain = all(not s.quoted for s in segments)
    if plain and (membership := membership_get(field.dotted)) is not None:
        return MembershipTarget(membership, field.dotted)
    if plain and field.dotted in CUMULATIVE_ALIASES:
        part = CUMULATIVE_ALIASES[field.dotted]
        return CumulativeTarget(CUMULATIVE_COLUMNS[part], field.dotted)
    if plain and field.dotted == PARENT_SPAN:
        return ParentSpanTarget(field.dotted)
    if plain and field.dotted in FIELDS and "<" not in field.dotted:
        return ColumnTarget(FIELDS[field.dotted])
    if head in FILTER_HEADS or head in TRACE_FILTER_HEADS:
        return _annotation_target(field)
    if head in ("attributes", "metadata"):
        if len(segments) == 1:
            raise FilterError(
                f"{head} needs a key",
                segments[0].position,
                f"e.g. {head}.{'llm.model_name' if head == 'attributes' else 'region'}",
            )
        return JSONTarget(head, _json_path(segments[1:]), field.dotted)
    if head in NAMESPACES and len(segments) > 1:
        return JSONTarget("attributes", _json_path(segments), field.dotted)
    raise _unknown_field(field)


def _json_path(segments: tuple[Segment, ...]) -> tuple[str | int, ...]:
    path: list[str | int] = []
    for segment in segments:
        if '"' in segment.text:
            raise FilterError("a key cannot contain a double quote", segment.position)
        if segment.index:
            index = int(segment.text)
            if index > _MAX_INDEX:
                raise FilterError(f"list position {segment.text} is too large", segment.position)
            path.append(index)
        else:
            path.append(segment.text)
    return tuple(path)


def _annotation_target(field: FieldRef) -> AnnotationTarget:
    segments = field.segments
    head = segments[0]
    on_trace = head.text in TRACE_FILTER_HEADS
    if len(segments) == 1:
        # The head alone: ``'Correctness' in evals`` (the compiler checks the operator).
        return AnnotationTarget("", kinds_selected(head.text), "", field.dotted, on_trace)
    name = segments[1]
    if len(segments) > 3:
        raise FilterError(
            f"unexpected '{segments[3].text}' after {head.text}.{name.text}.{segments[2].text}",
            segments[3].position,
            f'quote annotation names that contain dots: {head.text}."a.b".label',
        )
    attribute = ""
    if len(segments) == 3:
        attribute = segments[2].text
        if attribute not in ANNOTATION_ATTRIBUTES:
            raise FilterError(
                f"unknown {head.text} attribute '{attribute}'",
                segments[2].position,
                "use label, score or explanation",
            )
    return AnnotationTarget(name.text, kinds_selected(head.text), attribute, field.dotted, on_trace)


def _unknown_field(field: FieldRef) -> FilterError:
    written = field.dotted
    names = [n for n in FIELDS if "<" not in n]
    heads = ["attributes", "metadata", "eval", "annotation"]
    match = difflib.get_close_matches(written, names, n=1, cutoff=0.6)
    if not match and len(field.segments) > 1:
        head = difflib.get_close_matches(field.segments[0].text, heads, n=1, cutoff=0.6)
        if head:
            rest = written[len(field.segments[0].text) :]
            match = [head[0] + rest]
    if not match:
        match = difflib.get_close_matches(written, heads, n=1, cutoff=0.6)
    hint = (
        f"did you mean '{match[0]}'?"
        if match
        else "fields include name, span_kind, status_code, latency_ms, input, output, "
        "attributes.<path>, metadata.<path> and eval.<name>.label"
    )
    return FilterError(f"unknown field '{written}'", field.position, hint)


def membership_register(spec: MembershipField) -> None:
    """Add ``spec`` (and its aliases) to the language. Registering the same name again replaces
    it (an app's ``ready`` may run twice in tests); a name the language already has is refused.
    """
    for name in (spec.name, *spec.aliases):
        known = FIELDS.get(name)
        if known is not None and name not in _MEMBERSHIP_FIELDS:
            raise ValueError(f"{name} is already a field of the filter language")
        _MEMBERSHIP_FIELDS[name] = spec
        FIELDS[name] = FieldSpec(
            name,
            spec.value_type,
            spec.description if name == spec.name else f"Same as {spec.name}",
            alias_of="" if name == spec.name else spec.name,
        )
