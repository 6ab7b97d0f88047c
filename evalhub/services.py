"""Writes for API keys, LLM providers, evaluators and their recorded results."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from annotations.models import Annotation, AnnotationSource, AnnotatorKind, TargetKind
from evalhub.core.fields import FieldInvalid
from evalhub.core.outbound import outbound_url_check
from evalhub.evaluators.models import Evaluator, EvaluatorKind, EvaluatorVersion
from evalhub.identity.access import (
    ROLE_MAX_SCOPE,
    Need,
    Principal,
    Role,
    refusal,
    scope_allowed_for,
    user_is_admin,
    user_role,
)
from evalhub.identity.models import ApiKey, ApiKeyScope
from evalhub.providers.models import Provider, ProviderKind
from tracing.models import Span

if TYPE_CHECKING:
    from evalhub.evaluators.running import EvaluationResult

KEY_PREFIX = "ehk_"


def api_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_new_secret(key: ApiKey) -> str:
    """Give ``key`` a fresh secret (prefix and hash set, not saved); returns the raw key."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key.prefix, key.key_hash = raw[:12], api_key_hash(raw)
    return raw


class ApiKeyInvalid(ValueError):
    """A key that cannot be made or changed as asked; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class ApiKeyForbidden(PermissionError):
    """The acting person or key may not make or revoke this key."""


def _key_rules(
    *, actor: Principal | None, owner: AbstractBaseUser | None, scope: str | None = None
) -> None:
    """Members manage their own keys, up to their role's widest scope; admins anyone's, and
    user-less keys. ``actor`` None: a trusted caller (the command line)."""
    if actor is None:
        return
    if not actor.can(Need.KEYS):
        raise ApiKeyForbidden(refusal(actor, Need.KEYS))
    is_admin = actor.is_admin
    if not is_admin and (owner is None or owner.pk != getattr(actor.user, "pk", None)):
        raise ApiKeyForbidden("only an admin manages other people's keys and keys with no user")
    if scope is not None and owner is not None:
        role = user_role(owner)
        if role is None:
            raise ApiKeyInvalid("user", f"{owner.get_username()} is deactivated")
        if not scope_allowed_for(role, scope):
            raise ApiKeyInvalid(
                "scope", f"a {role.value} may have keys up to {ROLE_MAX_SCOPE[role]} scope"
            )


@transaction.atomic
def api_key_create(
    *,
    name: str,
    scope: str,
    user: AbstractBaseUser | None = None,
    expires_at: datetime | None = None,
    actor: Principal | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the raw key, which is never stored or shown again.

    Raises ``ApiKeyInvalid`` (naming the field) or ``ApiKeyForbidden`` when ``actor`` (None:
    the command line) may not make it (see ``_key_rules``)."""
    name = (name or "").strip()
    if not name:
        raise ApiKeyInvalid("name", "must not be empty")
    if len(name) > 200:
        raise ApiKeyInvalid("name", "at most 200 characters")
    if scope not in ApiKeyScope.values:
        raise ApiKeyInvalid("scope", f"must be one of {', '.join(ApiKeyScope.values)}")
    if expires_at is not None and timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at, UTC)
    if expires_at is not None and expires_at <= timezone.now():
        raise ApiKeyInvalid("expires_at", "must be in the future")
    _key_rules(actor=actor, owner=user, scope=scope)
    key = ApiKey(
        name=name,
        user=user,
        scope=scope,
        expires_at=expires_at,
        created_by=actor.user if actor is not None else None,
    )
    raw = api_key_new_secret(key)
    key.save()
    return key, raw


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor: Principal | None = None) -> bool:
    """Revoke ``key`` (False if it was revoked already). Members revoke their own keys, admins
    anyone's."""
    _key_rules(actor=actor, owner=key.user)
    revoked = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    key.refresh_from_db(fields=["revoked_at"])
    return bool(revoked)


def api_key_mark_used(*, key: ApiKey, now: datetime | None = None) -> None:
    now = now or timezone.now()
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    key.last_used_at = now


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


