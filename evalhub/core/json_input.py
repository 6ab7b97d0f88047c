"""JSON that EvalHub can store, checked where it comes in.

Both databases take any JSON Python writes except three things, which used to end as a 500 (or,
on SQLite, as rows PostgreSQL would have refused): the NUL character (PostgreSQL refuses
``\\u0000`` in ``text`` and ``jsonb``), the non-numbers ``NaN`` and ``Infinity`` (not JSON, though
Python's ``json`` reads and writes them), and nesting deep enough to exhaust a recursive reader or
writer. ``json_value_problem`` finds the first of them in a value and names where it is;
``json_body_loads`` reads a request body and refuses them, so every JSON API route answers 400
naming the field instead of failing while it writes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, Final, cast

from django.http import HttpRequest
from ninja.parser import Parser
from ninja.types import DictStrAny

# Deepest nesting accepted in a JSON value, in containers (``{"a": [1]}`` is 2 deep): as deep
# as orjson, which writes span rows, goes. Far more than any OpenInference attribute or
# annotation metadata needs, and well inside the recursion limits of Python's ``json`` and of
# PostgreSQL's ``jsonb`` reader.
MAX_JSON_DEPTH: Final = 254
_NUL: Final = "\x00"
_PATH_SHOWN: Final = 6  # path segments shown in a message about nesting


class JsonInputError(ValueError):
    """JSON that cannot be stored; ``field`` names where (``data[0].metadata.a``)."""

    def __init__(self, *, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class _NonFinite(float):
    """A ``NaN``/``Infinity`` constant read from a body, kept so its place can be named."""

    def __new__(cls, text: str) -> _NonFinite:
        value = super().__new__(cls, text)
        value.text = text  # type: ignore[attr-defined]  # the parsed text rides on the value for its error
        return value


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _shown(path: str) -> str:
    parts = re.split(r"(?=[.\[])", path)
    return path if len(parts) <= _PATH_SHOWN else "".join(parts[:_PATH_SHOWN]) + "…"


def _first_problem(
    value: Any, field: str, max_depth: int, *, allow_non_finite: bool = False
) -> tuple[str, str] | None:
    # Depth-first with an explicit stack, so the check itself cannot overflow.
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if _NUL in item:
                return path, "contains a NUL character (\\u0000), which cannot be stored"
        elif isinstance(item, float):
            if not (allow_non_finite or math.isfinite(item)):
                return path, f"{getattr(item, 'text', None) or repr(item)} is not a JSON number"
        elif isinstance(item, dict | list | tuple):
            if depth >= max_depth:
                return _shown(path), f"nested deeper than {max_depth} levels"
            if isinstance(item, dict):
                for key, child in reversed(item.items()):
                    if isinstance(key, str) and _NUL in key:
                        return (
                            _join(path, repr(key)[1:-1]),
                            "the key contains a NUL character (\\u0000), which cannot be stored",
                        )
                    stack.append((child, _join(path, str(key)), depth + 1))
            else:
                for index in range(len(item) - 1, -1, -1):
                    stack.append((item[index], _join(path, index), depth + 1))
    return None


def json_value_problem(
    value: Any, *, field: str = "", max_depth: int = MAX_JSON_DEPTH
) -> str | None:
    """What makes ``value`` unstorable, naming where (``field`` is the path of ``value``
    itself), or None: a NUL character in a string or key, a non-finite float, or nesting deeper
    than ``max_depth``."""
    found = _first_problem(value, field, max_depth)
    if found is None:
        return None
    where, message = found
    return f"{where or 'value'}: {message}"


def json_value_check(value: Any, *, field: str = "", max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise ``JsonInputError`` when ``json_value_problem`` finds something."""
    found = _first_problem(value, field, max_depth)
    if found is not None:
        where, message = found
        raise JsonInputError(field=where or "value", message=message)


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:,]')


def _path_at_depth(text: str, depth: int) -> str:
    """The path (as ``json_value_problem`` names it) where ``text`` first nests deeper than
    ``depth``, read without recursion; only for messages."""
    # Each open container: [is_object, current key or index, expecting a key].
    stack: list[list[Any]] = []
    last_string: str | None = None
    for match in _TOKEN.finditer(text):
        symbol = match.group()
        if symbol in "[{":
            if len(stack) >= depth:
                break
            stack.append([symbol == "{", 0 if symbol == "[" else "", symbol == "{"])
        elif symbol in "]}":
            if stack:
                stack.pop()
        elif symbol == ":":
            if stack and stack[-1][0] and last_string is not None:
                stack[-1][1] = last_string
        elif symbol == ",":
            if stack and not stack[-1][0]:
                stack[-1][1] += 1
        else:
            try:
                last_string = json.loads(symbol)
            except ValueError:
                last_string = symbol.strip('"')
    path = ""
    for _is_object, key, _ in stack:
        path = _join(path, key)
    return _shown(path)


def json_body_loads(body: bytes | str, *, allow_non_finite: bool = False) -> Any:
    """A request body read as JSON, refusing what cannot be stored (``JsonInputError``, whose
    ``field`` names the place): text that is not JSON, NUL characters in strings or keys,
    nesting deeper than ``MAX_JSON_DEPTH``, and ``NaN``/``Infinity`` unless
    ``allow_non_finite`` (data-frame records, where ``NaN`` means a missing value)."""

    def constant(text: str) -> float:
        return _NonFinite(text)

    parse_constant: Callable[[str], Any] = constant
    try:
        value = json.loads(body, parse_constant=parse_constant)
    except RecursionError:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        raise JsonInputError(
            field=_path_at_depth(text, MAX_JSON_DEPTH) or "body",
            message=f"nested deeper than {MAX_JSON_DEPTH} levels",
        ) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise JsonInputError(field="body", message=f"not valid JSON: {exc}") from None
    found = _first_problem(value, "", MAX_JSON_DEPTH, allow_non_finite=allow_non_finite)
    if found is not None:
        where, message = found
        raise JsonInputError(field=where or "body", message=message)
    return value


# Routes (URL names) whose bodies are data-frame records: ``NaN`` there is a missing value.
NON_FINITE_ROUTES: Final = frozenset({"evaluation_records"})


class JsonInputParser(Parser):
    """django-ninja's body parser for every ``/v1`` JSON route: ``json_body_loads``. Ninja turns
    any parser error into a 400 "Cannot parse request body" with the error as its cause; the
    API's ``HttpError`` handler shows a ``JsonInputError`` cause's message instead."""

    def parse_body(self, request: HttpRequest) -> DictStrAny:
        match = request.resolver_match
        allow = match is not None and match.url_name in NON_FINITE_ROUTES
        return cast(DictStrAny, json_body_loads(request.body, allow_non_finite=allow))


__all__ = [
    "MAX_JSON_DEPTH",
    "JsonInputError",
    "JsonInputParser",
    "json_body_loads",
    "json_value_check",
    "json_value_problem",
]
