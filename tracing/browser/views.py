"""Trace browser pages: the projects' cards and a project's traces / spans / sessions tables.

Views parse the request, call selectors or services, render. A table's filters, sort, page size
and page are all in the URL; htmx swaps the ``#results`` partial and pushes the URL, so a view
can be shared, reloaded and navigated with back and forward.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from evalhub.core.streams import download_response
from evalhub.core.web import htmx_partial, next_or
from tracing.browser.filters import SpanFilterSet, with_default_range
from tracing.browser.forms import SORT_LABELS, ProjectsRangeForm, TableOptionsForm
from tracing.browser.project_tabs import project_tabs
from tracing.browser.projects import project_cards
from tracing.browser.selection import result_size, result_spans, selection_spans, span_ids_of
from tracing.browser.selectors import (
    PAGE_SIZES,
    browse_newer,
    browse_page,
    browse_spans,
    evaluation_names_recent,
    model_names_recent,
    project_has_rows,
)
from tracing.browser.services import spans_delete_result
from tracing.browser.tabs import TABS, Tab
from tracing.models import Project
from tracing.query import FilterError
from tracing.store.export import FORMATS, span_export_stream
from tracing.store.selectors import InvalidCursor
from tracing.store.services import spans_delete

TEMPLATE: Final = "tracing/project_list.html"
MAX_DELETE_SPANS: Final = 50_000
TAB_LABELS: Final = {"traces": "Traces", "spans": "Spans", "sessions": "Sessions"}


@login_required
@require_GET
def projects(request: HttpRequest) -> HttpResponse:
    """One card per project with its stats over the chosen time range."""
    form = ProjectsRangeForm(request.GET or None)
    start, end = form.window()
    context = {
        "form": form,
        "cards": project_cards(start=start, end=end),
        "window_start": start,
        "window_end": end,
        "selected_range": form.selected_range(),
        "ingest_url": request.build_absolute_uri(reverse("otlp-traces")),
    }
    template = "tracing/projects.html"
    return render(request, f"{template}#cards" if htmx_partial(request) else template, context)


@login_required
@require_GET
def project_home(request: HttpRequest, project: str) -> HttpResponse:
    get_object_or_404(Project, name=project)
    return redirect("tracing:traces", project=project)


def _filters(request: HttpRequest, project: Project, tab: Tab) -> SpanFilterSet:
    return SpanFilterSet(
        with_default_range(request.GET),
        queryset=browse_spans(project=project, tab=tab),
        project=project,
        tab=tab,
    )


@login_required
@require_GET
def project_browse(request: HttpRequest, project: str, tab: Tab) -> HttpResponse:
    """A project's traces (root spans; a trace is listed when any of its spans matches the
    filter), spans or sessions, filtered, sorted and paged."""
    if tab not in TABS:
        raise Http404("no such tab")
    project_row = get_object_or_404(Project, name=project)
    filters = _filters(request, project_row, tab)
    options = TableOptionsForm(request.GET).options()
    error = filters.filter_error
    partial = htmx_partial(request)

    if partial and options.newer:
        return _live_rows(request, project_row, tab, filters, options.newer)
    error_context = _error_context(request, error)
    if partial and error is not None:
        # Keep the table as it is (its last good result) and the URL too; show the error.
        response = render(
            request,
            f"{TEMPLATE}#filter-error",
            {**error_context, "oob": True, "kept_last_result": True},
        )
        response["HX-Reswap"] = "none"
        response["HX-Push-Url"] = "false"
        return response

    table = {
        "project": project_row,
        "tab": tab,
        "spans": filters.qs,
        "filtering": filters.is_filtering,
        "sort": options.sort,
        "descending": options.descending,
        "size": options.size,
        "window": filters.search_window,
        "expression": filters.expression() if error is None else "",
    }
    notice, first_page = "", not options.after and not options.before
    try:
        page = browse_page(**table, after=options.after, before=options.before)
    except InvalidCursor:
        notice, first_page = "That page link is out of date; this is the first page.", True
        page = browse_page(**table)
    context: dict[str, Any] = {
        "project": project_row,
        "tab": tab,
        "tab_label": TAB_LABELS[tab],
        "tabs": project_tabs(project_row.name),
        "filters": filters,
        "form": filters.form,
        **error_context,
        "expression": filters.expression(),
        "filtering": filters.is_filtering,
        "options": options,
        "sort_labels": SORT_LABELS,
        "page_sizes": PAGE_SIZES,
        "page": page,
        "notice": notice,
        "first_page": first_page,
        "live_allowed": options.sort == "start_time" and options.descending,
        "formats": list(FORMATS),
        "oob": partial,
        "ingest_url": request.build_absolute_uri(reverse("otlp-traces")),
    }
    context["project_has_rows"] = bool(page.rows) or project_has_rows(project=project_row, tab=tab)
    if partial:
        return render(request, f"{TEMPLATE}#results", context)
    context["model_names"] = model_names_recent(project=project_row)
    context["evaluation_names"] = evaluation_names_recent(project=project_row)
    return render(request, TEMPLATE, context)


def _error_context(request: HttpRequest, error: FilterError | None) -> dict[str, Any]:
    """The filter box's error with the text and a caret under the column it points at."""
    if error is None:
        return {"filter_error": None}
    text = request.GET.get("q", "")
    return {
        "filter_error": error,
        "filter_text": text,
        "filter_caret": " " * (min(error.position, len(text) + 1) - 1) + "^",
    }


