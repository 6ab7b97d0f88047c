"""Syntax tree → Django ``Q`` on ``Span``. Every value is a bound parameter.

Semantics, in short (docs/filter-language.md has the long form):

- A comparison with a missing value is false: ``name != 'x'`` never matches a span without a
  name, and ``NOT (...)`` is the plain negation of the whole, so it does.
- Text columns that keep ``""`` for "absent" (model_name, session_id, user_id, status_message)
  treat ``""`` as null.
- JSON paths (``attributes.*``, ``metadata.*``) compare only values of the literal's type.
- ``eval.X.label = 'y'``: there is a result named X by an LLM or code evaluator on the span
  whose label is 'y' (``annotation.X``: by a person; ``annotations.naming``);
  ``eval.X.label IS NULL`` is the negation of ``IS NOT NULL``.

One module above 500 lines on purpose: it is the one compiler, one case per node of the syntax
tree, and the cases share the null and type rules above; split, the rules would be read apart.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connections
from django.db.models import (
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.expressions import Expression, RawSQL
from django.db.models.functions import Cast, NullIf, StrIndex
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
)

from annotations.models import Annotation
from tracing.models import Span
from tracing.query.errors import FilterError
from tracing.query.expressions import JSONPredicate, JSONScalar, json_type_of
from tracing.query.fields import (
    ANNOTATION_ATTRIBUTES,
    AnnotationTarget,
    ColumnTarget,
    CumulativeTarget,
    FieldSpec,
    FieldType,
    JSONTarget,
    MembershipTarget,
    ParentSpanTarget,
    resolve,
)
from tracing.query.parser import (
    And,
    Arithmetic,
    Calculation,
    Comparison,
    FieldRef,
    Node,
    Not,
    Operator,
    Or,
    Term,
    parse,
)
from tracing.query.parser import Value as Literal

# A condition that is false for every row (and so true under NOT).
NOTHING = Q(pk__in=[])

_ORDERING: tuple[Operator, ...] = ("<", "<=", ">", ">=")
_LOOKUPS = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}
_TYPE_WORDS: dict[FieldType, str] = {
    "string": "text",
    "enum": "text",
    "number": "a number",
    "integer": "a whole number",
    "datetime": "a date and time",
    "list": "a list",
    "json": "a JSON value",
}
_INTEGER_RANGES = {
    # IntegerField on PostgreSQL; SQLite stores up to 64 bits but nothing larger than 32 bits
    # is written to these columns by ingest.
    "IntegerField": (-(2**31), 2**31 - 1),
}


def compile_filter(text: str, *, using: str = "default") -> Q:
    """The ``Q`` for ``Span.objects.filter(...)`` that a filter expression means.

    Empty or blank text gives ``Q()`` (everything). Raises ``FilterError`` for anything that
    cannot be run, with the column of the problem.
    """
    node = parse(text)
    if node is None:
        return Q()
    return _Compiler(connections[using].vendor).node(node)


@dataclass(frozen=True, slots=True)
class ResultLead:
    """Every span the filter matches has one of ``results`` (results named ``name``) on itself,
    or, a root span, on its trace or session: a page can be read from those results."""

    name: str
    results: QuerySet[Annotation]


def result_lead(text: str, *, using: str = "default") -> ResultLead | None:
    """The results a filter's matches must have (``eval.X.label = 'y' and …``), when one of the
    conditions joined by AND at its top asks for a result on the span; else None."""
    node = parse(text)
    children = [node] if node is not None else []
    while any(isinstance(child, And) for child in children):  # ``(a and b) and c``
        children = [c for child in children for c in _conjuncts(child)]
    for child in children:
        if not isinstance(child, Comparison) or child.op == "is null":
            continue
        target = resolve(child.field)
        if isinstance(target, AnnotationTarget) and target.name and not target.on_trace:
            compiler = _Compiler(connections[using].vendor)
            return ResultLead(target.name, compiler.results(target, child))
    return None


def _conjuncts(node: Node) -> tuple[Node, ...]:
    return node.children if isinstance(node, And) else (node,)


class _Compiler:
    def __init__(self, vendor: str) -> None:
        self.vendor = vendor

    def node(self, node: Node) -> Q:
        if isinstance(node, And):
            result = Q()
            for child in node.children:
                result &= self.node(child)
            return result
        if isinstance(node, Or):
            result = self.node(node.children[0])
            for child in node.children[1:]:
                result |= self.node(child)
            return result
        if isinstance(node, Not):
            return ~self.node(node.child)
        if isinstance(node, Calculation):
            return self.calculation(node)
        return self.comparison(node)

    def comparison(self, comparison: Comparison) -> Q:
        target = resolve(comparison.field)
        if isinstance(target, ColumnTarget):
            if target.spec.type == "list":
                return self.tags(target.spec, comparison)
            return self.column(target.spec, target.spec.name, comparison)
        if isinstance(target, JSONTarget):
            return self.json(target, comparison)
        if isinstance(target, MembershipTarget):
            return self.membership(target, comparison)
        if isinstance(target, CumulativeTarget):
            return self.cumulative(target, comparison)
        if isinstance(target, ParentSpanTarget):
            return self.parent_span(target, comparison)
        return self.annotation(target, comparison)

    # --- columns -------------------------------------------------------------------------

    def column(self, spec: FieldSpec, label: str, comparison: Comparison) -> Q:
        op = comparison.op
        column = spec.column
        present = _present(spec)
        if op == "is null":
            return ~present if spec.nullable or spec.empty_is_null else NOTHING
        if op == "is not null":
            return present
        if op in ("contains", "not contains", "icontains"):
            if spec.type not in ("string", "enum"):
                raise _operator_error(comparison, label, spec.type)
            (value,) = comparison.values
            text = _as_text(value, label)
            if op == "icontains":
                matched = Q(**{f"{column}__icontains": text})
            elif self.vendor == "postgresql":
                matched = Q(**{f"{column}__contains": text})
            else:  # SQLite's LIKE ignores case; INSTR does not.
                matched = Q(GreaterThan(StrIndex(F(column), Value(text)), 0))
            return present & matched if op != "not contains" else present & ~matched
        if spec.type == "enum" and op in _ORDERING:
            raise _operator_error(comparison, label, spec.type)
        values = [_coerce(spec, label, value) for value in comparison.values]
        if spec.type == "integer":
            return _integer_comparison(spec, op, values)
        if op in ("in", "not in"):
            matched = Q(**{f"{column}__in": values})
            return matched & present if op == "in" else ~matched & present
        if op == "!=":
            return ~Q(**{column: values[0]}) & present
        return Q(**{f"{column}__{_LOOKUPS[op]}": values[0]}) & present

    def tags(self, spec: FieldSpec, comparison: Comparison) -> Q:
        op = comparison.op
        column = spec.column
        if op == "is null":
            return Q(JSONPredicate(column, (), "type", ["missing", "null"])) | Q(**{column: []})
        if op == "is not null":
            return ~(Q(JSONPredicate(column, (), "type", ["missing", "null"])) | Q(**{column: []}))
        if op not in ("contains", "not contains", "in", "not in"):
            raise FilterError(
                f"{op.upper()} does not apply to {spec.name} (a list)",
                comparison.position,
                f"use 'x' IN {spec.name}, {spec.name} CONTAINS 'x' or {spec.name} IN ('x', 'y')",
            )
        matched = Q()
        for index, value in enumerate(comparison.values):
            if value.kind == "boolean":
                raise _value_error(value, spec.name, "list")
            element = Q(JSONPredicate(column, (), "contains", [_json_value(value)]))
            matched = element if index == 0 else matched | element
        return matched if op in ("contains", "in") else ~matched

    # --- JSON paths ----------------------------------------------------------------------

    def json(self, target: JSONTarget, comparison: Comparison) -> Q:
        op = comparison.op
        column, path = target.column, target.path

        def predicate(json_op: Any, values: Sequence[Any]) -> Q:
            return Q(JSONPredicate(column, path, json_op, values))

        if op == "is null":
            return predicate("type", ["missing", "null"])
        if op == "is not null":
            return ~predicate("type", ["missing", "null"])
        values = [_json_value(v) for v in comparison.values]
        types = sorted({json_type_of(v) for v in values})
        if op in ("=", "in"):
            matched = predicate("in", values)
            if op == "=" and self.vendor == "postgresql":
                # Containment first, so the jsonb_path_ops GIN index narrows the rows.
                matched = Q(**{f"{column}__contains": _nest(path, values[0])}) & matched
            return matched
        if op in ("!=", "not in"):
            return predicate("type", types) & ~predicate("in", values)
        if op in _ORDERING:
            (value,) = comparison.values
            if value.kind == "boolean":
                raise FilterError(
                    f"{op} cannot compare {target.label} with a boolean",
                    comparison.position,
                    "use = or !=",
                )
            return predicate(op, values)
        (value,) = comparison.values
        if op == "icontains":
            return predicate("icontains", [_as_text(value, target.label)])
        matched = predicate("contains", values)
        if op == "contains":
            return matched
        holders = ["string", "array"] if types == ["string"] else ["array"]
        return predicate("type", holders) & ~matched

    # --- annotations ---------------------------------------------------------------------

    def annotation(self, target: AnnotationTarget, comparison: Comparison) -> Q:
        """A span's own annotations; a root span also stands for its trace and session, so
        trace- and session-level results (``eval.X`` from a trace task) filter the traces and
        sessions lists."""
        found_on = _on_trace if target.on_trace else _on_span_or_root
        if not target.name:
            return self.annotation_named(target, comparison, found_on)
        found = found_on(self.results(target, comparison))
        return ~found if comparison.op == "is null" else found

    def results(self, target: AnnotationTarget, comparison: Comparison) -> QuerySet[Annotation]:
        """The results named ``target.name`` that meet ``comparison``; for ``IS NULL``, those
        whose absence it asks for."""
        named = Annotation.objects.filter(name=target.name, annotator_kind__in=target.kinds)
        if not target.attribute:
            if comparison.op not in ("is null", "is not null"):
                raise FilterError(
                    f"{target.label} needs an attribute to compare",
                    comparison.position,
                    f"use {target.label}.label, {target.label}.score or {target.label}.explanation",
                )
            return named
        spec = FieldSpec(
            target.label,
            ANNOTATION_ATTRIBUTES[target.attribute],
            "",
            target.attribute,
            nullable=True,
        )
        if comparison.op == "is null":
            return named.filter(_present(spec))
        return named.filter(self.column(spec, target.label, comparison))

    def annotation_named(
        self, target: AnnotationTarget, comparison: Comparison, found_on: Any
    ) -> Q:
        """``'Correctness' in evals``: the span has a result of that name (``not in``: has
        none); ``evals CONTAINS 'a'`` and ``evals IN ('a', 'b')`` (any of them) read the same."""
        op = comparison.op
        head = target.label
        if op not in ("contains", "not contains", "in", "not in"):
            raise FilterError(
                f"{head} needs an annotation name",
                comparison.field.position,
                f"e.g. {head}['Correctness'].label or 'Correctness' in {head}",
            )
        names = []
        for value in comparison.values:
            if value.kind != "string":
                raise FilterError(f"{head} holds names: quote {value.text}", value.position)
            assert isinstance(value.value, str)
            names.append(value.value)
        found = found_on(Annotation.objects.filter(name__in=names, annotator_kind__in=target.kinds))
        return found if op in ("contains", "in") else ~found

    # --- Phoenix's derived fields ----------------------------------------------------------

    def cumulative(self, target: CumulativeTarget, comparison: Comparison) -> Q:
        """Tokens of the span and every span below it, as Phoenix's cumulative counts."""
        op = comparison.op
        if op in ("is null", "is not null"):  # always a number, 0 without tokens
            return NOTHING if op == "is null" else Q()
        if op not in _CALCULATION_LOOKUPS:
            raise FilterError(
                f"{op.upper()} does not apply to {target.label}",
                comparison.position,
                "use =, !=, <, <=, >, >=",
            )
        spec = FieldSpec(target.label, "number", "")
        (number,) = [_coerce(spec, target.label, value) for value in comparison.values]
        # Fixed SQL text; the number is bound (``_cumulative_sql``).
        summed = Q(pk__in=RawSQL(*_cumulative_sql(target.column, op, number)))  # noqa: S611
        if not _holds(0, op, number):
            return summed
        # A span with no tokens below it counts 0.
        return summed | ~Q(pk__in=RawSQL(*_cumulative_sql(target.column, "", None)))  # noqa: S611

    def parent_span(self, target: ParentSpanTarget, comparison: Comparison) -> Q:
        """``parent_span IS NULL``: a root span or an orphan (its parent is not stored)."""
        if comparison.op not in ("is null", "is not null"):
            raise FilterError(
                f"{comparison.op.upper()} does not apply to {target.label}",
                comparison.position,
                f"use {target.label} IS NULL (a root or orphan span) or IS NOT NULL",
            )
        stored = Span.objects.filter(trace=OuterRef("trace_id"), span_id=OuterRef("parent_id"))
        has_parent = Q(parent_id__isnull=False) & Q(Exists(stored))
        return ~has_parent if comparison.op == "is null" else has_parent

    # --- calculations ----------------------------------------------------------------------

    def calculation(self, node: Calculation) -> Q:
        """``a + b > 100``: number columns and numbers, computed in SQL; a span missing a field
        of it does not match (``NOT`` of it does). Division by zero gives no value."""
        left, right = self.term(node.left), self.term(node.right)
        if node.op == "!=":
            return Q(LessThan(left, right)) | Q(GreaterThan(left, right))
        return Q(_CALCULATION_LOOKUPS[node.op](left, right))

    def term(self, term: Term) -> Expression:
        if isinstance(term, Arithmetic):
            left, right = self.term(term.left), self.term(term.right)
            if term.op == "+":
                combined = left + right
            elif term.op == "-":
                combined = left - right
            elif term.op == "*":
                combined = left * right
            else:
                combined = left / NullIf(right, Value(0.0))
            return ExpressionWrapper(combined, output_field=FloatField())
        if isinstance(term, FieldRef):
            target = resolve(term)
            if not (isinstance(target, ColumnTarget) and target.spec.type in ("number", "integer")):
                raise FilterError(
                    f"{term.dotted} cannot be used in arithmetic",
                    term.position,
                    "arithmetic takes number fields: latency_ms, cost, llm.token_count.*",
                )
            return Cast(F(target.spec.column), output_field=FloatField())
        if term.kind != "number":
            raise FilterError(f"{term.text} is not a number", term.position)
        assert isinstance(term.value, int | float)
        return Value(float(term.value), output_field=FloatField())

    # --- membership fields (registered by products) ----------------------------------------

    def membership(self, target: MembershipTarget, comparison: Comparison) -> Q:
        """``task_run = 42``: the span, its trace or its session is among the members the
        field's rows list for 42 (``IN``: for any of the values; ``IS NOT NULL``: for any
        value at all). ``!=``, ``NOT IN`` and ``IS NULL`` are the negations."""
        op = comparison.op
        spec = target.spec
        if op in ("is null", "is not null"):
            members = spec.members(None)
            return ~members if op == "is null" else members
        if op not in ("=", "!=", "in", "not in"):
            raise FilterError(
                f"{op.upper()} does not apply to {target.label}",
                comparison.position,
                f"use {target.label} = x, {target.label} IN (x, y), != or IS NOT NULL",
            )
        values = [_membership_value(target, value) for value in comparison.values]
        members = spec.members([v for v in values if v is not None])
        return members if op in ("=", "in") else ~members


