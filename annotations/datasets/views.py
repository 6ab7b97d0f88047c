"""Dataset pages: the datasets, a dataset's examples, its downloads, rename and delete, and the
trace browser's "Add to dataset" bulk action.

The bulk action posts from the trace browser's ``form#bulk``: the selected rows (``selected``),
or with ``scope=all`` every row matching the filter carried in the action URL's query string,
read by the trace browser's own ``SpanFilterSet``.
"""

from __future__ import annotations

from typing import Final

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
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
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotations.datasets.export import FORMATS, dataset_export_stream
from annotations.datasets.models import Dataset
from annotations.datasets.selectors import (
    SOURCE_OF_TAB,
    annotation_names_recent,
    dataset_examples,
    dataset_get,
    dataset_list,
    dataset_names,
    dataset_source_spans_matching,
    dataset_source_spans_selected,
)
from annotations.datasets.services import (
    MAX_EXAMPLES_PER_ADD,
    DatasetInvalid,
    DatasetNameTaken,
    DatasetSourceMissing,
    dataset_delete,
    dataset_examples_add_by_name,
    dataset_update,
)
from evalhub.core.streams import download_response
from evalhub.core.web import htmx_partial, next_or
from evalhub.identity.auth import request_user
from tracing.browser.filters import SpanFilterSet, with_default_range
from tracing.browser.selectors import browse_spans
from tracing.browser.tabs import TABS, Tab
from tracing.models import Project

EXAMPLES_PER_PAGE: Final = 50
DATASETS_PER_PAGE: Final = 50
MAX_LISTED_KEYS: Final = 5
_FIELD_LABELS: Final = {
    "name": "the dataset name",
    "expected_output_from": "the annotation for the expected output",
}


def _dataset_or_404(pk: int) -> Dataset:
    dataset = dataset_get(pk, by_name=False)
    if dataset is None:
        raise Http404("no such dataset")
    return dataset


@login_required
@require_GET
def datasets(request: HttpRequest) -> HttpResponse:
    """Every dataset with its example count, most recently changed first."""
    page = Paginator(dataset_list(), DATASETS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "annotations/dataset_list.html", {"page": page})


@login_required
@require_GET
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A dataset: its name, description, downloads and its examples, a page at a time."""
    dataset = _dataset_or_404(pk)
    page = Paginator(dataset_examples(dataset=dataset), EXAMPLES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {"dataset": dataset, "page": page, "formats": list(FORMATS)}
    template = "annotations/dataset_detail.html"
    return render(request, f"{template}#examples" if htmx_partial(request) else template, context)


@login_required
@require_POST
def dataset_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Rename a dataset and change its description."""
    dataset = _dataset_or_404(pk)
    try:
        dataset_update(
            dataset=dataset,
            name=request.POST.get("name", ""),
            description=request.POST.get("description", ""),
        )
    except (DatasetInvalid, DatasetNameTaken) as exc:
        messages.error(request, f"Not saved: {exc}")
    else:
        messages.success(request, "Saved.")
    return redirect("annotations:dataset", pk=dataset.pk)


@login_required
@require_http_methods(["GET", "POST"])
def dataset_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask (GET), then delete a dataset with its examples (POST)."""
    dataset = _dataset_or_404(pk)
    if request.method == "GET":
        return render(request, "annotations/dataset_delete.html", {"dataset": dataset})
    name = dataset.name
    dataset_delete(dataset=dataset)
    messages.success(request, f"Deleted the dataset {name}.")
    return redirect("annotations:datasets")


@login_required
@require_GET
def dataset_download(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The examples as CSV, JSONL or Parquet (``format``), streamed."""
    dataset = _dataset_or_404(pk)
    export_format = request.GET.get("format", "csv")
    if export_format not in FORMATS:
        return HttpResponseBadRequest(
            f"format must be one of {', '.join(FORMATS)}", content_type="text/plain"
        )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset.name)
    return download_response(
        dataset_export_stream(dataset, export_format=export_format),
        export_format=export_format,
        filename=f"{safe_name}-{stamp}",
    )


@login_required
@require_GET
def dataset_options(request: HttpRequest) -> HttpResponse:
    """The choices of the trace browser's "Add to dataset" panel, loaded when it opens: the
    datasets' names and the project's annotation names."""
    project = Project.objects.filter(name=request.GET.get("project", "")).first()
    context = {
        "dataset_names": dataset_names(),
        "annotation_names": annotation_names_recent(project=project) if project else [],
    }
    return render(request, "annotations/_bulk_dataset.html#dataset-options", context)


def _back(request: HttpRequest, project: Project, tab: Tab) -> str:
    return next_or(request, reverse(f"tracing:{tab}", kwargs={"project": project.name}))


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED_KEYS])
    more = len(keys) - MAX_LISTED_KEYS
    return f"{shown} and {more} more" if more > 0 else shown


@login_required
@require_POST
def dataset_add(request: HttpRequest, project: str, tab: Tab) -> HttpResponse:
    """Add the selected rows (or with ``scope=all`` every row matching the filter in the query
    string) to the dataset named ``dataset``, created when there is none. One example per row:
    the span, the trace's root span, the session's first root span."""
    if tab not in TABS:
        raise Http404("no such tab")
    project_row = get_object_or_404(Project, name=project)
    back = _back(request, project_row, tab)
    if request.POST.get("scope") == "all":
        filters = SpanFilterSet(
            with_default_range(request.GET),
            queryset=browse_spans(project=project_row, tab=tab),
            project=project_row,
            tab=tab,
        )
        if filters.filter_error is not None:
            messages.error(
                request, f"Nothing added: the filter has an error: {filters.filter_error}"
            )
            return redirect(back)
        pks = dataset_source_spans_matching(
            project=project_row,
            tab=tab,
            spans=filters.qs,
            filtering=filters.is_filtering,
            limit=MAX_EXAMPLES_PER_ADD,
        )
        if len(pks) > MAX_EXAMPLES_PER_ADD:
            messages.error(
                request,
                f"Nothing added: more than {MAX_EXAMPLES_PER_ADD:,} {tab} match; "
                "narrow the filter down.",
            )
            return redirect(back)
    else:
        selected = [key for key in request.POST.getlist("selected") if key]
        if not selected:
            messages.warning(request, "Select rows to add to a dataset first.")
            return redirect(back)
        found = dataset_source_spans_selected(project=project_row, tab=tab, keys=selected)
        if found.missing:
            messages.error(
                request, f"Nothing added: not found in {project}: {_listed(found.missing)}"
            )
            return redirect(back)
        pks = found.pks
    try:
        result = dataset_examples_add_by_name(
            name=request.POST.get("dataset", ""),
            spans=pks,
            source=SOURCE_OF_TAB[tab],
            expected_output_from=request.POST.get("expected_from") or None,
            user=request_user(request),
        )
    except DatasetInvalid as exc:
        what = _FIELD_LABELS.get(exc.field)
        messages.error(request, f"Nothing added: {f'{what} ' if what else ''}{exc.message}.")
        return redirect(back)
    except DatasetSourceMissing as exc:
        messages.error(request, f"Nothing added: {exc}")
        return redirect(back)
    dataset = result.dataset
    text = f"Added {result.added} example{'s' if result.added != 1 else ''} to {dataset.name}"
    if result.created:
        text = f"Created the dataset {dataset.name} with {result.added} example{'s' if result.added != 1 else ''}"
    if result.skipped:
        text += f" ({result.skipped} already in it)"
    messages.success(request, text + ".")
    return redirect("annotations:dataset", pk=dataset.pk)