def _live_rows(
    request: HttpRequest, project: Project, tab: Tab, filters: SpanFilterSet, newer: str
) -> HttpResponse:
    """Rows newer than the table's first row, for "live": added above the rows already shown
    (out of band), so scroll position and selection stay as they are."""
    if filters.filter_error is not None:
        return HttpResponse(status=204)
    try:
        page = browse_newer(
            project=project,
            tab=tab,
            spans=filters.qs,
            filtering=filters.is_filtering,
            newer_than=newer,
        )
    except InvalidCursor:
        return HttpResponseBadRequest("cursor is not valid", content_type="text/plain")
    context = {"project": project, "tab": tab, "page": page, "live_cursor": page.top_cursor}
    response = render(request, f"{TEMPLATE}#live-rows", context)
    response["HX-Reswap"] = "none"
    response["HX-Push-Url"] = "false"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def project_export(request: HttpRequest, project: str, tab: Tab) -> HttpResponseBase:
    """Spans as JSONL, CSV or Parquet: the selected rows (POST ``selected``) or the whole
    filtered result (GET with the table's query string). Traces and sessions export all their
    spans."""
    if tab not in TABS:
        raise Http404("no such tab")
    project_row = get_object_or_404(Project, name=project)
    params = request.POST if request.method == "POST" else request.GET
    export_format = params.get("format", "jsonl")
    if export_format not in FORMATS:
        return HttpResponseBadRequest(
            f"format must be one of {', '.join(FORMATS)}", content_type="text/plain"
        )
    if request.method == "POST":
        selected = request.POST.getlist("selected")
        if not selected:
            return HttpResponseBadRequest("select at least one row", content_type="text/plain")
        spans = selection_spans(project=project_row, tab=tab, keys=selected)
        scope = "selection"
    else:
        filters = _filters(request, project_row, tab)
        if filters.filter_error is not None:
            return HttpResponseBadRequest(
                f"filter: {filters.filter_error}", content_type="text/plain"
            )
        spans = result_spans(
            project=project_row, tab=tab, spans=filters.qs, filtering=filters.is_filtering
        )
        scope = tab
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    # Any project name: control characters, quotes and slashes become "_"; non-ASCII names
    # are sent as RFC 6266 ``filename*``.
    name = "".join(c if c.isprintable() and c not in '"\\/;' else "_" for c in project_row.name)
    return download_response(
        span_export_stream(spans, export_format=export_format),
        export_format=export_format,
        filename=f"{name}-{scope}-{stamp}",
    )


def _back(request: HttpRequest, project: Project, tab: Tab) -> str:
    return next_or(request, reverse(f"tracing:{tab}", kwargs={"project": project.name}))


