"""REST routes for the evaluator hub (``/v1/providers``, ``/v1/evaluators``,
``/v1/evaluator-templates``). A provider's API key is write-only: no response carries it."""

from __future__ import annotations

from typing import Any, Literal

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import SecretStr

from evalhub.evaluators.definition import EvaluatorConfigError
from evalhub.evaluators.library import TEMPLATES
from evalhub.evaluators.models import Evaluator
from evalhub.evaluators.running import evaluator_run
from evalhub.evaluators.selectors import (
    evaluator_get,
    evaluator_list,
    evaluator_version_get,
    evaluator_version_latest,
)
from evalhub.evaluators.services import (
    EvaluatorInUse,
    evaluator_create,
    evaluator_create_from_template,
    evaluator_delete,
    evaluator_update,
)
from evalhub.identity.auth import request_principal, request_user
from evalhub.providers.models import Provider
from evalhub.providers.selectors import provider_list
from evalhub.providers.services import (
    provider_create,
    provider_delete,
    provider_test_connection,
    provider_update,
)
from tracing.models import Span

router = Router(tags=["evaluators"])


def _acts_as_admin(request: HttpRequest) -> bool:
    """Whether the caller may write custom code: an admin, or a key with admin power."""
    return request_principal(request).is_admin


# --- providers --------------------------------------------------------------------------------


class ProviderOut(Schema):
    id: int
    name: str
    kind: str
    base_url: str
    api_version: str
    default_model: str
    max_concurrency: int
    requests_per_minute: int
    timeout_seconds: float
    is_default: bool
    has_api_key: bool
    api_key_hint: str


class ProviderIn(Schema):
    name: str
    kind: Literal["openai", "azure", "compatible"]
    default_model: str
    # SecretStr: the key shows as ****** in reprs and error reports.
    api_key: SecretStr = Field(
        SecretStr(""), description="Write-only; stored encrypted, never returned."
    )
    base_url: str = ""
    api_version: str = ""
    max_concurrency: int = 4
    requests_per_minute: int = 60
    timeout_seconds: float = 60.0
    is_default: bool = False


class ProviderPatch(Schema):
    name: str | None = None
    kind: Literal["openai", "azure", "compatible"] | None = None
    default_model: str | None = None
    api_key: SecretStr | None = Field(None, description="Write-only; omit to keep the stored key.")
    base_url: str | None = None
    api_version: str | None = None
    max_concurrency: int | None = None
    requests_per_minute: int | None = None
    timeout_seconds: float | None = None
    is_default: bool | None = None


class ProviderListOut(Schema):
    data: list[ProviderOut]


class ConnectionTestOut(Schema):
    ok: bool
    answer: str | None
    error: str | None
    model: str
    latency_ms: float | None


def _provider(provider_id: int) -> Provider:
    provider = Provider.objects.filter(pk=provider_id).first()
    if provider is None:
        raise HttpError(404, f"no provider #{provider_id}")
    return provider


@router.get("/providers", response=ProviderListOut)
def providers_list(request: HttpRequest) -> dict[str, Any]:
    return {"data": list(provider_list())}


@router.post("/providers", response={201: ProviderOut})
def providers_create(request: HttpRequest, body: ProviderIn) -> Status:
    try:
        data = body.dict() | {"api_key": body.api_key.get_secret_value()}
        return Status(201, provider_create(**data))
    except ValueError as exc:
        raise HttpError(422, str(exc)) from None


@router.get("/providers/{provider_id}", response=ProviderOut)
def providers_get(request: HttpRequest, provider_id: int) -> Provider:
    return _provider(provider_id)


@router.patch("/providers/{provider_id}", response=ProviderOut)
def providers_update(request: HttpRequest, provider_id: int, body: ProviderPatch) -> Provider:
    try:
        data = body.dict()
        data["api_key"] = body.api_key.get_secret_value() if body.api_key is not None else None
        return provider_update(provider=_provider(provider_id), **data)
    except ValueError as exc:
        raise HttpError(422, str(exc)) from None


@router.delete("/providers/{provider_id}", response={204: None})
def providers_delete(request: HttpRequest, provider_id: int) -> Status:
    provider_delete(provider=_provider(provider_id))
    return Status(204, None)


@router.post("/providers/{provider_id}/test", response=ConnectionTestOut)
def providers_test(request: HttpRequest, provider_id: int) -> Any:
    return provider_test_connection(provider=_provider(provider_id))


# --- evaluators -------------------------------------------------------------------------------


class EvaluatorOut(Schema):
    id: int
    name: str
    annotation_name: str
    description: str
    kind: str
    template_key: str
    version: int
    config: dict[str, Any]


class EvaluatorIn(Schema):
    name: str | None = None
    description: str = ""
    config: dict[str, Any] | None = Field(None, description="The definition (kind LLM or CODE)")
    template: str | None = Field(None, description="Copy this library template instead")


