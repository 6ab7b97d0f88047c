"""Migration 0006: task results lose the ``eval.`` prefix (and get it back when reversed), and
the unique key gains the annotator's class."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("annotations", "0005_merge_queues_datasets")]
AFTER = [("annotations", "0006_result_names")]
T0 = datetime(2026, 11, 20, tzinfo=UTC)


def _migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _latest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def _rows(apps: Any) -> list[tuple[str, str, str, str, str]]:
    Annotation = apps.get_model("annotations", "Annotation")
    return sorted(
        (row.label, row.name, row.annotator_kind, row.source, row.target_kind)
        for row in Annotation.objects.all()
    )


@pytest.mark.django_db(transaction=True)
def test_task_results_are_renamed_forward_and_back_keeping_the_newest_on_a_collision():
    apps = _migrate(BEFORE)
    try:
        Project = apps.get_model("tracing", "Project")
        Trace = apps.get_model("tracing", "Trace")
        Span = apps.get_model("tracing", "Span")
        project = Project.objects.create(name="shop")
        trace = Trace.objects.create(project=project, trace_id="t" * 32)
        first, second = (
            Span.objects.create(
                project=project,
                trace=trace,
                span_id=f"{n:016x}",
                name="llm",
                start_time=T0,
                end_time=T0,
                latency_ms=1.0,
            )
            for n in (1, 2)
        )

        def put(
            label: str,
            name: str,
            kind: str,
            source: str,
            age: int,
            identifier: str = "",
            **target: Any,
        ) -> None:
            kinds = {"span": "SPAN", "trace": "TRACE"}
            ((key, row),) = target.items()
            apps.get_model("annotations", "Annotation").objects.create(
                project_id=project.pk,
                target_kind=kinds[key],
                name=name,
                annotator_kind=kind,
                source=source,
                label=label,
                identifier=identifier,
                updated_at=T0 - timedelta(minutes=age),
                **{f"{key}_id": row.pk},
            )

        put("task, older", "eval.Correctness", "LLM", "TASK", 30, span=first)
        put("client, newer", "Correctness", "LLM", "API", 20, span=first)
        put("alice", "Correctness", "HUMAN", "APP", 10, identifier="alice", span=first)
        put("code task", "eval.length", "CODE", "TASK", 5, span=second)
        put("logged", "eval.custom", "LLM", "API", 5, span=second)
        put("trace task", "eval.Correctness", "LLM", "TASK", 5, trace=trace)

        apps = _migrate(AFTER)
        assert _rows(apps) == [
            ("alice", "Correctness", "HUMAN", "APP", "SPAN"),
            ("client, newer", "Correctness", "LLM", "API", "SPAN"),  # the task's older one went
            ("code task", "length", "CODE", "TASK", "SPAN"),
            ("logged", "eval.custom", "LLM", "API", "SPAN"),  # not a task's: kept as named
            ("trace task", "Correctness", "LLM", "TASK", "TRACE"),
        ]
        # Now a person's label and the judge's result share name and identifier.
        put("person", "Correctness", "HUMAN", "APP", 1, span=first)

        apps = _migrate(BEFORE)
        assert _rows(apps) == [
            ("alice", "Correctness", "HUMAN", "APP", "SPAN"),
            ("code task", "eval.length", "CODE", "TASK", "SPAN"),
            ("logged", "eval.custom", "LLM", "API", "SPAN"),
            # Under the old key (span, name, identifier) the person's and the client's
            # "Correctness" collide: the newest, the person's, stays.
            ("person", "Correctness", "HUMAN", "APP", "SPAN"),
            ("trace task", "eval.Correctness", "LLM", "TASK", "TRACE"),
        ]
    finally:
        _latest()
