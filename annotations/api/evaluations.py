"""``/v1/evaluations``: the legacy Phoenix client's evaluations (``px.Client().log_evaluations``
and ``get_evaluations``), Arrow IPC in and out, on the annotation store
(``annotations.api.legacy_evaluations`` has the format)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router
from ninja.errors import HttpError

from annotations.api.legacy_evaluations import (
    EvaluationsBodyError,
    evaluations_read,
    evaluations_streams,
)
from annotations.store.services import (
    AnnotationInputError,
    AnnotationTargetNotFound,
    annotations_upsert,
)
from evalhub.identity.auth import request_user
from tracing.api.mutations import project_from_path
from tracing.store.services import DEFAULT_PROJECT

router = Router(tags=["evaluations"])

ARROW = "application/x-pandas-arrow"


@router.post("/evaluations", response={204: None})
def evaluations_log(request: HttpRequest) -> HttpResponse:
    """Store one set of legacy evaluations (``SpanEvaluations``, ``TraceEvaluations`` or
    ``DocumentEvaluations`` as an Arrow IPC stream) as machine results named ``eval_name``;
    all or nothing. Spans and traces are found in any project; unknown ones fail the request
    (404) and name them."""
    try:
        evaluations = evaluations_read(request.body)
    except EvaluationsBodyError as exc:
        raise HttpError(422, f"body: {exc}") from None
    try:
        annotations_upsert(items=evaluations.items, user=request_user(request))
    except AnnotationTargetNotFound as exc:
        raise HttpError(404, str(exc)) from None
    except AnnotationInputError as exc:
        raise HttpError(422, f"row {exc.index}: {exc.field} {exc.message}") from None
    return HttpResponse(status=204)


@router.get("/evaluations", response={200: None, 404: None})
def evaluations_get(request: HttpRequest, project_name: str | None = None) -> HttpResponse:
    """The project's machine results as legacy evaluations: Arrow IPC streams one after the
    other, one per kind and name; 404 when there are none (the client then returns [])."""
    project = project_from_path(project_name or DEFAULT_PROJECT)
    body = b"".join(evaluations_streams(project=project))
    if not body:
        raise HttpError(404, f"no evaluations in project {project.name!r}")
    return HttpResponse(body, content_type=ARROW)
