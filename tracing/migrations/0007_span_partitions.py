"""The span table becomes partitioned by ``start_time`` on PostgreSQL (``tracing.partitions``).

SQLite, and ``EVALHUB_SPAN_PARTITION_DAYS=0``, keep one table: nothing happens. On a large
installation run ``manage.py spans_partition`` first (it copies in committed batches with the
site up); this migration then finds the table converted and does nothing.
"""

from django.db import migrations


def partition(apps, schema_editor):
    from tracing.partitions import span_table_partition

    if schema_editor.connection.vendor != "postgresql":
        return
    span_table_partition(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("tracing", "0006_span_unique_id_start"),
    ]

    # Not reversible: going back to one table is a copy as large as going forward.
    operations = [migrations.RunPython(partition, migrations.RunPython.noop, elidable=False)]
