"""Writes for API keys, LLM providers, evaluators and their recorded results."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth.models import User
from django.db import models, transaction
from django.utils import timezone

from evalhub.identity.access import (
    ROLE_MAX_SCOPE,
    Need,
    Principal,
    Role,
    refusal,
    scope_allowed_for,
    user_role,
)
from evalhub.identity.models import ApiKey, ApiKeyScope

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


def _key_rules(*, actor: Principal | None, owner: User | None, scope: str | None = None) -> None:
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
    user: User | None = None,
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


def set_password_link(*, user: User) -> SetPasswordLink:
    from django.contrib.auth.tokens import default_token_generator
    from django.urls import reverse
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return SetPasswordLink(reverse("set-password", kwargs={"uidb64": uidb64, "token": token}))


def _active_admins_except(user: User) -> int:
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


def _set_role(user: User, role: Role) -> None:
    from evalhub.identity.roles import annotator_role_grant, annotator_role_revoke

    user.is_staff = role == Role.ADMIN
    if role != Role.ADMIN:
        user.is_superuser = False
    user.save(update_fields=["is_staff", "is_superuser"])
    if role == Role.ANNOTATOR:
        annotator_role_grant(user=user)
    else:
        annotator_role_revoke(user=user)


@transaction.atomic
def user_create(
    *, username: str, role: str, email: str = "", password: str | None = None
) -> tuple[User, SetPasswordLink | None]:
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
        user_model.username_validator(username)
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
def user_role_change(*, user: User, role: str, actor: User) -> None:
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
        if user.is_active and _active_admins_except(user) == 0:
            raise UserInvalid("role", "EvalHub needs at least one active admin")
    _set_role(user, new_role)


@transaction.atomic
def user_active_set(*, user: User, active: bool, actor: User) -> None:
    """Deactivate (they can no longer log in, their sessions end and their API keys stop
    working) or reactivate ``user``. Not oneself, not the last active admin."""
    _lock_admins()
    if not active:
        if user.pk == actor.pk:
            raise UserInvalid("is_active", "you cannot deactivate yourself")
        if user_role(user) == Role.ADMIN and _active_admins_except(user) == 0:
            raise UserInvalid("is_active", "EvalHub needs at least one active admin")
    user.is_active = active
    user.save(update_fields=["is_active"])
