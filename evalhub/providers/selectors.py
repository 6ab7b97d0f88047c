"""LLM providers."""

from __future__ import annotations

from django.db.models import QuerySet

from evalhub.providers.llm import ProviderConfig
from evalhub.providers.models import Provider

# --- the evaluator hub -------------------------------------------------------------------------


def provider_list() -> QuerySet[Provider]:
    return Provider.objects.order_by("-is_default", "name")


def provider_for(provider_id: int | None) -> Provider | None:
    """The provider an evaluation uses: the one its definition names (``provider_id``), else the
    default provider; None when that one does not exist."""
    if provider_id is not None:
        return Provider.objects.filter(pk=provider_id).first()
    return Provider.objects.filter(is_default=True).first()


def provider_config(provider: Provider) -> ProviderConfig:
    """A ``Provider`` row as the LLM client needs it, its key decrypted."""
    from evalhub.providers.crypto import secret_decrypt

    api_key = secret_decrypt(provider.api_key_encrypted) if provider.api_key_encrypted else ""
    return ProviderConfig(
        key=f"provider:{provider.pk}",
        kind=provider.kind,
        api_key=api_key,
        default_model=provider.default_model,
        base_url=provider.base_url,
        api_version=provider.api_version,
        max_concurrency=provider.max_concurrency,
        requests_per_minute=provider.requests_per_minute,
        timeout_seconds=provider.timeout_seconds,
    )
