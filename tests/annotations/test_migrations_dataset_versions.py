"""Migration 0007 (dataset versions): a dataset's examples get a first version as JSON
objects; backward, uploaded and deleted examples go and the old constraint returns."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("annotations", "0008_document_position")]
AFTER = [("annotations", "0009_dataset_versions")]


def _migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _latest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_examples_get_a_first_version_and_come_back():
    apps = _migrate(BEFORE)
    try:
        Dataset = apps.get_model("annotations", "Dataset")
        Example = apps.get_model("annotations", "DatasetExample")
        golden = Dataset.objects.create(name="golden")
        Dataset.objects.create(name="empty")
        Example.objects.create(
            dataset=golden, input="q1", output="spans answer", expected_output="gold",
            source_span_id="a" * 16, metadata={"k": 1},
        )  # fmt: skip
        Example.objects.create(
            dataset=golden, input="q2", output="only output", source_span_id="b" * 16
        )

        apps = _migrate(AFTER)
        Version = apps.get_model("annotations", "DatasetVersion")
        Revision = apps.get_model("annotations", "DatasetExampleRevision")
        assert Version.objects.count() == 1  # the empty dataset has none
        assert sorted((r.input["input"], r.output["output"]) for r in Revision.objects.all()) == [
            ("q1", "gold"),
            ("q2", "only output"),
        ]
        Example = apps.get_model("annotations", "DatasetExample")
        Example.objects.create(dataset_id=golden.pk, input='{"x": 1}')  # uploaded: no span
        Example.objects.create(dataset_id=golden.pk, input='{"x": 2}')

        apps = _migrate(BEFORE)
        Example = apps.get_model("annotations", "DatasetExample")
        assert sorted(Example.objects.values_list("input", flat=True)) == ["q1", "q2"]
    finally:
        _latest()