def _membership_value(target: MembershipTarget, value: Literal) -> Any:
    """A membership field's value: an id for ``integer`` fields (``None`` when it is out of
    range, which no row holds), text for ``string`` fields."""
    if target.spec.value_type == "string":
        if value.kind == "boolean":
            raise _value_error(value, target.label, "string")
        return _as_text(value, target.label)
    number: Any = value.value
    if value.kind == "string":
        assert isinstance(value.value, str)
        text = value.value.strip()
        digits = text.removeprefix("-")
        if not (digits.isascii() and digits.isdigit()):
            raise _value_error(value, target.label, "integer", "not an id")
        if len(digits) > 19:
            return None
        number = int(text)
    if value.kind == "boolean" or not isinstance(number, int | float):
        raise _value_error(value, target.label, "integer", "not an id")
    if isinstance(number, float):
        if not number.is_integer():
            raise _value_error(value, target.label, "integer", "not an id")
        number = int(number)
    return number if -(2**63) <= number < 2**63 else None


_CALCULATION_LOOKUPS: dict[str, Any] = {
    "=": Exact,
    "<": LessThan,
    "<=": LessThanOrEqual,
    ">": GreaterThan,
    ">=": GreaterThanOrEqual,
    "!=": None,  # compiled as < or >
}
_SQL_OPERATORS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
# The deepest span tree walked for cumulative counts (a cycle in bad data stops there).
_MAX_DEPTH = 200


