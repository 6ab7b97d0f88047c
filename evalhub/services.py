"""Writes for API keys, LLM providers, evaluators and their recorded results."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from annotations.models import Annotation, AnnotationSource, AnnotatorKind, TargetKind
from evalhub.models import (
    ApiKey,
    Evaluator,
    EvaluatorKind,
    EvaluatorVersion,
    Provider,
    ProviderKind,
)
from tracing.models import Span

if TYPE_CHECKING:
    from evalhub.hub.runner import EvaluationResult

KEY_PREFIX = "ehk_"


def api_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_new_secret(key: ApiKey) -> str:
    """Give ``key`` a fresh secret (prefix and hash set, not saved); returns the raw key."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key.prefix, key.key_hash = raw[:12], api_key_hash(raw)
    return raw


@transaction.atomic
def api_key_create(*, name: str, user: AbstractBaseUser | None = None) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the raw key, which is never stored or shown again."""
    if not name.strip():
        raise ValueError("name must not be empty")
    key = ApiKey(name=name.strip(), user=user)
    raw = api_key_new_secret(key)
    key.save()
    return key, raw


def api_key_mark_used(*, key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())


# --- the evaluator hub: providers, evaluators, recorded results -------------------------------

_EVALUATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


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
    """Change what is given; ``api_key`` None or empty keeps the stored key."""
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
    _provider_validate(provider)
    if is_default:
        Provider.objects.filter(is_default=True).exclude(pk=provider.pk).update(is_default=False)
        provider.is_default = True
    elif is_default is False:
        provider.is_default = False
    provider.save()
    return provider


def _provider_apply(provider: Provider, **fields: Any) -> None:
    for field_name, value in fields.items():
        if value is not None:
            setattr(provider, field_name, value.strip() if isinstance(value, str) else value)


@sensitive_variables("api_key")
def _provider_set_key(provider: Provider, api_key: str) -> None:
    from evalhub.hub.crypto import secret_encrypt, secret_hint

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
    if provider.base_url and not provider.base_url.startswith(("http://", "https://")):
        raise ValueError("base_url: must start with http:// or https://")
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
    from evalhub.hub.crypto import SecretUndecryptable
    from evalhub.hub.llm import LlmError, RetryPolicy, chat_complete
    from evalhub.hub.runner import provider_config

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


def _config_check(config: dict[str, Any], user: AbstractBaseUser | None) -> dict[str, Any]:
    from django.core.exceptions import PermissionDenied

    from evalhub.hub.config import CodeConfig, config_parse

    parsed = config_parse(config)
    if (
        isinstance(parsed, CodeConfig)
        and parsed.check == "custom"
        and not (user is not None and getattr(user, "is_staff", False))
    ):
        raise PermissionDenied("only staff users can create or change custom code evaluators")
    if (
        getattr(parsed, "provider_id", None) is not None
        and not Provider.objects.filter(
            pk=parsed.provider_id  # type: ignore[union-attr]
        ).exists()
    ):
        raise ValueError(f"provider_id: no provider #{parsed.provider_id}")  # type: ignore[union-attr]
    return parsed.model_dump(mode="json")


@transaction.atomic
def evaluator_create(
    *,
    name: str,
    config: dict[str, Any],
    description: str = "",
    user: AbstractBaseUser | None = None,
    template_key: str = "",
) -> Evaluator:
    """A new evaluator with ``config`` as its version 1. Raises ``EvaluatorConfigError`` or
    ``ValueError`` naming the field, ``PermissionDenied`` for custom code by a non-staff user."""
    name = name.strip()
    if not _EVALUATOR_NAME.match(name):
        raise ValueError(
            "name: letters, digits, '_', '-' and '.', starting with a letter or digit (≤100)"
        )
    if Evaluator.objects.filter(name=name).exists():
        raise ValueError(f"name: an evaluator named {name!r} exists")
    cleaned = _config_check(config, user)
    now = timezone.now()
    evaluator = Evaluator.objects.create(
        name=name,
        description=description.strip(),
        kind=cleaned["kind"],
        template_key=template_key,
        created_by=user if user is not None and user.pk else None,
        created_at=now,
        updated_at=now,
    )
    EvaluatorVersion.objects.create(
        evaluator=evaluator, number=1, config=cleaned, created_by=evaluator.created_by
    )
    return evaluator


@transaction.atomic
def evaluator_update(
    *,
    evaluator: Evaluator,
    user: AbstractBaseUser | None = None,
    description: str | None = None,
    config: dict[str, Any] | None = None,
) -> EvaluatorVersion:
    """Change the description and/or the definition; a changed definition is a new version
    (the kind stays). Returns the latest version."""
    Evaluator.objects.select_for_update().get(pk=evaluator.pk)  # one editor at a time
    latest = evaluator.versions.order_by("-number").first()
    assert latest is not None
    if description is not None:
        evaluator.description = description.strip()
    if config is not None:
        cleaned = _config_check(config, user)
        if cleaned["kind"] != evaluator.kind:
            raise ValueError("kind: an evaluator's kind cannot change; create a new evaluator")
        if cleaned != latest.config:
            latest = EvaluatorVersion.objects.create(
                evaluator=evaluator,
                number=latest.number + 1,
                config=cleaned,
                created_by=user if user is not None and user.pk else None,
            )
    evaluator.updated_at = timezone.now()
    evaluator.save(update_fields=["description", "updated_at"])
    return latest


def evaluator_create_from_template(
    *,
    key: str,
    name: str | None = None,
    user: AbstractBaseUser | None = None,
    provider_id: int | None = None,
) -> Evaluator:
    """A new LLM judge copied from library template ``key``."""
    from evalhub.hub.templates_library import template_get

    template = template_get(key)
    config = template.config()
    config["provider_id"] = provider_id
    return evaluator_create(
        name=name or template.key,
        config=config,
        description=template.description,
        user=user,
        template_key=template.key,
    )


def evaluator_delete(*, evaluator: Evaluator) -> None:
    """Removes the evaluator and its versions; results already recorded stay."""
    evaluator.delete()


def evaluation_result_record(
    *,
    version: EvaluatorVersion,
    span: Span,
    result: EvaluationResult,
    source: str = AnnotationSource.TASK,
) -> Annotation:
    """Write ``result`` as the annotation named after the evaluator on the span — or on its trace or
    session for those granularities. A failed evaluation is recorded too: no label or score,
    the error as explanation and in ``metadata.error``."""
    from annotations.services import AnnotationInput, annotations_upsert

    granularity = version.config.get("granularity", "span")
    if granularity == "trace":
        target_kind, target_id = TargetKind.TRACE, span.trace.trace_id
    elif granularity == "session":
        if span.session is None:
            raise ValueError(f"span {span.span_id} belongs to no session")
        target_kind, target_id = TargetKind.SESSION, span.session.session_id
    else:
        target_kind, target_id = TargetKind.SPAN, span.span_id
    kind = AnnotatorKind.LLM if version.evaluator.kind == EvaluatorKind.LLM else AnnotatorKind.CODE
    item = AnnotationInput(
        target_kind=target_kind,
        target_id=target_id,
        name=version.evaluator.annotation_name,
        annotator_kind=kind,
        label=result.label if result.ok else None,
        score=result.score if result.ok else None,
        explanation=result.explanation if result.ok else f"error: {result.error}",
        metadata=result.annotation_metadata(),
    )
    if result.ok and item.label is None and item.score is None and item.explanation is None:
        item.explanation = ""
    return annotations_upsert(items=[item], source=source, project=span.project)[0]


@transaction.atomic
def provider_keys_rotate() -> int:
    """Re-encrypt every stored key with the newest secret; returns how many. All or nothing:
    a key that no configured secret opens raises ``SecretUndecryptable``."""
    from evalhub.hub.crypto import secret_rotate

    providers = list(Provider.objects.select_for_update().exclude(api_key_encrypted=""))
    for provider in providers:
        provider.api_key_encrypted = secret_rotate(provider.api_key_encrypted)
    Provider.objects.bulk_update(providers, ["api_key_encrypted"])
    return len(providers)
