"""LLM providers: create, update, delete, test the connection, rotate the keys' encryption."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from evalhub.core.fields import FieldInvalid
from evalhub.core.outbound import outbound_url_check
from evalhub.providers.models import Provider, ProviderKind

if TYPE_CHECKING:
    pass


@sensitive_variables("api_key")
@transaction.atomic
def provider_create(
    *,
    name: str,
    kind: str,
    default_model: str,
    api_key: str = "",
    base_url: str = "",
    api_version: str = "",
    max_concurrency: int = 4,
    requests_per_minute: int = 60,
    timeout_seconds: float = 60.0,
    is_default: bool = False,
) -> Provider:
    """Add a provider; the key is stored encrypted. The first provider becomes the default."""
    provider = Provider(name=name.strip())
    _provider_apply(
        provider,
        kind=kind,
        default_model=default_model,
        base_url=base_url,
        api_version=api_version,
        max_concurrency=max_concurrency,
        requests_per_minute=requests_per_minute,
        timeout_seconds=timeout_seconds,
    )
    if api_key:
        _provider_set_key(provider, api_key)
    _provider_validate(provider)
    make_default = is_default or not Provider.objects.exists()
    if make_default:
        Provider.objects.filter(is_default=True).update(is_default=False)
    provider.is_default = make_default
    provider.save()
    return provider


@sensitive_variables("api_key")
@transaction.atomic
def provider_update(
    *,
    provider: Provider,
    name: str | None = None,
    kind: str | None = None,
    default_model: str | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    api_version: str | None = None,
    max_concurrency: int | None = None,
    requests_per_minute: int | None = None,
    timeout_seconds: float | None = None,
    is_default: bool | None = None,
) -> Provider:
    """Change what is given; ``api_key`` None or empty keeps the stored key — except when the
    requests would go somewhere else (another base URL or kind): the stored key is never sent
    to a new address, so the change needs the key again (``FieldInvalid`` on ``api_key``)."""
    sent_to = _provider_destination(provider)
    if name is not None:
        provider.name = name.strip()
    _provider_apply(
        provider,
        kind=kind,
        default_model=default_model,
        base_url=base_url,
        api_version=api_version,
        max_concurrency=max_concurrency,
        requests_per_minute=requests_per_minute,
        timeout_seconds=timeout_seconds,
    )
    if api_key:
        _provider_set_key(provider, api_key)
    elif provider.api_key_encrypted and _provider_destination(provider) != sent_to:
        raise FieldInvalid(
            field="api_key",
            message="enter the API key again to change the base URL or kind: the stored key "
            "is never sent to a new address",
        )
    _provider_validate(provider)
    if is_default:
        Provider.objects.filter(is_default=True).exclude(pk=provider.pk).update(is_default=False)
        provider.is_default = True
    elif is_default is False:
        provider.is_default = False
    provider.save()
    return provider


def _provider_destination(provider: Provider) -> tuple[str, str]:
    """Where the provider's requests (and its key) go."""
    return provider.kind, provider.base_url.strip().rstrip("/")


def _provider_apply(provider: Provider, **fields: Any) -> None:
    for field_name, value in fields.items():
        if value is not None:
            setattr(provider, field_name, value.strip() if isinstance(value, str) else value)


@sensitive_variables("api_key")
def _provider_set_key(provider: Provider, api_key: str) -> None:
    from evalhub.providers.crypto import secret_encrypt, secret_hint

    api_key = api_key.strip()
    provider.api_key_encrypted = secret_encrypt(api_key)
    provider.api_key_hint = secret_hint(api_key)


def _provider_validate(provider: Provider) -> None:
    if not provider.name:
        raise ValueError("name: must not be empty")
    if provider.kind not in ProviderKind.values:
        raise ValueError(f"kind: must be one of {', '.join(ProviderKind.values)}")
    if not provider.default_model.strip():
        raise ValueError("default_model: must not be empty")
    if provider.kind in (ProviderKind.AZURE, ProviderKind.COMPATIBLE) and not provider.base_url:
        raise ValueError("base_url: required for Azure OpenAI and OpenAI-compatible endpoints")
    if provider.base_url:
        outbound_url_check(provider.base_url, field="base_url")
    if provider.max_concurrency < 1:
        raise ValueError("max_concurrency: at least 1")
    if provider.requests_per_minute < 0:
        raise ValueError("requests_per_minute: 0 (no limit) or more")
    if not 0 < provider.timeout_seconds <= 600:
        raise ValueError("timeout_seconds: between 0 and 600")
    if Provider.objects.filter(name=provider.name).exclude(pk=provider.pk).exists():
        raise ValueError(f"name: a provider named {provider.name!r} exists")


def provider_delete(*, provider: Provider) -> None:
    provider.delete()


@dataclass(frozen=True, slots=True)
class ConnectionTest:
    ok: bool
    answer: str | None
    error: str | None
    model: str
    latency_ms: float | None


def provider_test_connection(*, provider: Provider, model: str = "") -> ConnectionTest:
    """One small call, no retries: the model's answer, or the provider's exact error."""
    from evalhub.providers.crypto import SecretUndecryptable
    from evalhub.providers.llm import LlmError, RetryPolicy, chat_complete
    from evalhub.providers.selectors import provider_config

    model = model or provider.default_model
    try:
        result = chat_complete(
            provider_config(provider),
            messages=[{"role": "user", "content": "Reply with the single word: pong"}],
            model=model,
            temperature=0.0,
            max_tokens=16,
            retry=RetryPolicy(max_attempts=1, limiter_timeout_seconds=30),
        )
    except (LlmError, SecretUndecryptable) as exc:
        return ConnectionTest(False, None, str(exc), model, None)
    answer = result.content or ", ".join(c["name"] for c in result.tool_calls) or ""
    return ConnectionTest(True, answer, None, result.model or model, round(result.latency_ms, 1))


@transaction.atomic
def provider_keys_rotate() -> int:
    """Re-encrypt every stored key with the newest secret; returns how many. All or nothing:
    a key that no configured secret opens raises ``SecretUndecryptable``."""
    from evalhub.providers.crypto import secret_rotate

    providers = list(Provider.objects.select_for_update().exclude(api_key_encrypted=""))
    for provider in providers:
        provider.api_key_encrypted = secret_rotate(provider.api_key_encrypted)
    Provider.objects.bulk_update(providers, ["api_key_encrypted"])
    return len(providers)
