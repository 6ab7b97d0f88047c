"""Dataset versions (issue 16): every change to a dataset makes a version; an example's input,
expected output and metadata at each version are JSON objects (``DatasetExampleRevision``).
Examples need no source span any more (uploaded tables), so the one-span-once constraint only
holds for examples made from spans.

Forward: each dataset that has examples gets a first version holding them all as they are
(``{"input": <text>}``, ``{"output": <expected output, else the span's output>}``). Backward:
the versions go; uploaded examples (without a span) and examples deleted from a dataset go
with them.
"""

from typing import Any

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def _first_versions(apps: Any, schema_editor: Any) -> None:
    Dataset = apps.get_model("annotations", "Dataset")
    DatasetVersion = apps.get_model("annotations", "DatasetVersion")
    Revision = apps.get_model("annotations", "DatasetExampleRevision")
    Example = apps.get_model("annotations", "DatasetExample")
    for dataset in Dataset.objects.filter(examples__isnull=False).distinct().iterator():
        version = DatasetVersion.objects.create(
            dataset=dataset, description="examples before versions", created_at=dataset.updated_at
        )
        batch = []
        for example in Example.objects.filter(dataset=dataset).order_by("id").iterator():
            expected = (
                example.expected_output if example.expected_output is not None else example.output
            )
            batch.append(
                Revision(
                    example=example,
                    version=version,
                    kind="CREATE",
                    input={} if example.input is None else {"input": example.input},
                    output={} if expected is None else {"output": expected},
                    metadata=example.metadata or {},
                )
            )
            if len(batch) >= 1000:
                Revision.objects.bulk_create(batch)
                batch = []
        Revision.objects.bulk_create(batch)


def _drop_uploaded(apps: Any, schema_editor: Any) -> None:
    Example = apps.get_model("annotations", "DatasetExample")
    Example.objects.filter(source_span_id="").delete()
    Example.objects.filter(removed_at__isnull=False).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0008_document_position"),
    ]

    operations = [
        migrations.CreateModel(
            name="DatasetExampleRevision",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[("CREATE", "Create"), ("PATCH", "Patch"), ("DELETE", "Delete")],
                        max_length=8,
                    ),
                ),
                ("input", models.JSONField(blank=True, default=dict)),
                ("output", models.JSONField(blank=True, default=dict)),
                ("metadata", models.JSONField(blank=True, default=dict)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
        migrations.CreateModel(
            name="DatasetVersion",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("description", models.TextField(blank=True, default="")),
                ("metadata", models.JSONField(blank=True, default=dict)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("deleted_at", models.DateTimeField(blank=True, null=True)),
            ],
        ),
        migrations.RemoveConstraint(
            model_name="datasetexample",
            name="dataset_example_unique_span",
        ),
        migrations.AlterField(
            model_name="datasetexample",
            name="source_span_id",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.AddField(
            model_name="datasetexample",
            name="removed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name="datasetexample",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    models.Q(("source_span_id", ""), _negated=True), ("removed_at__isnull", True)
                ),
                fields=("dataset", "source_span_id"),
                name="dataset_example_unique_span",
            ),
        ),
        # Backward, before the old constraint returns: uploaded and deleted examples go.
        migrations.RunPython(migrations.RunPython.noop, _drop_uploaded),
        migrations.AddField(
            model_name="datasetexamplerevision",
            name="example",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="revisions",
                to="annotations.datasetexample",
            ),
        ),
        migrations.AddField(
            model_name="datasetversion",
            name="dataset",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="versions",
                to="annotations.dataset",
            ),
        ),
        migrations.AddField(
            model_name="datasetexamplerevision",
            name="version",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="revisions",
                to="annotations.datasetversion",
            ),
        ),
        migrations.AddIndex(
            model_name="datasetversion",
            index=models.Index(fields=["dataset", "-id"], name="dataset_version_latest"),
        ),
        migrations.AddIndex(
            model_name="datasetexamplerevision",
            index=models.Index(fields=["version", "example"], name="dataset_revision_by_version"),
        ),
        migrations.AddConstraint(
            model_name="datasetexamplerevision",
            constraint=models.UniqueConstraint(
                fields=("example", "version"), name="dataset_revision_unique_version"
            ),
        ),
        migrations.RunPython(_first_versions, migrations.RunPython.noop),
    ]
