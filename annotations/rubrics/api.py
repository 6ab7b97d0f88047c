"""Phoenix-compatible routes for annotation configs (rubrics) and their enablement per project
(``/v1``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.errors import HttpError

from annotations.models import AnnotationConfig, AnnotationConfigKind
from annotations.rubrics.selectors import (
    MAX_PAGE_SIZE,
    annotation_config_get,
    annotation_config_list,
)
from annotations.rubrics.services import (
    AnnotationConfigNameTaken,
    annotation_config_create,
    annotation_config_delete,
    annotation_config_update,
    project_annotation_config_disable,
    project_annotation_config_enable,
)
from evalhub.core.paging import Page, Pages, paged
from tracing.api.mutations import project_from_path

router = Router(tags=["annotation configs"])


class CategoricalValue(Schema):
    label: str
    score: float | None = None


class AnnotationConfigIn(Schema):
    type: str = Field(..., description="CATEGORICAL, CONTINUOUS or FREEFORM")
    name: str
    description: str | None = None
    optimization_direction: str | None = Field(
        None, description="MAXIMIZE, MINIMIZE or NONE (the default)"
    )
    values: list[CategoricalValue] | None = Field(
        None, description="CATEGORICAL only: the labels, each with an optional score"
    )
    lower_bound: float | None = None
    upper_bound: float | None = None


class AnnotationConfigOut(Schema):
    id: str
    type: str
    name: str
    description: str
    optimization_direction: str
    values: list[CategoricalValue] | None = None
    lower_bound: float | None = None
    upper_bound: float | None = None


class AnnotationConfigResponse(Schema):
    data: AnnotationConfigOut


def _config_out(config: AnnotationConfig) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(config.pk),
        "type": config.kind,
        "name": config.name,
        "description": config.description,
        "optimization_direction": config.optimization_direction,
    }
    if config.kind == AnnotationConfigKind.CATEGORICAL:
        out["values"] = config.values
    else:
        out["lower_bound"] = config.lower_bound
        out["upper_bound"] = config.upper_bound
    return out


def _config_from_path(identifier: str) -> AnnotationConfig:
    config = annotation_config_get(identifier)
    if config is None:
        raise HttpError(404, f"annotation config {identifier!r} not found")
    return config


def _fields(body: AnnotationConfigIn) -> dict[str, Any]:
    return {
        "name": body.name,
        "kind": body.type,
        "description": body.description,
        "optimization_direction": body.optimization_direction,
        "values": [v.model_dump() for v in body.values] if body.values is not None else None,
        "lower_bound": body.lower_bound,
        "upper_bound": body.upper_bound,
    }


def _pages(project: str | None) -> Pages:
    found = project_from_path(project) if project is not None else None

    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        page = annotation_config_list(project=found, cursor=cursor, limit=limit)
        return page.map(_config_out)

    return pages


# Phoenix's answer to a bad cursor (422).
_paged = paged(maximum=MAX_PAGE_SIZE, invalid_status=422)


@router.get("/annotation_configs", response=list[AnnotationConfigOut], exclude_unset=True)
@_paged
def annotation_configs_list(request: HttpRequest) -> Pages:
    """All annotation configs, newest first, a page at a time."""
    return _pages(None)


@router.post("/annotation_configs", response=AnnotationConfigResponse, exclude_unset=True)
def annotation_configs_create(request: HttpRequest, body: AnnotationConfigIn) -> dict[str, Any]:
    """Create an annotation config. 400 names the invalid field; 409 when the name is taken."""
    try:
        config = annotation_config_create(**_fields(body))
    except AnnotationConfigNameTaken as exc:
        raise HttpError(409, str(exc)) from None
    return {"data": _config_out(config)}


@router.get(
    "/annotation_configs/{name:config}", response=AnnotationConfigResponse, exclude_unset=True
)
def annotation_config_detail(request: HttpRequest, config: str) -> dict[str, Any]:
    """One annotation config, by id or name."""
    return {"data": _config_out(_config_from_path(config))}


@router.put(
    "/annotation_configs/{name:config}", response=AnnotationConfigResponse, exclude_unset=True
)
def annotation_config_replace(
    request: HttpRequest, config: str, body: AnnotationConfigIn
) -> dict[str, Any]:
    """Replace an annotation config (by id or name) with the body, validated as on create."""
    try:
        updated = annotation_config_update(config=_config_from_path(config), **_fields(body))
    except AnnotationConfigNameTaken as exc:
        raise HttpError(409, str(exc)) from None
    return {"data": _config_out(updated)}


@router.delete(
    "/annotation_configs/{name:config}", response=AnnotationConfigResponse, exclude_unset=True
)
def annotation_config_remove(request: HttpRequest, config: str) -> dict[str, Any]:
    """Delete an annotation config (by id or name) and disable it in every project; returns it.
    Annotations written under its name stay."""
    found = _config_from_path(config)
    out = _config_out(found)
    annotation_config_delete(config=found)
    return {"data": out}


@router.get(
    "/projects/{name:project}/annotation_configs",
    response=list[AnnotationConfigOut],
    exclude_unset=True,
)
@_paged
def project_annotation_configs_list(request: HttpRequest, project: str) -> Pages:
    """The annotation configs enabled for a project, newest first, a page at a time."""
    return _pages(project)


@router.post(
    "/projects/{name:project}/annotation_configs/{name:config}",
    response=AnnotationConfigResponse,
    exclude_unset=True,
    summary="Enable an annotation config for a project",
)
def project_annotation_config_add(
    request: HttpRequest, project: str, config: str
) -> dict[str, Any]:
    """``POST /v1/projects/{project}/annotation_configs/{config}`` enables the config (by id or
    name) for the project (by id or name); enabling it again changes nothing. Returns it."""
    found = _config_from_path(config)
    project_annotation_config_enable(project=project_from_path(project), config=found)
    return {"data": _config_out(found)}


@router.delete(
    "/projects/{name:project}/annotation_configs/{name:config}",
    response=AnnotationConfigResponse,
    exclude_unset=True,
    summary="Disable an annotation config for a project",
)
def project_annotation_config_remove(
    request: HttpRequest, project: str, config: str
) -> dict[str, Any]:
    """``DELETE /v1/projects/{project}/annotation_configs/{config}`` disables the config for the
    project; the config itself stays. Disabling one that is not enabled changes nothing."""
    found = _config_from_path(config)
    project_annotation_config_disable(project=project_from_path(project), config=found)
    return {"data": _config_out(found)}
