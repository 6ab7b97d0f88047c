"""Each span (and document) result keeps its span's start time, with an index for reading a
project's results of one name newest span first (``tracing.query.lists.span_list``)."""

from typing import Any

from django.db import migrations, models

# One statement: on PostgreSQL a join against the (partitioned) span table; SQLite has no
# UPDATE … FROM before 3.33 on every platform, so it reads each span by its key.
_COPY = {
    "postgresql": (
        "UPDATE annotations_annotation AS a SET span_start_time = s.start_time "
        "FROM tracing_span AS s WHERE a.span_id IS NOT NULL AND s.id = a.span_id"
    ),
    "sqlite": (
        "UPDATE annotations_annotation SET span_start_time = "
        "(SELECT s.start_time FROM tracing_span AS s WHERE s.id = annotations_annotation.span_id) "
        "WHERE span_id IS NOT NULL"
    ),
}


def copy_span_start_times(apps: Any, schema_editor: Any) -> None:
    schema_editor.execute(_COPY[schema_editor.connection.vendor])


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0013_annotation_project_updated"),
        ("tracing", "0007_span_partitions"),
    ]

    operations = [
        migrations.AddField(
            model_name="annotation",
            name="span_start_time",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(copy_span_start_times, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="annotation",
            index=models.Index(
                fields=["project", "name", "-span_start_time", "-span"],
                name="annotation_name_span_time",
            ),
        ),
    ]
