"""Labeling queues and datasets were built side by side; this joins the two branches."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0003_labeling_queues"),
        ("annotations", "0004_datasets"),
    ]

    operations = []
