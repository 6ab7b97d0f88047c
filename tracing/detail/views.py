"""Trace browser detail pages: a trace with its span tree and span pane, and a session.

Thin views: parse the URL, call one selector, render. The span pane is a partial of the trace
page: htmx requests for a span get the partial, other requests (a shared link, a reload) the
whole page with that span selected.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from annotations.store.selectors import annotate_panel_get
from evalhub.core.converters import name_segment
from evalhub.core.web import htmx_partial
from tracing.detail.presenter import session_detail_get, trace_detail_get
from tracing.detail.span_pane import SpanUrl, span_pane_get

TRACE_TEMPLATE = "tracing/trace_detail.html"
SESSION_TEMPLATE = "tracing/session_detail.html"


def _span_url(project: str, trace_id: str) -> SpanUrl:
    """Span links of one trace from a single ``reverse`` (a trace may have thousands)."""
    marker = "0span0"
    template = reverse(
        "detail:span_pane", kwargs={"project": project, "trace_id": trace_id, "span_id": marker}
    )
    prefix, _, suffix = template.rpartition(marker)
    return lambda span_id: f"{prefix}{name_segment(span_id)}{suffix}"


def _optional_url(name: str, **kwargs: str) -> str | None:
    """The list pages' URLs, while those pages may not be there yet."""
    try:
        return reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        return None


def _crumbs(project: str, list_name: str) -> dict[str, str | None]:
    return {
        "projects_url": _optional_url("tracing:projects"),
        f"{list_name}_url": _optional_url(f"tracing:{list_name}", project=project),
    }


def _highlight(request: HttpRequest) -> str:
    """``?result=<evaluator>``: the evaluator whose result the page highlights (a link from a
    task run's items)."""
    return request.GET.get("result", "")[:200]


def _trace_page(
    request: HttpRequest, project: str, trace_id: str, span_id: str | None
) -> HttpResponse:
    detail = trace_detail_get(
        project_name=project,
        trace_id=trace_id,
        span_id=span_id,
        span_url=_span_url(project, trace_id),
    )
    if detail is None:
        raise Http404("No such trace or span in this project.")
    return render(
        request,
        TRACE_TEMPLATE,
        {
            "project_name": project,
            "detail": detail,
            "pane": detail.selected,
            "annotate_trace": annotate_panel_get(target=detail.trace, user=request.user),
            "annotate_span": annotate_panel_get(target=detail.selected.span, user=request.user),
            "highlight": _highlight(request),
            **_crumbs(project, "traces"),
        },
    )


@login_required
@require_GET
def trace_detail(request: HttpRequest, project: str, trace_id: str) -> HttpResponse:
    """The trace page; ``?span=<span id>`` selects a span (default: the root)."""
    return _trace_page(request, project, trace_id, request.GET.get("span") or None)


@login_required
@require_GET
def span_detail(request: HttpRequest, project: str, trace_id: str, span_id: str) -> HttpResponse:
    """A span of a trace: the pane partial for htmx, else the trace page with it selected."""
    if not htmx_partial(request):
        return _trace_page(request, project, trace_id, span_id)
    pane = span_pane_get(
        project_name=project,
        trace_id=trace_id,
        span_id=span_id,
        span_url=_span_url(project, trace_id),
    )
    if pane is None:
        raise Http404("No such span in this trace.")
    return render(
        request,
        f"{TRACE_TEMPLATE}#span_pane",
        {
            "project_name": project,
            "pane": pane,
            "annotate_span": annotate_panel_get(target=pane.span, user=request.user),
            "highlight": _highlight(request),
        },
    )


@login_required
@require_GET
def session_detail(request: HttpRequest, project: str, session_id: str) -> HttpResponse:
    """A session as the turns of a conversation, each linking to its trace."""
    detail = session_detail_get(project_name=project, session_id=session_id)
    if detail is None:
        raise Http404("No such session in this project.")
    return render(
        request,
        SESSION_TEMPLATE,
        {
            "project_name": project,
            "detail": detail,
            "annotate_session": annotate_panel_get(target=detail.session, user=request.user),
            "highlight": _highlight(request),
            **_crumbs(project, "sessions"),
        },
    )
