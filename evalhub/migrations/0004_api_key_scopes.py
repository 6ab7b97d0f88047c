"""API key scopes, expiry and creator.

Keys made before scopes existed could do everything. They keep working, with the least power
that does not break what they were plausibly used for: keys of staff users or superusers become
``admin``; every other key (another user's, or one with no user) becomes ``write`` — it can still
send spans, read, annotate and evaluate, but no longer delete projects or spans, manage AI
providers, users or other people's keys. New keys default to ``ingest``.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import Q

SCOPE_CHOICES = [
    ("ingest", "Ingest (OTLP only)"),
    ("read", "Read"),
    ("write", "Write (annotate, log, evaluate)"),
    ("admin", "Admin"),
]


def scope_existing_keys(apps, schema_editor):
    ApiKey = apps.get_model("evalhub", "ApiKey")
    ApiKey.objects.update(scope="write")
    ApiKey.objects.filter(Q(user__is_staff=True) | Q(user__is_superuser=True)).update(
        scope="admin"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("evalhub", "0003_online_tasks"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="apikey",
            name="expires_at",
            field=models.DateTimeField(
                blank=True,
                help_text="Refused from this moment on; empty: never expires.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="apikey",
            name="scope",
            field=models.CharField(choices=SCOPE_CHOICES, default="write", max_length=8),
        ),
        migrations.RunPython(scope_existing_keys, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="apikey",
            name="scope",
            field=models.CharField(choices=SCOPE_CHOICES, default="ingest", max_length=8),
        ),
        migrations.AddConstraint(
            model_name="apikey",
            constraint=models.CheckConstraint(
                condition=Q(scope__in=["ingest", "read", "write", "admin"]),
                name="api_key_scope_known",
            ),
        ),
    ]