def _holds(left: float, op: str, right: float) -> bool:
    return {
        "=": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def _cumulative_sql(column: str, op: str, number: float | None) -> tuple[str, list[Any]]:
    """SQL for the pks of spans whose ``column`` summed over themselves and every span below
    them compares ``op`` with ``number`` (no ``op``: every span with tokens below it): the
    tokens of each span are carried up to its ancestors in its trace. ``column`` and ``op``
    come from fixed tables, never from the filter's text; ``number`` is bound."""
    assert column in ("prompt_tokens", "completion_tokens", "total_tokens")
    table = Span._meta.db_table
    having = f"HAVING SUM(tokens) {_SQL_OPERATORS[op]} %s" if op else ""
    # Every part is a constant of this module.
    sql = (
        "WITH RECURSIVE up(pk, parent_id, trace_id, tokens, depth) AS ("  # noqa: S608
        f"SELECT s.id, s.parent_id, s.trace_id, s.{column}, 0 FROM {table} s "
        f"WHERE s.{column} IS NOT NULL AND s.{column} <> 0 "
        "UNION ALL "
        "SELECT p.id, p.parent_id, p.trace_id, up.tokens, up.depth + 1 FROM up "
        f"JOIN {table} p ON p.trace_id = up.trace_id AND p.span_id = up.parent_id "
        f"WHERE up.depth < {_MAX_DEPTH}"
        f") SELECT pk FROM up GROUP BY pk {having}"
    )
    return sql, ([number] if op else [])


def _on_trace(annotations: QuerySet[Annotation]) -> Q:
    """Results on the span's trace (``trace_evals['X']``)."""
    return Q(Exists(annotations.filter(trace__isnull=False, trace=OuterRef("trace_id"))))


def _on_span_or_root(annotations: QuerySet[Annotation]) -> Q:
    # The explicit IS NOT NULL lets PostgreSQL read the trace and session branches from the
    # partial unique indexes on trace / session annotations (a handful of rows) rather than
    # scanning every annotation of that name.
    on_span = Q(Exists(annotations.filter(span=OuterRef("pk"))))
    on_trace = Q(Exists(annotations.filter(trace__isnull=False, trace=OuterRef("trace_id"))))
    on_session = Q(
        Exists(annotations.filter(session__isnull=False, session=OuterRef("session_id")))
    )
    return on_span | (Q(parent_id__isnull=True) & (on_trace | on_session))


def _present(spec: FieldSpec) -> Q:
    if spec.nullable:
        return Q(**{f"{spec.column}__isnull": False})
    if spec.empty_is_null:
        return ~Q(**{spec.column: ""})
    return Q()


def _operator_error(comparison: Comparison, label: str, type_: FieldType) -> FilterError:
    op = comparison.op.upper()
    if type_ == "enum":
        return FilterError(
            f"{op} does not apply to {label}", comparison.position, "use =, !=, IN or CONTAINS"
        )
    return FilterError(
        f"{op} does not apply to {label} ({_TYPE_WORDS[type_]})",
        comparison.position,
        "use =, !=, <, <=, >, >=, IN or IS NULL",
    )


def _value_error(value: Literal, label: str, type_: FieldType, detail: str = "") -> FilterError:
    return FilterError(
        f"{label} is {_TYPE_WORDS[type_]}, but {value.text} is {detail or _kind_words(value)}",
        value.position,
    )


def _kind_words(value: Literal) -> str:
    if value.kind == "boolean":
        return "a boolean"
    if value.kind == "number":
        return "a number"
    return "text"


def _as_text(value: Literal, label: str) -> str:
    if value.kind == "string":
        assert isinstance(value.value, str)
        return value.value
    if value.kind == "number":
        return value.text
    raise FilterError(f"{label} can only contain text, not {value.text}", value.position)


def _coerce(spec: FieldSpec, label: str, value: Literal) -> Any:
    """The Python value a column comparison binds, checked against the field's type."""
    if spec.type in ("string", "enum"):
        if value.kind == "boolean":
            raise _value_error(value, label, spec.type)
        text = _as_text(value, label)
        if spec.type == "enum":
            upper = text.upper()
            if upper not in spec.choices and not spec.open:
                near = difflib.get_close_matches(upper, spec.choices, n=1, cutoff=0.5)
                raise FilterError(
                    f"{label} is one of {', '.join(spec.choices)}, not {value.text}",
                    value.position,
                    f"did you mean '{near[0]}'?" if near else "",
                )
            return upper
        return text
    if spec.type in ("number", "integer"):
        if value.kind == "number":
            return value.value
        if value.kind == "string":
            assert isinstance(value.value, str)
            try:
                number = float(value.value.strip())
            except ValueError:
                raise _value_error(value, label, spec.type, "not a number") from None
            if not math.isfinite(number):
                raise _value_error(value, label, spec.type, "not a finite number")
            return number
        raise _value_error(value, label, spec.type)
    # datetime
    if value.kind != "string":
        raise _value_error(value, label, spec.type)
    assert isinstance(value.value, str)
    return _datetime(value.value, value, label)


def _datetime(text: str, value: Literal, label: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FilterError(
            f"{label} is a date and time, but {value.text} is not one",
            value.position,
            "use ISO 8601, e.g. '2026-11-01T00:00:00Z'",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise FilterError(f"{value.text} is out of range", value.position) from None


def _integer_comparison(spec: FieldSpec, op: Operator, values: list[Any]) -> Q:
    """Integer columns compared with any number, exactly, without overflowing the column."""
    column = spec.column
    present = _present(spec)
    low, high = _INTEGER_RANGES["IntegerField"]

    def whole(number: float) -> int | None:
        if isinstance(number, int):
            return number if low <= number <= high else None
        if number.is_integer() and low <= number <= high:
            return int(number)
        return None

    if op in ("in", "not in", "=", "!="):
        wholes = sorted({w for w in (whole(v) for v in values) if w is not None})
        matched = Q(**{f"{column}__in": wholes}) if wholes else NOTHING
        return matched & present if op in ("in", "=") else ~matched & present
    (number,) = values
    # n > x  ⇔ n > floor(x);  n >= x ⇔ n >= ceil(x);  n < x ⇔ n < ceil(x);  n <= x ⇔ n <= floor(x)
    bound = math.floor(number) if op in (">", "<=") else math.ceil(number)
    if op in (">", ">="):
        if bound > high or (op == ">" and bound == high):
            return NOTHING
        if bound < low or (op == ">=" and bound == low):
            return present
    else:
        if bound < low or (op == "<" and bound == low):
            return NOTHING
        if bound > high or (op == "<=" and bound == high):
            return present
    return Q(**{f"{column}__{_LOOKUPS[op]}": bound}) & present


def _json_value(value: Literal) -> JSONScalar:
    assert value.value is not None
    return value.value


def _nest(path: Sequence[str | int], value: JSONScalar) -> Any:
    """``("a", 0, "b"), 1`` → ``{"a": [{"b": 1}]}``, for JSON containment."""
    nested: Any = value
    for key in reversed(path):
        nested = [nested] if isinstance(key, int) else {key: nested}
    return nested
