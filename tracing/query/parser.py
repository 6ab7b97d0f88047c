"""Text → syntax tree for the filter language. The lark LALR parser is built once, at import.

The tree is small and plain (``Comparison``, ``And``, ``Or``, ``Not``) and already in canonical
form: ``==`` is ``=``, ``<>`` and ``IS NOT 'x'`` are ``!=``, ``= null`` is ``IS NULL`` and
Phoenix's ``'x' in input`` is ``input CONTAINS 'x'``. Meaning (fields, types) is the compiler's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal as TypingLiteral
from typing import cast

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from tracing.query.errors import FilterError

MAX_LENGTH = 10_000
MAX_DEPTH = 50
MAX_COMPARISONS = 300
MAX_VALUES = 2_000

Operator = TypingLiteral[
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not in",
    "contains",
    "not contains",
    "icontains",
    "is null",
    "is not null",
]
ValueKind = TypingLiteral["string", "number", "boolean", "null"]


@dataclass(frozen=True, slots=True)
class Segment:
    """One step of a field path: ``eval``, ``Correctness``, ``0``, ``"my key"``."""

    text: str
    position: int
    quoted: bool = False
    index: bool = False  # an unquoted whole number: a list position in JSON paths


@dataclass(frozen=True, slots=True)
class FieldRef:
    segments: tuple[Segment, ...]

    @property
    def position(self) -> int:
        return self.segments[0].position

    @property
    def dotted(self) -> str:
        return ".".join(s.text for s in self.segments)


@dataclass(frozen=True, slots=True)
class Value:
    value: str | int | float | bool | None
    kind: ValueKind
    text: str  # as written, e.g. ``1e3`` or ``'abc'``
    position: int


@dataclass(frozen=True, slots=True)
class Comparison:
    field: FieldRef
    op: Operator
    values: tuple[Value, ...]
    position: int  # of the operator


ArithOp = TypingLiteral["+", "-", "*", "/"]


@dataclass(frozen=True, slots=True)
class Arithmetic:
    """``left op right`` inside a calculation; ``*`` and ``/`` bind tighter than ``+`` and
    ``-``, each left to right."""

    op: ArithOp
    left: Term
    right: Term
    position: int  # of the operator


Term = FieldRef | Value | Arithmetic


@dataclass(frozen=True, slots=True)
class Calculation:
    """A comparison whose sides are computed (``a + b > 100``) or are two fields (``a > b``);
    ``op`` is one of ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``."""

    left: Term
    op: Operator
    right: Term
    position: int  # of the comparison operator


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


Node = Comparison | Calculation | And | Or | Not

_PARSER = Lark(
    (Path(__file__).with_name("grammar.lark")).read_text(encoding="utf-8"),
    parser="lalr",
    lexer="contextual",
    maybe_placeholders=False,
)

_COMPARE_OPS: dict[str, Operator] = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    "<>": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}
# ``1000 < latency_ms`` is ``latency_ms > 1000``.
_FLIPPED: dict[Operator, Operator] = {
    "=": "=",
    "!=": "!=",
    "<": ">",
    "<=": ">=",
    ">": "<",
    ">=": "<=",
}


def parse(text: str) -> Node | None:
    """The syntax tree of ``text``; ``None`` for an empty filter. Raises ``FilterError``."""
    if len(text) > MAX_LENGTH:
        raise FilterError(
            f"the filter is too long ({len(text)} characters)",
            MAX_LENGTH + 1,
            f"the limit is {MAX_LENGTH}",
        )
    if not text.strip():
        return None
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as error:
        raise _syntax_error(text, error) from None
    except LarkError as error:  # pragma: no cover - lark raises UnexpectedInput for bad input
        raise FilterError("the filter cannot be read", 1, str(error)[:200]) from None
    _check_depth(tree)
    builder = _Builder()
    node = builder.node(tree)
    return node


class _Builder:
    """Lark tree → ``Node``, counting comparisons and values against the limits."""

    def __init__(self) -> None:
        self.comparisons = 0
        self.values = 0

    def node(self, tree: Tree | Token) -> Node:
        assert isinstance(tree, Tree)
        rule = tree.data
        kids = tree.children
        if rule == "or_expr":
            return Or(tuple(self.node(k) for k in kids if isinstance(k, Tree)))
        if rule == "and_expr":
            return And(tuple(self.node(k) for k in kids if isinstance(k, Tree)))
        if rule == "negation":
            return Not(self.node(kids[1]))
        if rule == "group":
            return self.node(kids[1])
        return self.comparison(tree)

    def comparison(self, tree: Tree) -> Comparison | Calculation:
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise FilterError(
                "the filter has too many conditions",
                _first_position(tree),
                f"the limit is {MAX_COMPARISONS}",
            )
        rule = tree.data
        kids = tree.children
        if rule == "compare":
            return self.compare(tree)
        tokens = [k for k in kids if isinstance(k, Token)]
        negated = any(t.type == "NOT" for t in tokens)
        values = tuple(self.value(k) for k in kids if isinstance(k, Tree) and k.data == "value")
        self.values += len(values)
        if self.values > MAX_VALUES:
            raise FilterError(
                "the filter has too many values", values[-1].position, f"the limit is {MAX_VALUES}"
            )
        field = next(_field(k) for k in kids if isinstance(k, Tree) and k.data == "field")
        op_token = next(t for t in tokens if t.type not in ("NOT", "LPAR", "RPAR", "COMMA"))
        position = _pos(op_token)
        op: Operator
        if rule == "is_":
            if values[0].kind == "null":
                return Comparison(field, "is not null" if negated else "is null", (), position)
            op = "!=" if negated else "="
        elif rule == "in_list":
            op = "not in" if negated else "in"
        elif rule in ("contains", "value_in"):
            op = "not contains" if negated else "contains"
        else:
            op = "icontains"
        for value in values:
            if value.kind == "null":
                raise FilterError(
                    "null cannot be compared this way",
                    value.position,
                    "use IS NULL or IS NOT NULL",
                )
        return Comparison(field, op, values, position)

    def compare(self, tree: Tree) -> Comparison | Calculation:
        """``chain COMPARE chain``: a field against a value (either way round) is an ordinary
        comparison; anything else is a calculation."""
        left_chain, op_token, right_chain = tree.children
        assert isinstance(op_token, Token) and isinstance(left_chain, Tree)
        assert isinstance(right_chain, Tree)
        op = _COMPARE_OPS[str(op_token)]
        position = _pos(op_token)
        left, right = self.term(left_chain), self.term(right_chain)
        if isinstance(left, Value) and isinstance(right, FieldRef):
            left, right, op = right, left, _FLIPPED[op]
        if isinstance(left, FieldRef) and isinstance(right, Value):
            if right.kind == "null":
                if op not in ("=", "!="):
                    raise FilterError(
                        "null cannot be compared this way",
                        right.position,
                        "use IS NULL or IS NOT NULL",
                    )
                return Comparison(left, "is null" if op == "=" else "is not null", (), position)
            return Comparison(left, op, (right,), position)
        if isinstance(left, Value) and isinstance(right, Value):
            raise FilterError(
                "a comparison needs a field",
                left.position,
                "e.g. latency_ms > 1000 or llm.token_count.total - llm.token_count.prompt > 100",
            )
        return Calculation(left, op, right, position)

    def term(self, chain: Tree) -> Term:
        """A chain of operands and + - * / as one term, with the usual precedence."""
        operands: list[Term] = []
        ops: list[Token] = []
        for kid in chain.children:
            if isinstance(kid, Token):
                ops.append(kid)
                continue
            assert isinstance(kid, Tree)
            inner = kid.children[0]
            assert isinstance(inner, Tree)
            if inner.data == "field":
                operands.append(_field(inner))
            else:
                value = self.value(inner)
                self.values += 1
                if self.values > MAX_VALUES:
                    raise FilterError(
                        "the filter has too many values",
                        value.position,
                        f"the limit is {MAX_VALUES}",
                    )
                if ops and value.kind == "null":
                    raise FilterError("null cannot be used in arithmetic", value.position)
                operands.append(value)
        if ops and isinstance(operands[0], Value) and operands[0].kind == "null":
            raise FilterError("null cannot be used in arithmetic", operands[0].position)
        # * and / first: fold them into their left operand, then + and - left to right.
        terms: list[Term] = [operands[0]]
        additive: list[Token] = []
        for token, operand in zip(ops, operands[1:], strict=True):
            if str(token) in ("*", "/"):
                terms[-1] = Arithmetic(str(token), terms[-1], operand, _pos(token))  # type: ignore[arg-type]  # operands are checked expressions
            else:
                additive.append(token)
                terms.append(operand)
        result = terms[0]
        for token, operand in zip(additive, terms[1:], strict=True):
            result = Arithmetic(str(token), result, operand, _pos(token))  # type: ignore[arg-type]  # operands are checked expressions
        return result

    def value(self, tree: Tree) -> Value:
        token = tree.children[0]
        assert isinstance(token, Token)
        position = _pos(token)
        text = str(token)
        if token.type == "STRING":
            return Value(_unquote(text, position), "string", text, position)
        if token.type == "NUMBER":
            return Value(_number(text, position), "number", text, position)
        if token.type == "TRUE":
            return Value(True, "boolean", text, position)
        if token.type == "FALSE":
            return Value(False, "boolean", text, position)
        return Value(None, "null", text, position)


def _field(tree: Tree) -> FieldRef:
    head = tree.children[0]
    assert isinstance(head, Token)
    segments = [Segment(str(head), _pos(head))]
    for segment in tree.children[1:]:
        assert isinstance(segment, Tree)
        token = segment.children[1]
        assert isinstance(token, Token)
        position = _pos(token)
        if token.type == "STRING":
            segments.append(Segment(_unquote(str(token), position), position, quoted=True))
        else:
            text = str(token)
            segments.append(Segment(text, position, index=text.isdigit()))
    return FieldRef(tuple(segments))


def _unquote(text: str, position: int) -> str:
    body = text[1:-1]
    if "\\" in body:
        chars: list[str] = []
        escaped = False
        for char in body:
            if escaped:
                chars.append(_ESCAPES.get(char, char))
                escaped = False
            elif char == "\\":
                escaped = True
            else:
                chars.append(char)
        body = "".join(chars)
    if "\0" in body:
        raise FilterError("a string cannot contain the NUL character", position)
    try:
        body.encode("utf-8")
    except UnicodeEncodeError:
        raise FilterError("a string contains an invalid character", position) from None
    return body


def _number(text: str, position: int) -> int | float:
    digits = text.lstrip("+-")
    if digits.isdigit():
        value = int(text)
        if abs(value) <= 2**63 - 1:
            return value
    number = float(text)
    if not math.isfinite(number):
        raise FilterError(f"the number {text} is too large", position)
    return number


def _pos(token: Token) -> int:
    return (token.start_pos or 0) + 1


def _first_position(tree: Tree) -> int:
    for token in tree.scan_values(lambda v: isinstance(v, Token)):
        return _pos(token)
    return 1  # pragma: no cover - every comparison has tokens


def _check_depth(tree: Tree) -> None:
    """Reject deep nesting before anything recursive walks the tree."""
    stack: list[tuple[Tree, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if node.data in ("group", "negation"):
            depth += 1
            if depth > MAX_DEPTH:
                raise FilterError(
                    "the filter is nested too deeply",
                    _first_position(node),
                    f"the limit is {MAX_DEPTH} levels of parentheses or NOT",
                )
        stack.extend((child, depth) for child in node.children if isinstance(child, Tree))


# What the parser wanted, in words.
_WORDS: dict[str, str] = {
    "NAME": "a field name",
    "KEY": "a key",
    "INDEX": "a list position",
    "STRING": "a quoted string",
    "NUMBER": "a number",
    "TRUE": "true",
    "FALSE": "false",
    "NULL": "null",
    "COMPARE": "a comparison (=, !=, <, <=, >, >=)",
    "IN": "IN",
    "IS": "IS",
    "CONTAINS": "CONTAINS",
    "ICONTAINS": "ICONTAINS",
    "NOT": "NOT",
    "AND": "AND",
    "OR": "OR",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "DOT": "'.'",
    "$END": "the end of the filter",
}
_VALUE_TERMINALS = {"STRING", "NUMBER", "TRUE", "FALSE", "NULL"}
_OPERATOR_TERMINALS = {"COMPARE", "IN", "IS", "CONTAINS", "ICONTAINS"}


def _expected_words(expected: set[str]) -> str:
    expected = set(expected)
    words: list[str] = []
    if "NAME" in expected and "LPAR" in expected:
        # The start of a condition.
        return "a condition such as latency_ms > 1000, NOT or '('"
    if expected >= _OPERATOR_TERMINALS:
        words.append("an operator (=, !=, <, >, IN, CONTAINS, IS NULL, ...)")
        expected -= _OPERATOR_TERMINALS | {"NOT", "DOT", "LSQB", "ARITH"}
    if expected >= _VALUE_TERMINALS:
        words.append("a value (a quoted string, a number, true, false or null)")
        expected -= _VALUE_TERMINALS
    order = list(_WORDS)
    words.extend(
        _WORDS[name]
        for name in sorted(expected, key=lambda n: order.index(n) if n in order else 99)
        if name in _WORDS
    )
    if not words:
        return "a valid filter"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _accepted(error: UnexpectedInput, fallback: set[str]) -> set[str]:
    """The terminals the parser could really take next (lark's own sets include some that
    only a later reduction would reject)."""
    interactive = getattr(error, "interactive_parser", None)
    if interactive is not None:
        try:
            return set(interactive.accepts())
        except LarkError:  # pragma: no cover - accepts() only replays the parser's own states
            pass
    return fallback


def _syntax_error(text: str, error: UnexpectedInput) -> FilterError:
    if isinstance(error, UnexpectedCharacters):
        # Always set for UnexpectedCharacters; lark types it on the base class, as optional.
        offset = cast(int, error.pos_in_stream)
        position = offset + 1
        char = text[offset] if offset < len(text) else ""
        if char in ("'", '"'):
            return FilterError("unterminated string", position, f"close it with {char}")
        expected = _expected_words(_accepted(error, set(error.allowed or ())))
        return FilterError(f"unexpected character {char!r}", position, f"expected {expected}")
    if isinstance(error, UnexpectedToken):
        token = error.token
        expected = _expected_words(_accepted(error, set(error.expected or ())))
        if token.type == "$END":
            return FilterError(
                "unexpected end of the filter", len(text.rstrip()) + 1, f"expected {expected}"
            )
        shown = str(token)
        if len(shown) > 30:
            shown = shown[:27] + "..."
        return FilterError(f"unexpected {shown!r}", _pos(token), f"expected {expected}")
    position = (getattr(error, "pos_in_stream", None) or len(text)) + 1
    return FilterError("the filter cannot be read", position)
