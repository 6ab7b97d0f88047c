"""EvalHub's own 404 and 500 pages: the navigation bar, what was asked for and a way back.

``handler404`` names what was looked for from the URL's arguments (a trace, span or session id,
and the project) and, for a trace id stored in another project, links to it there. ``handler500``
renders the page with the request's context when it can and without it when that fails too (the
database may be what is down), so an error page never raises.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.template import loader
from django.urls import NoReverseMatch, reverse

logger = logging.getLogger(__name__)

# URL arguments that name what a page looks up, and how the 404 page calls them.
SEARCHED = {
    "trace_id": "trace",
    "span_id": "span",
    "session_id": "session",
    "ident": "evaluator",
    "queue_id": "queue",
    "item_id": "queue item",
    "task_id": "task",
    "run_id": "run",
    "pk": "dataset",
    "config_id": "annotation config",
    "provider_id": "AI provider",
    "user_id": "user",
    "key_id": "API key",
}


@dataclass(frozen=True, slots=True)
class Searched:
    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str


def _reverse(name: str, **kwargs: object) -> str | None:
    try:
        return reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        return None


def _not_found_context(request: HttpRequest) -> dict[str, object]:
    """What the 404 page says: what was searched, the project, and where to go instead."""
    from tracing.models import Project, Trace

    match = getattr(request, "resolver_match", None)
    kwargs = dict(match.kwargs) if match is not None else {}
    searched = [Searched(SEARCHED[name], str(kwargs[name])) for name in SEARCHED if name in kwargs]
    links: list[Link] = []
    project_name = kwargs.get("project")
    project_exists = False
    signed_in = request.user.is_authenticated
    if project_name is not None and signed_in:
        project_exists = Project.objects.filter(name=project_name).exists()
        if project_exists:
            url = _reverse("tracing:traces", project=project_name)
            if url:
                links.append(Link(f"Traces of {project_name}", url))
        trace_id = kwargs.get("trace_id")
        if trace_id:
            elsewhere = (
                Trace.objects.filter(trace_id=trace_id)
                .exclude(project__name=project_name)
                .select_related("project")
                .first()
            )
            if elsewhere is not None:
                url = _reverse("detail:trace", project=elsewhere.project.name, trace_id=trace_id)
                if url:
                    links.insert(0, Link(f"This trace in {elsewhere.project.name}", url))
    if signed_in:
        url = _reverse("tracing:projects")
        if url:
            links.append(Link("All projects", url))
    return {
        "searched": searched,
        "project_name": project_name,
        "project_exists": project_exists,
        "links": links,
        "request_path": request.path,
    }


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    context: dict[str, object] = {"exception": str(exception) if exception.args else ""}
    try:
        context.update(_not_found_context(request))
    except Exception:  # the page must render even when the lookup fails (database down)
        logger.exception("404 page: could not look up what was searched")
    template = loader.get_template("404.html")
    return HttpResponse(template.render(context, request), status=404)


def handler500(request: HttpRequest) -> HttpResponse:
    template = loader.get_template("500.html")
    try:
        body = template.render({"request_path": request.path}, request)
    except Exception:  # the context (navigation, the signed-in user) needs the database
        logger.exception("500 page: rendering with the request's context failed")
        body = template.render({"request_path": request.path, "bare": True})
    return HttpResponseServerError(body)