def _config_check(
    config: dict[str, Any], user: AbstractBaseUser | None, admin: bool | None
) -> dict[str, Any]:
    """The validated definition. Custom code needs an admin: ``admin`` says whether the caller
    acts as one (an API key: its scope and its user's role); None judges ``user``'s role."""
    from django.core.exceptions import PermissionDenied

    from evalhub.evaluators.definition import CodeConfig, config_parse

    parsed = config_parse(config)
    is_admin = user_is_admin(user) if admin is None else admin
    if isinstance(parsed, CodeConfig) and parsed.check == "custom" and not is_admin:
        raise PermissionDenied("only admins can create or change custom code evaluators")
    if (
        getattr(parsed, "provider_id", None) is not None
        and not Provider.objects.filter(
            pk=parsed.provider_id  # type: ignore[union-attr]
        ).exists()
    ):
        raise ValueError(f"provider_id: no provider #{parsed.provider_id}")  # type: ignore[union-attr]
    return parsed.model_dump(mode="json")


# The rules a definition passes before it becomes a version (the alignment workspace checks a
# draft with them before running it).
evaluator_config_check = _config_check


@transaction.atomic
def evaluator_create(
    *,
    name: str,
    config: dict[str, Any],
    description: str = "",
    user: AbstractBaseUser | None = None,
    template_key: str = "",
    admin: bool | None = None,
) -> Evaluator:
    """A new evaluator with ``config`` as its version 1. Raises ``EvaluatorConfigError`` or
    ``ValueError`` naming the field, ``PermissionDenied`` for custom code by a non-admin (see
    ``_config_check`` for ``admin``)."""
    name = name.strip()
    if not _EVALUATOR_NAME.match(name):
        raise ValueError(
            "name: letters, digits, '_', '-' and '.', starting with a letter or digit (≤100)"
        )
    if Evaluator.objects.filter(name=name).exists():
        raise ValueError(f"name: an evaluator named {name!r} exists")
    cleaned = _config_check(config, user, admin)
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
    admin: bool | None = None,
) -> EvaluatorVersion:
    """Change the description and/or the definition; a changed definition is a new version
    (the kind stays). Returns the latest version."""
    Evaluator.objects.select_for_update().get(pk=evaluator.pk)  # one editor at a time
    latest = evaluator.versions.order_by("-number").first()
    assert latest is not None
    if description is not None:
        evaluator.description = description.strip()
    if config is not None:
        cleaned = _config_check(config, user, admin)
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
    from evalhub.evaluators.library import template_get

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


class EvaluatorInUse(Exception):
    """An evaluator that tasks still use cannot be deleted."""


@transaction.atomic
def evaluator_delete(*, evaluator: Evaluator) -> None:
    """Removes the evaluator and its versions; results already recorded stay. Raises
    ``EvaluatorInUse`` (nothing deleted) while tasks use it."""
    from evalhub.tasks.models import Task

    tasks = list(
        Task.objects.filter(task_evaluators__evaluator=evaluator)
        .order_by("name")
        .values_list("name", flat=True)
        .distinct()
    )
    if tasks:
        raise EvaluatorInUse(
            f"{evaluator.name} is used by the task{'s' if len(tasks) > 1 else ''} "
            f"{', '.join(tasks)}: remove it from them first"
        )
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
    from annotations.store.services import AnnotationInput, annotations_upsert

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
    from evalhub.providers.crypto import secret_rotate

    providers = list(Provider.objects.select_for_update().exclude(api_key_encrypted=""))
    for provider in providers:
        provider.api_key_encrypted = secret_rotate(provider.api_key_encrypted)
    Provider.objects.bulk_update(providers, ["api_key_encrypted"])
    return len(providers)


# --- people and their roles -------------------------------------------------------------------


