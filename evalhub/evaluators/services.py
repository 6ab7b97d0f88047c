"""Evaluators: create, update (a new version), create from a template, delete."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from evalhub.evaluators.models import Evaluator, EvaluatorVersion
from evalhub.identity.access import (
    user_is_admin,
)
from evalhub.providers.models import Provider

if TYPE_CHECKING:
    pass


# --- the evaluator hub: providers, evaluators, recorded results -------------------------------

_EVALUATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def evaluator_config_check(
    config: dict[str, Any], user: User | None, admin: bool | None
) -> dict[str, Any]:
    """The validated definition: the rules a definition passes before it becomes a version
    (the alignment workspace checks a draft with them too). Custom code needs an admin: ``admin`` says whether the caller
    acts as one (an API key: its scope and its user's role); None judges ``user``'s role."""
    from django.core.exceptions import PermissionDenied

    from evalhub.evaluators.definition import CodeConfig, LlmJudgeConfig, config_parse

    parsed = config_parse(config)
    is_admin = user_is_admin(user) if admin is None else admin
    if isinstance(parsed, CodeConfig) and parsed.check == "custom" and not is_admin:
        raise PermissionDenied("only admins can create or change custom code evaluators")
    provider_id = parsed.provider_id if isinstance(parsed, LlmJudgeConfig) else None
    if provider_id is not None and not Provider.objects.filter(pk=provider_id).exists():
        raise ValueError(f"provider_id: no provider #{provider_id}")
    return parsed.model_dump(mode="json")


@transaction.atomic
def evaluator_create(
    *,
    name: str,
    config: dict[str, Any],
    description: str = "",
    user: User | None = None,
    template_key: str = "",
    admin: bool | None = None,
) -> Evaluator:
    """A new evaluator with ``config`` as its version 1. Raises ``EvaluatorConfigError`` or
    ``ValueError`` naming the field, ``PermissionDenied`` for custom code by a non-admin (see
    ``evaluator_config_check`` for ``admin``)."""
    name = name.strip()
    if not _EVALUATOR_NAME.match(name):
        raise ValueError(
            "name: letters, digits, '_', '-' and '.', starting with a letter or digit (≤100)"
        )
    if Evaluator.objects.filter(name=name).exists():
        raise ValueError(f"name: an evaluator named {name!r} exists")
    cleaned = evaluator_config_check(config, user, admin)
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
    user: User | None = None,
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
        cleaned = evaluator_config_check(config, user, admin)
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
    user: User | None = None,
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
    # The tasks' rows that point here, by their relation's name: tasks sit above evaluators.
    tasks = list(
        evaluator.task_evaluators.order_by("task__name")
        .values_list("task__name", flat=True)
        .distinct()
    )
    if tasks:
        raise EvaluatorInUse(
            f"{evaluator.name} is used by the task{'s' if len(tasks) > 1 else ''} "
            f"{', '.join(tasks)}: remove it from them first"
        )
    evaluator.delete()
