"""Annotation configs (rubrics): create, update, delete, enable per project."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any, TypedDict, Unpack

from django.db import transaction
from django.utils import timezone

from annotations.models import (
    AnnotationConfig,
    AnnotationConfigKind,
    OptimizationDirection,
    ProjectAnnotationConfig,
)
from annotations.store.services import MAX_LABEL_LENGTH, MAX_NAME_LENGTH
from evalhub.core.fields import FieldInvalid, NameTaken, name_free, save_named
from tracing.models import Project

# --- annotation configs (rubrics) ---------------------------------------------------------------

RESERVED_CONFIG_NAMES = frozenset({"note"})  # Phoenix keeps "note" for span notes


class AnnotationConfigInvalid(FieldInvalid):
    """A config that cannot be stored."""


class AnnotationConfigNameTaken(NameTaken):
    noun = "annotation config"


@dataclass(frozen=True, slots=True)
class _CleanedConfig:
    name: str
    kind: str
    description: str
    optimization_direction: str
    values: list[dict[str, Any]]
    lower_bound: float | None
    upper_bound: float | None


def _number(field_name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise AnnotationConfigInvalid(field=field_name, message="must be a finite number")
    return float(value)


class RubricFields(TypedDict, total=False):
    """A rubric's fields besides its name and kind, as the services below take them (each may
    be left out: no description, no direction, no values, no bounds)."""

    description: str | None
    optimization_direction: str | None
    values: Sequence[Mapping[str, Any]] | None
    lower_bound: float | None
    upper_bound: float | None


def _clean_config(*, name: str, kind: str, **fields: Unpack[RubricFields]) -> _CleanedConfig:
    description = fields.get("description")
    optimization_direction = fields.get("optimization_direction")
    values = fields.get("values")
    lower_bound, upper_bound = fields.get("lower_bound"), fields.get("upper_bound")

    def fail(field_name: str, message: str) -> AnnotationConfigInvalid:
        return AnnotationConfigInvalid(field=field_name, message=message)

    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise fail("name", "must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise fail("name", f"is longer than {MAX_NAME_LENGTH} characters")
    if name in RESERVED_CONFIG_NAMES:
        raise fail("name", f"{name!r} is reserved")
    if kind not in AnnotationConfigKind.values:
        raise fail(
            "type", f"must be one of {', '.join(AnnotationConfigKind.values)} (got {kind!r})"
        )
    direction = optimization_direction or OptimizationDirection.NONE
    if direction not in OptimizationDirection.values:
        raise fail(
            "optimization_direction",
            f"must be one of {', '.join(OptimizationDirection.values)} (got {direction!r})",
        )
    cleaned_values: list[dict[str, Any]] = []
    if kind == AnnotationConfigKind.CATEGORICAL:
        if not values:
            raise fail("values", "a CATEGORICAL config needs at least one value")
        seen: set[str] = set()
        for index, value in enumerate(values):
            label = value.get("label") if isinstance(value, Mapping) else None
            label = label.strip() if isinstance(label, str) else ""
            if not label:
                raise fail(f"values[{index}].label", "must not be empty")
            if len(label) > MAX_LABEL_LENGTH:
                raise fail(
                    f"values[{index}].label", f"is longer than {MAX_LABEL_LENGTH} characters"
                )
            if label in seen:
                raise fail(f"values[{index}].label", f"{label!r} appears more than once")
            seen.add(label)
            score = _number(f"values[{index}].score", value.get("score"))
            cleaned_values.append({"label": label, "score": score})
    elif values:
        raise fail("values", f"only a CATEGORICAL config has values (this one is {kind})")
    lower = _number("lower_bound", lower_bound)
    upper = _number("upper_bound", upper_bound)
    if kind == AnnotationConfigKind.CATEGORICAL and (lower is not None or upper is not None):
        raise fail("lower_bound", "a CATEGORICAL config has no bounds")
    if lower is not None and upper is not None and lower >= upper:
        raise fail("lower_bound", f"must be less than upper_bound ({lower} >= {upper})")
    return _CleanedConfig(
        name=name,
        kind=kind,
        description=description or "",
        optimization_direction=direction,
        values=cleaned_values,
        lower_bound=lower,
        upper_bound=upper,
    )


def _save_config(config: AnnotationConfig, cleaned: _CleanedConfig) -> AnnotationConfig:
    name_free(AnnotationConfig, cleaned.name, pk=config.pk, taken=AnnotationConfigNameTaken)
    for attr in _CleanedConfig.__slots__:
        setattr(config, attr, getattr(cleaned, attr))
    config.updated_at = timezone.now()
    save_named(config, taken=AnnotationConfigNameTaken)
    return config


@transaction.atomic
def annotation_config_create(
    *, name: str, kind: str, **fields: Unpack[RubricFields]
) -> AnnotationConfig:
    """Create a rubric. Raises ``AnnotationConfigInvalid`` (a ``ValueError`` naming the field)
    for a bad kind, direction, name, values or bounds, and ``AnnotationConfigNameTaken``."""
    return _save_config(AnnotationConfig(), _clean_config(name=name, kind=kind, **fields))


@transaction.atomic
def annotation_config_update(
    *, config: AnnotationConfig, name: str, kind: str, **fields: Unpack[RubricFields]
) -> AnnotationConfig:
    """Replace every field of ``config`` (as a PUT does), validated as on create."""
    return _save_config(config, _clean_config(name=name, kind=kind, **fields))


@transaction.atomic
def annotation_config_delete(*, config: AnnotationConfig) -> None:
    """Delete a rubric and its enablement in every project; annotations stay."""
    config.delete()


@transaction.atomic
def project_annotation_config_enable(*, project: Project, config: AnnotationConfig) -> bool:
    """Enable ``config`` for ``project``; False when it already was."""
    _, created = ProjectAnnotationConfig.objects.get_or_create(
        project=project, annotation_config=config
    )
    return created


@transaction.atomic
def project_annotation_config_disable(*, project: Project, config: AnnotationConfig) -> bool:
    """Disable ``config`` for ``project``; False when it was not enabled."""
    deleted, _ = ProjectAnnotationConfig.objects.filter(
        project=project, annotation_config=config
    ).delete()
    return deleted > 0


@transaction.atomic
def annotation_config_projects_set(
    *, config: AnnotationConfig, projects: Sequence[Project]
) -> None:
    """Enable ``config`` for exactly ``projects``: the others lose it, the new ones get it."""
    wanted = {project.pk for project in projects}
    ProjectAnnotationConfig.objects.filter(annotation_config=config).exclude(
        project_id__in=wanted
    ).delete()
    have = set(
        ProjectAnnotationConfig.objects.filter(annotation_config=config).values_list(
            "project_id", flat=True
        )
    )
    ProjectAnnotationConfig.objects.bulk_create(
        [
            ProjectAnnotationConfig(project_id=pk, annotation_config=config)
            for pk in sorted(wanted - have)
        ],
        ignore_conflicts=True,
    )


@transaction.atomic
def annotation_config_save(
    *,
    config: AnnotationConfig | None,
    projects: Sequence[Project],
    name: str,
    kind: str,
    **fields: Unpack[RubricFields],
) -> AnnotationConfig:
    """Create a rubric (``config`` None) or replace one, and enable it for exactly
    ``projects``; all or nothing. Raises as ``annotation_config_create`` does."""
    cleaned = _clean_config(name=name, kind=kind, **fields)
    saved = _save_config(config if config is not None else AnnotationConfig(), cleaned)
    annotation_config_projects_set(config=saved, projects=projects)
    return saved
