"""A GIN index for metadata filters (PostgreSQL only; attributes are not GIN-indexed: it
would multiply the cost of every insert) and a starting model price table."""

from decimal import Decimal

from django.db import migrations

GIN_INDEXES = [
    ("span_metadata_gin", "tracing_span", "metadata jsonb_path_ops"),
]

# USD per million tokens (prompt, completion), as published by the providers in 2026.
PRICES = [
    ("gpt-4o-mini", "openai", "0.15", "0.60"),
    ("gpt-4o", "openai", "2.50", "10.00"),
    ("gpt-4.1-nano", "openai", "0.10", "0.40"),
    ("gpt-4.1-mini", "openai", "0.40", "1.60"),
    ("gpt-4.1", "openai", "2.00", "8.00"),
    ("gpt-4-turbo", "openai", "10.00", "30.00"),
    ("gpt-4", "openai", "30.00", "60.00"),
    ("gpt-3.5-turbo", "openai", "0.50", "1.50"),
    ("gpt-5-nano", "openai", "0.05", "0.40"),
    ("gpt-5-mini", "openai", "0.25", "2.00"),
    ("gpt-5", "openai", "1.25", "10.00"),
    ("o1-mini", "openai", "1.10", "4.40"),
    ("o1", "openai", "15.00", "60.00"),
    ("o3-mini", "openai", "1.10", "4.40"),
    ("o3", "openai", "2.00", "8.00"),
    ("o4-mini", "openai", "1.10", "4.40"),
    ("text-embedding-3-small", "openai", "0.02", "0"),
    ("text-embedding-3-large", "openai", "0.13", "0"),
    ("claude-3-5-haiku", "anthropic", "0.80", "4.00"),
    ("claude-3-5-sonnet", "anthropic", "3.00", "15.00"),
    ("claude-3-7-sonnet", "anthropic", "3.00", "15.00"),
    ("claude-3-opus", "anthropic", "15.00", "75.00"),
    ("claude-sonnet-4", "anthropic", "3.00", "15.00"),
    ("claude-opus-4", "anthropic", "15.00", "75.00"),
    ("claude-haiku-4", "anthropic", "1.00", "5.00"),
    ("gemini-1.5-flash", "google", "0.075", "0.30"),
    ("gemini-1.5-pro", "google", "1.25", "5.00"),
    ("gemini-2.0-flash", "google", "0.10", "0.40"),
    ("gemini-2.5-flash", "google", "0.30", "2.50"),
    ("gemini-2.5-pro", "google", "1.25", "10.00"),
    ("mistral-large", "mistral", "2.00", "6.00"),
    ("mistral-small", "mistral", "0.20", "0.60"),
    ("llama-3.1-8b", "meta", "0.18", "0.18"),
    ("llama-3.1-70b", "meta", "0.88", "0.88"),
    ("llama-3.3-70b", "meta", "0.88", "0.88"),
]


def create_gin(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table, expression in GIN_INDEXES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({expression})")


def drop_gin(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _expression in GIN_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


def seed_prices(apps, schema_editor):
    ModelPrice = apps.get_model("tracing", "ModelPrice")
    for prefix, provider, prompt, completion in PRICES:
        ModelPrice.objects.get_or_create(
            model_prefix=prefix,
            defaults={
                "provider": provider,
                "prompt_per_million": Decimal(prompt),
                "completion_per_million": Decimal(completion),
            },
        )


class Migration(migrations.Migration):
    dependencies = [("tracing", "0001_initial")]

    operations = [
        migrations.RunPython(create_gin, drop_gin),
        migrations.RunPython(seed_prices, migrations.RunPython.noop),
    ]