class EvaluatorPatch(Schema):
    description: str | None = None
    config: dict[str, Any] | None = Field(None, description="A changed definition adds a version")


class VersionOut(Schema):
    number: int
    config: dict[str, Any]
    created_at: Any


class EvaluatorListOut(Schema):
    data: list[EvaluatorOut]


class VersionListOut(Schema):
    data: list[VersionOut]


class RunIn(Schema):
    span_id: str | None = None
    values: dict[str, Any] | None = None
    version: int | None = Field(None, description="Default: the latest")


class TemplateOut(Schema):
    key: str
    title: str
    description: str
    config: dict[str, Any]


class TemplateListOut(Schema):
    data: list[TemplateOut]


def _out(evaluator: Evaluator) -> dict[str, Any]:
    version = evaluator_version_latest(evaluator=evaluator)
    return {
        "id": evaluator.pk,
        "name": evaluator.name,
        "annotation_name": evaluator.annotation_name,
        "description": evaluator.description,
        "kind": evaluator.kind,
        "template_key": evaluator.template_key,
        "version": version.number,
        "config": version.config,
    }


def _evaluator(ident: str) -> Evaluator:
    evaluator = evaluator_get(ident)
    if evaluator is None:
        raise HttpError(404, f"no evaluator {ident!r}")
    return evaluator


@router.get("/evaluator-templates", response=TemplateListOut)
def templates_list(request: HttpRequest) -> dict[str, Any]:
    return {
        "data": [
            {"key": t.key, "title": t.title, "description": t.description, "config": t.config()}
            for t in TEMPLATES
        ]
    }


@router.get("/evaluators", response=EvaluatorListOut)
def evaluators_list(request: HttpRequest, kind: str | None = None) -> dict[str, Any]:
    return {"data": [_out(e) for e in evaluator_list(kind=kind)]}


@router.post("/evaluators", response={201: EvaluatorOut})
def evaluators_create(request: HttpRequest, body: EvaluatorIn) -> Status:
    user = request_user(request)
    try:
        if body.template:
            evaluator = evaluator_create_from_template(key=body.template, name=body.name, user=user)
        elif body.config is not None and body.name:
            evaluator = evaluator_create(
                name=body.name,
                config=body.config,
                description=body.description,
                user=user,
                admin=_acts_as_admin(request),
            )
        else:
            raise HttpError(422, "give name and config, or template")
    except PermissionDenied as exc:
        raise HttpError(403, str(exc)) from None
    except KeyError as exc:
        raise HttpError(422, str(exc.args[0])) from None
    except (ValueError, EvaluatorConfigError) as exc:
        raise HttpError(422, str(exc)) from None
    return Status(201, _out(evaluator))


@router.get("/evaluators/{name:ident}", response=EvaluatorOut)
def evaluators_get(request: HttpRequest, ident: str) -> dict[str, Any]:
    return _out(_evaluator(ident))


@router.patch("/evaluators/{name:ident}", response=EvaluatorOut)
def evaluators_update(request: HttpRequest, ident: str, body: EvaluatorPatch) -> dict[str, Any]:
    evaluator = _evaluator(ident)
    try:
        evaluator_update(
            evaluator=evaluator,
            user=request_user(request),
            description=body.description,
            config=body.config,
            admin=_acts_as_admin(request),
        )
    except PermissionDenied as exc:
        raise HttpError(403, str(exc)) from None
    except ValueError as exc:
        raise HttpError(422, str(exc)) from None
    return _out(evaluator)


@router.delete("/evaluators/{name:ident}", response={204: None})
def evaluators_delete(request: HttpRequest, ident: str) -> Status:
    try:
        evaluator_delete(evaluator=_evaluator(ident))
    except EvaluatorInUse as exc:
        raise HttpError(409, str(exc)) from None
    return Status(204, None)


@router.get("/evaluators/{name:ident}/versions", response=VersionListOut)
def evaluators_versions(request: HttpRequest, ident: str) -> dict[str, Any]:
    return {"data": list(_evaluator(ident).versions.order_by("-number"))}


@router.post("/evaluators/{name:ident}/run")
def evaluators_run(request: HttpRequest, ident: str, body: RunIn) -> dict[str, Any]:
    """The playground: evaluate a span or pasted values; nothing is written."""
    evaluator = _evaluator(ident)
    if body.version is not None:
        version = evaluator_version_get(evaluator=evaluator, number=body.version)
        if version is None:
            raise HttpError(404, f"{evaluator.name} has no version {body.version}")
    else:
        version = evaluator_version_latest(evaluator=evaluator)
    span = None
    if body.span_id:
        span = Span.objects.filter(span_id=body.span_id).first()
        if span is None:
            raise HttpError(404, f"no span {body.span_id}")
    elif not body.values:
        raise HttpError(422, "give span_id or values")
    return evaluator_run(version=version, span=span, values=body.values).as_dict()
