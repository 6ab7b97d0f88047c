"""Membership fields: filter fields that products add, true for the spans, traces or sessions
their rows list — ``task_run = 42`` is "the items run 42 evaluated".

The query language knows nothing of the products above it. A product describes the rows that
name members — which model, which column holds the field's value (a run's id), which column
says what a row names (a span, a trace or a session) and which holds its primary key — and
registers the field when its app is ready (``tracing.query.fields.membership_register``)::

    membership_register(
        MembershipField(
            name="task_run",
            description="The id of a task run: the items it evaluated",
            model=TaskRunItem,
            value_path="run_id",
            level_path="target_kind",
            member_path="target_pk",
        )
    )

A span is a member when a row names it, its trace or its session; the compiler writes one
subquery on the span's primary key, the union of the spans named directly and the spans of the
traces and sessions named (``id IN (SELECT id FROM span WHERE id IN (SELECT target_pk ...)
UNION ALL SELECT id FROM span WHERE trace_id IN (...) UNION ALL ...)``), every value bound as a
parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from django.db.models import Model, Q

# What a member is, and the span column holding its primary key.
LEVEL_COLUMNS: Mapping[str, str] = {"span": "pk", "trace": "trace_id", "session": "session_id"}


@dataclass(frozen=True, slots=True)
class MembershipField:
    """A field true for the members a model's rows list (see the module docstring).

    ``levels`` maps each level (``span``, ``trace``, ``session``) to the value ``level_path``
    holds for it; ``value_type`` is what the field compares to (``integer``: an id)."""

    name: str
    description: str
    model: type[Model]
    value_path: str
    level_path: str
    member_path: str
    levels: Mapping[str, str] = field(
        default_factory=lambda: {level: level for level in LEVEL_COLUMNS}
    )
    value_type: Literal["integer", "string"] = "integer"
    aliases: tuple[str, ...] = ()

    def members(self, values: list[Any] | None) -> Q:
        """The spans that are members for one of ``values`` (``None``: for any value)."""
        rows = self.model._default_manager.all()
        if values is not None:
            rows = rows.filter(**{f"{self.value_path}__in": values})
        from tracing.models import Span

        # One ``id IN (... UNION ALL ...)``: the database lists the member spans first (from the
        # rows' index, then the spans' pk, trace and session indexes) and joins them, instead
        # of testing every span it scans against three subqueries joined by OR — at 1M spans,
        # 15 ms instead of seconds for a run of a few dozen items (bench/run_items_bench.py).
        parts = [
            Span.objects.filter(
                **{
                    f"{LEVEL_COLUMNS[level]}__in": rows.filter(**{self.level_path: stored}).values(
                        self.member_path
                    )
                }
            ).values("pk")
            for level, stored in self.levels.items()
        ]
        return Q(pk__in=parts[0].union(*parts[1:], all=True))


REGISTERED: dict[str, MembershipField] = {}


def membership_get(name: str) -> MembershipField | None:
    return REGISTERED.get(name)
