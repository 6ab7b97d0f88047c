"""A boolean ORM expression over one path of a JSON column, for SQLite and PostgreSQL.

Django's key transforms are not used because a comparison must see only values of the
literal's JSON type (a string ``"5"`` is not the number ``5``, ``true`` is not ``1``) and must
be true or false, never NULL, so that ``NOT`` negates it. The SQL text here is fixed; the
path and every value are bound parameters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal, NoReturn

from django.db import NotSupportedError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, Expression, F
from django.db.models.sql.compiler import SQLCompiler

JSONType = Literal["string", "number", "boolean", "null", "array", "object", "missing"]
JSONScalar = str | int | float | bool
JSONOp = Literal["in", "<", "<=", ">", ">=", "contains", "icontains", "type"]

_SQLITE_TYPES: dict[str, tuple[str, ...]] = {
    "string": ("text",),
    "number": ("integer", "real"),
    "boolean": ("true", "false"),
    "null": ("null",),
    "array": ("array",),
    "object": ("object",),
    "missing": ("missing",),
}
_ORDERING = ("<", "<=", ">", ">=")

SQL = tuple[str, list[Any]]


def json_type_of(value: JSONScalar) -> JSONType:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def like_pattern(text: str) -> str:
    """``%text%`` for LIKE ... ESCAPE '\\', with the wildcards in ``text`` escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class JSONPredicate(Expression):
    """``<column> at <path> <op> <values>``, true or false for every row.

    - ``in``: the value equals one of ``values`` (same JSON type).
    - ``<`` ``<=`` ``>`` ``>=``: one value, a number or a string; only values of that type match.
    - ``contains``: a string value that contains the text, or an array with that element.
    - ``icontains``: a string value that contains the text, ignoring case.
    - ``type``: the value's JSON type is one of ``values`` (``"missing"`` when the path is absent).
    """

    output_field = BooleanField()
    conditional = True

    def __init__(
        self, column: str, path: Sequence[str | int], op: JSONOp, values: Sequence[Any]
    ) -> None:
        super().__init__(output_field=BooleanField())
        self.column: Expression | F = F(column)
        self.path = tuple(path)
        self.op = op
        self.values = tuple(values)

    def __repr__(self) -> str:
        return f"JSONPredicate({self.column!r}, {self.path!r}, {self.op!r}, {self.values!r})"

    def get_source_expressions(self) -> list[Any]:
        return [self.column]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.column,) = exprs

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> NoReturn:
        raise NotSupportedError(f"JSON filters are not supported on {connection.vendor}")

    def _column_sql(self, compiler: SQLCompiler) -> tuple[str, Sequence[Any]]:
        # Compiled after the query resolved the expression: the F is its column by then.
        assert isinstance(self.column, Expression), "JSONPredicate compiled before resolving"
        return compiler.compile(self.column)

    # --- SQLite --------------------------------------------------------------------------

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> SQL:
        column, column_params = self._column_sql(compiler)
        path = self._sqlite_path()

        def type_in(types: Sequence[str]) -> SQL:
            names = [n for t in types for n in _SQLITE_TYPES[t]]
            marks = ", ".join(["%s"] * len(names))
            return (
                f"COALESCE(JSON_TYPE({column}, %s), 'missing') IN ({marks})",
                [*column_params, path, *names],
            )

        def extract() -> SQL:
            return f"JSON_EXTRACT({column}, %s)", [*column_params, path]

        parts: list[SQL] = []
        if self.op == "type":
            parts.append(type_in(self.values))
        elif self.op == "in":
            for kind in ("string", "number"):
                group = [v for v in self.values if json_type_of(v) == kind]
                if group:
                    guard_sql, guard_params = type_in([kind])
                    value_sql, value_params = extract()
                    marks = ", ".join(["%s"] * len(group))
                    parts.append(
                        (
                            f"({guard_sql} AND {value_sql} IN ({marks}))",
                            [*guard_params, *value_params, *group],
                        )
                    )
            booleans = sorted(
                {"true" if v else "false" for v in self.values if v is True or v is False}
            )
            if booleans:
                marks = ", ".join(["%s"] * len(booleans))
                parts.append(
                    (
                        f"COALESCE(JSON_TYPE({column}, %s), 'missing') IN ({marks})",
                        [*column_params, path, *booleans],
                    )
                )
        elif self.op in _ORDERING:
            (value,) = self.values
            guard_sql, guard_params = type_in([json_type_of(value)])
            value_sql, value_params = extract()
            parts.append(
                (
                    f"({guard_sql} AND {value_sql} {self.op} %s)",
                    [*guard_params, *value_params, value],
                )
            )
        elif self.op == "icontains":
            (value,) = self.values
            guard_sql, guard_params = type_in(["string"])
            value_sql, value_params = extract()
            parts.append(
                (
                    f"({guard_sql} AND {value_sql} LIKE %s ESCAPE '\\')",
                    [*guard_params, *value_params, like_pattern(value)],
                )
            )
        else:  # contains
            (value,) = self.values
            kind = json_type_of(value)
            if kind == "string":
                guard_sql, guard_params = type_in(["string"])
                value_sql, value_params = extract()
                parts.append(
                    (
                        f"({guard_sql} AND INSTR({value_sql}, %s) > 0)",
                        [*guard_params, *value_params, value],
                    )
                )
            if kind == "boolean":
                element_types: list[str] = ["true" if value else "false"]
                element_sql = ""
                element_params: list[Any] = []
            else:
                element_types = list(_SQLITE_TYPES[kind])
                element_sql = " AND evalhub_each.value = %s"
                element_params = [value]
            marks = ", ".join(["%s"] * len(element_types))
            guard_sql, guard_params = type_in(["array"])
            # Fixed SQL around the compiled column; the path and values are parameters.
            parts.append(
                (
                    f"({guard_sql} AND EXISTS (SELECT 1 FROM JSON_EACH({column}, %s) AS "  # noqa: S608
                    f"evalhub_each WHERE evalhub_each.type IN ({marks}){element_sql}))",
                    [*guard_params, *column_params, path, *element_types, *element_params],
                )
            )
        return _any(parts, "0")

    def _sqlite_path(self) -> str:
        # Keys are written raw inside double quotes: SQLite does not unescape them. Keys that
        # contain a double quote are refused by the field resolver.
        steps = ["$"]
        for key in self.path:
            steps.append(f"[{key}]" if isinstance(key, int) else f'."{key}"')
        return "".join(steps)

    # --- PostgreSQL ----------------------------------------------------------------------

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> SQL:
        column, column_params = self._column_sql(compiler)
        path = [str(key) for key in self.path]
        value_sql = f"({column} #> %s)"
        value_params: list[Any] = [*column_params, path]

        def type_in(types: Sequence[str]) -> SQL:
            marks = ", ".join(["%s"] * len(types))
            return (
                f"COALESCE(JSONB_TYPEOF({value_sql}), 'missing') IN ({marks})",
                [*value_params, *types],
            )

        parts: list[SQL] = []
        if self.op == "type":
            parts.append(type_in(self.values))
        elif self.op == "in":
            marks = ", ".join(["%s::jsonb"] * len(self.values))
            parts.append(
                (
                    f"{value_sql} IN ({marks})",
                    [*value_params, *(json.dumps(v) for v in self.values)],
                )
            )
        elif self.op in _ORDERING:
            (value,) = self.values
            guard_sql, guard_params = type_in([json_type_of(value)])
            parts.append(
                (
                    f"({guard_sql} AND {value_sql} {self.op} %s::jsonb)",
                    [*guard_params, *value_params, json.dumps(value)],
                )
            )
        elif self.op == "icontains":
            (value,) = self.values
            guard_sql, guard_params = type_in(["string"])
            parts.append(
                (
                    f"({guard_sql} AND ({column} #>> %s) ILIKE %s ESCAPE '\\')",
                    [*guard_params, *column_params, path, like_pattern(value)],
                )
            )
        else:  # contains
            (value,) = self.values
            if json_type_of(value) == "string":
                guard_sql, guard_params = type_in(["string"])
                parts.append(
                    (
                        f"({guard_sql} AND STRPOS(({column} #>> %s), %s) > 0)",
                        [*guard_params, *column_params, path, value],
                    )
                )
            guard_sql, guard_params = type_in(["array"])
            parts.append(
                (
                    f"({guard_sql} AND {value_sql} @> %s::jsonb)",
                    [*guard_params, *value_params, json.dumps([value])],
                )
            )
        return _any(parts, "FALSE")


def _any(parts: list[SQL], false: str) -> SQL:
    """OR of the parts, never NULL."""
    if not parts:
        return false, []
    sql = " OR ".join(p[0] for p in parts)
    params = [param for p in parts for param in p[1]]
    return f"COALESCE(({sql}), {false})", params
