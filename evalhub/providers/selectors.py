"""LLM providers."""

from __future__ import annotations

from django.db.models import QuerySet

from evalhub.providers.models import Provider

# --- the evaluator hub -------------------------------------------------------------------------


def provider_list() -> QuerySet[Provider]:
    return Provider.objects.order_by("-is_default", "name")


def provider_default() -> Provider | None:
    return Provider.objects.filter(is_default=True).first()