class UserInvalid(ValueError):
    """A person that cannot be created or changed as asked; ``field`` names the input."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class SetPasswordLink:
    """A one-time link to choose a password: valid until used (a new password voids it) or
    ``settings.PASSWORD_RESET_TIMEOUT`` passes."""

    path: str


def set_password_link(*, user: AbstractBaseUser) -> SetPasswordLink:
    from django.contrib.auth.tokens import default_token_generator
    from django.urls import reverse
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)  # type: ignore[arg-type]
    return SetPasswordLink(reverse("set-password", kwargs={"uidb64": uidb64, "token": token}))


def _active_admins_except(user: AbstractBaseUser) -> int:
    from django.contrib.auth import get_user_model

    from evalhub.identity.roles import ANNOTATOR_GROUP

    others = get_user_model()._default_manager.filter(is_active=True).exclude(pk=user.pk)
    return (
        others.filter(is_superuser=True).count()
        + others.filter(is_superuser=False, is_staff=True)
        .exclude(groups__name=ANNOTATOR_GROUP)
        .count()
    )


def _lock_admins() -> None:
    """Lock the admins' rows, so two concurrent demotions cannot both see another admin."""
    from django.contrib.auth import get_user_model

    admins = get_user_model()._default_manager.filter(
        models.Q(is_staff=True) | models.Q(is_superuser=True)
    )
    list(admins.select_for_update().values_list("pk", flat=True))


def _set_role(user: AbstractBaseUser, role: Role) -> None:
    from evalhub.identity.roles import annotator_role_grant, annotator_role_revoke

    user.is_staff = role == Role.ADMIN  # type: ignore[attr-defined]
    if role != Role.ADMIN:
        user.is_superuser = False  # type: ignore[attr-defined]
    user.save(update_fields=["is_staff", "is_superuser"])
    if role == Role.ANNOTATOR:
        annotator_role_grant(user=user)
    else:
        annotator_role_revoke(user=user)


@transaction.atomic
def user_create(
    *, username: str, role: str, email: str = "", password: str | None = None
) -> tuple[AbstractBaseUser, SetPasswordLink | None]:
    """A new active person with ``role``. With ``password`` they can log in at once; without,
    the returned one-time link lets them choose one. Raises ``UserInvalid``."""
    from django.contrib.auth import get_user_model, password_validation
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    user_model = get_user_model()
    username = (username or "").strip()
    if not username:
        raise UserInvalid("username", "must not be empty")
    try:
        user_model.username_validator(username)  # type: ignore[attr-defined]
    except ValidationError as exc:
        raise UserInvalid("username", " ".join(exc.messages)) from None
    if len(username) > 150:
        raise UserInvalid("username", "at most 150 characters")
    if user_model._default_manager.filter(username__iexact=username).exists():
        raise UserInvalid("username", f"{username!r} is taken")
    email = (email or "").strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise UserInvalid("email", "is not an email address") from None
    try:
        chosen_role = Role(role)
    except ValueError:
        raise UserInvalid("role", f"must be one of {', '.join(Role)}") from None
    user = user_model(username=username, email=email)
    if password:
        try:
            password_validation.validate_password(password, user)
        except ValidationError as exc:
            raise UserInvalid("password", " ".join(exc.messages)) from None
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    _set_role(user, chosen_role)
    return user, None if password else set_password_link(user=user)


@transaction.atomic
def user_role_change(*, user: AbstractBaseUser, role: str, actor: AbstractBaseUser) -> None:
    """Give ``user`` ``role``. The last active admin stays one; an admin does not demote
    themselves (another admin does). Raises ``UserInvalid``."""
    _lock_admins()
    try:
        new_role = Role(role)
    except ValueError:
        raise UserInvalid("role", f"must be one of {', '.join(Role)}") from None
    if new_role != Role.ADMIN and user_role(user) == Role.ADMIN:
        if user.pk == actor.pk:
            raise UserInvalid("role", "you cannot take your own admin role; ask another admin")
        if user.is_active and _active_admins_except(user) == 0:  # type: ignore[attr-defined]
            raise UserInvalid("role", "EvalHub needs at least one active admin")
    _set_role(user, new_role)


@transaction.atomic
def user_active_set(*, user: AbstractBaseUser, active: bool, actor: AbstractBaseUser) -> None:
    """Deactivate (they can no longer log in, their sessions end and their API keys stop
    working) or reactivate ``user``. Not oneself, not the last active admin."""
    _lock_admins()
    if not active:
        if user.pk == actor.pk:
            raise UserInvalid("is_active", "you cannot deactivate yourself")
        if user_role(user) == Role.ADMIN and _active_admins_except(user) == 0:
            raise UserInvalid("is_active", "EvalHub needs at least one active admin")
    user.is_active = active  # type: ignore[attr-defined]
    user.save(update_fields=["is_active"])
