"""Evaluators: create, update (a new version), create from a template, delete."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotations.models import Annotation, AnnotationSource, AnnotatorKind, TargetKind
from evalhub.evaluators.models import Evaluator, EvaluatorKind, EvaluatorVersion
from evalhub.identity.access import (
    user_is_admin,
)
from evalhub.providers.models import Provider
from tracing.models import Span

if TYPE_CHECKING:
    from evalhub.evaluators.running import EvaluationResult


# --- the evaluator hub: providers, evaluators, recorded results -------------------------------

_EVALUATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


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