@login_required
@require_http_methods(["GET", "POST"])
def project_delete(request: HttpRequest, project: str, tab: Tab) -> HttpResponse:
    """Delete rows' spans after a confirmation page: the selected rows (POST ``selected``), or
    the whole filtered result ("delete all matching": GET with the table's query string shows
    the confirmation, which posts ``scope=all`` back with the same filters)."""
    if tab not in TABS:
        raise Http404("no such tab")
    project_row = get_object_or_404(Project, name=project)
    if request.method == "GET" or request.POST.get("scope") == "all":
        return _delete_result(request, project_row, tab)
    selected = [key for key in request.POST.getlist("selected") if key]
    back = _back(request, project_row, tab)
    if not selected:
        messages.warning(request, "Select rows to delete first.")
        return redirect(back)
    span_ids = span_ids_of(
        selection_spans(project=project_row, tab=tab, keys=selected), limit=MAX_DELETE_SPANS
    )
    if len(span_ids) > MAX_DELETE_SPANS:
        messages.error(request, f"At most {MAX_DELETE_SPANS:,} spans can be deleted at once.")
        return redirect(back)
    if request.POST.get("confirmed") != "1":
        context = {
            "project": project_row,
            "tab": tab,
            "tab_label": TAB_LABELS[tab],
            "selected": selected,
            "span_count": len(span_ids),
            "next": back,
        }
        return render(request, "tracing/delete_confirm.html", context)
    deleted = spans_delete(span_ids=span_ids, project=project_row)
    messages.success(request, f"Deleted {_rows(len(selected), tab)} ({deleted:,} spans).")
    return redirect(back)


def _rows(count: int, tab: Tab) -> str:
    noun = TAB_LABELS[tab].lower()
    return f"{count:,} {noun if count != 1 else noun[:-1]}"


# Query parameters of a table that are not filters: left out of "delete all matching".
_TABLE_PARAMS: Final = ("after", "before", "newer", "live", "sort", "order", "size")


def _delete_result(request: HttpRequest, project: Project, tab: Tab) -> HttpResponse:
    """ "Delete all matching": the confirmation states how many rows and spans the filtered
    result has right now (``as_of``); the confirmed form posts the same filters, ``as_of`` and
    the span count back. Only spans ingested by ``as_of`` are matched and deleted (relative
    time ranges are read at ``as_of`` too), so spans arriving meanwhile are kept; and if the
    result has grown past the stated count anyway (an evaluation added since makes more spans
    match), nothing is deleted and the page asks again with the new count."""
    posted = request.method == "POST"
    params = request.POST if posted else request.GET
    if posted:
        back = _back(request, project, tab)
    else:
        query = request.GET.copy()
        for name in _TABLE_PARAMS:
            query.pop(name, None)
        back = reverse(f"tracing:{tab}", kwargs={"project": project.name})
        back += f"?{query.urlencode()}" if query else ""
    now = timezone.now()
    as_of = _moment(params.get("as_of")) if posted else None
    confirmed = posted and params.get("confirmed") == "1" and as_of is not None
    as_of = min(as_of, now) if as_of is not None else now
    filters = SpanFilterSet(
        with_default_range(params),
        queryset=browse_spans(project=project, tab=tab),
        project=project,
        tab=tab,
        now=as_of,
    )
    if not filters.form.is_valid():
        messages.error(request, "The filter is not valid, so nothing was deleted. Fix it first.")
        return redirect(back)
    size = result_size(project=project, tab=tab, spans=filters.qs, as_of=as_of)
    stated = _count(params.get("span_count"))
    if confirmed and stated is not None and size.spans <= stated:
        done = spans_delete_result(project=project, tab=tab, spans=filters.qs, as_of=as_of)
        messages.success(request, f"Deleted {_rows(done.rows, tab)} ({done.spans:,} spans).")
        return redirect(back)
    if size.rows == 0:
        messages.info(request, f"No {tab} match, so nothing was deleted.")
        return redirect(back)
    context = {
        "project": project,
        "tab": tab,
        "tab_label": TAB_LABELS[tab],
        "scope": "all",
        "size": size,
        "span_count": size.spans,
        "expression": filters.expression(),
        "filter_params": [
            (name, value)
            for name in SpanFilterSet.base_filters
            for value in params.getlist(name)
            if value
        ],
        "as_of": as_of.isoformat(),
        "as_of_moment": as_of,
        "changed": confirmed,
        "next": back,
    }
    return render(request, "tracing/delete_confirm.html", context)


def _moment(raw: str | None) -> datetime | None:
    try:
        value = datetime.fromisoformat(raw or "")
    except ValueError:
        return None
    return value if value.tzinfo else None


def _count(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None
