"""The REST API under /v1: one NinjaAPI, API-key auth, JSON errors with a ``detail``."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

import evalhub.core.converters  # noqa: F401  (registers the <name:…> path converter)
from evalhub.core.fields import FieldInvalid
from evalhub.core.json_input import JsonInputError, JsonInputParser
from evalhub.core.phoenix_version import PHOENIX_COMPATIBLE_VERSION
from evalhub.identity import policy
from evalhub.identity.auth import ApiKeyAuth

api = NinjaAPI(
    title="EvalHub API",
    version="1",
    auth=ApiKeyAuth(),
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
    parser=JsonInputParser(),
)


def _validation_detail(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors:
        loc = [
            str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "payload")
        ]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


@api.exception_handler(ValidationError)
def _on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return api.create_response(
        request, {"detail": _validation_detail(exc), "errors": exc.errors}, status=422
    )


@api.exception_handler(AuthenticationError)
def _on_auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    # AccessMiddleware answers every refusal first; this only runs if it did not run.
    return api.create_response(
        request,
        {"detail": "missing or invalid API key (send 'Authorization: Bearer <key>')"},
        status=401,
    )


@api.exception_handler(HttpError)
def _on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # A body that is not storable JSON: say where, not just "Cannot parse request body".
    cause = exc.__cause__
    detail = str(cause) if isinstance(cause, JsonInputError) else str(exc)
    return api.create_response(request, {"detail": detail}, status=exc.status_code)


@api.exception_handler(FieldInvalid)
def _on_field_invalid(request: HttpRequest, exc: FieldInvalid) -> HttpResponse:
    # The one "this field is wrong": a 400 whose detail starts with the field's name.
    return api.create_response(request, {"detail": str(exc)}, status=400)


@api.get("/healthz", auth=None, include_in_schema=False)
def healthz(request: HttpRequest) -> dict[str, str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"status": "ok"}


@api.get("/arize_phoenix_version", auth=None, include_in_schema=False)
def arize_phoenix_version(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PHOENIX_COMPATIBLE_VERSION, content_type="text/plain")


def _register_routers() -> None:
    from annotations.api.annotations import router as annotations_router
    from annotations.api.batch import router as annotations_batch_router
    from annotations.api.evaluations import router as evaluations_router
    from annotations.datasets.api import router as datasets_router
    from annotations.datasets.api_versions import router as dataset_versions_router
    from annotations.queues.api import router as annotation_queues_router
    from annotations.rubrics.api import router as annotation_configs_router
    from evalhub.alignment.api import router as alignment_router
    from evalhub.budgets.api import router as budgets_router
    from evalhub.calibration.api import router as calibration_router
    from evalhub.evaluators.api import router as hub_router
    from evalhub.experiments.api import router as experiments_router
    from evalhub.experiments.api_prompts import router as prompts_router
    from evalhub.identity.api import router as api_keys_router
    from evalhub.monitors.api import router as monitors_router
    from evalhub.shadow.api import router as shadow_router
    from evalhub.tasks.api import router as tasks_router
    from tracing.api.mutations import router as mutations_router
    from tracing.api.sessions import router as sessions_router
    from tracing.api.spans import router as tracing_router

    api.add_router("/v1", tracing_router)
    api.add_router("/v1", mutations_router)
    api.add_router("/v1", sessions_router)
    api.add_router("/v1", annotations_router)
    api.add_router("/v1", annotations_batch_router)
    api.add_router("/v1", evaluations_router)
    api.add_router("/v1", annotation_configs_router)
    api.add_router("/v1", annotation_queues_router)
    # Before datasets_router: /datasets/upload is not a dataset's name.
    api.add_router("/v1", dataset_versions_router)
    api.add_router("/v1", datasets_router)
    api.add_router("/v1", experiments_router)
    api.add_router("/v1", prompts_router)
    api.add_router("/v1", hub_router)
    api.add_router("/v1", tasks_router)
    api.add_router("/v1", api_keys_router)
    api.add_router("/v1", monitors_router)
    api.add_router("/v1", calibration_router)
    api.add_router("/v1", alignment_router)
    api.add_router("/v1", shadow_router)
    api.add_router("/v1", budgets_router)


_register_routers()
policy.api_register(api)  # the route table finds every operation's need
