"""Annotation pages: Settings → Annotation configs (rubrics), the annotate form of a span, trace
or session, and a project's Annotations tab with inter-annotator agreement.

Thin views: parse the request, call a service or a selector, render. The annotate form is a
partial: the trace and session pages include it, and each rubric's row posts here and is
swapped for the answer.
"""

from __future__ import annotations

from typing import Any, Final

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotations.agreement import agreement
from annotations.annotate.forms import (
    AgreementForm,
    AnnotateForm,
    AnnotationConfigForm,
    AnnotationFilterForm,
)
from annotations.annotate.selectors import annotation_target_get
from annotations.annotate.services import annotation_delete, annotation_person_save
from annotations.models import AnnotationConfig, AnnotatorKind, TargetKind
from annotations.rubrics.selectors import (
    annotation_config_enabled_get,
    annotation_configs_with_projects,
)
from annotations.rubrics.services import (
    AnnotationConfigInvalid,
    AnnotationConfigNameTaken,
    annotation_config_delete,
    annotation_config_save,
)
from annotations.store.selectors import (
    AnnotationTarget,
    agreement_ratings,
    annotate_panel_get,
    annotation_authors,
    annotation_browse_page,
    annotation_names,
)
from annotations.store.services import AnnotationInputError, AnnotationTargetNotFound
from evalhub.core.web import htmx_partial
from tracing.browser.project_tabs import project_tabs
from tracing.models import Project, Span, Trace

ANNOTATE_TEMPLATE: Final = "annotations/_annotate.html"
TARGETS: Final = {
    "span": TargetKind.SPAN,
    "trace": TargetKind.TRACE,
    "session": TargetKind.SESSION,
}


# --- Settings → Annotation configs ------------------------------------------------------------


@login_required
@require_GET
def configs(request: HttpRequest) -> HttpResponse:
    """Every rubric with the projects it is enabled for."""
    return render(
        request, "annotations/configs.html", {"configs": annotation_configs_with_projects()}
    )


def _config_form_page(
    request: HttpRequest, config: AnnotationConfig | None, form: AnnotationConfigForm
) -> HttpResponse:
    """Save a posted, valid form (showing the service's complaints on their fields), else
    show the form."""
    if request.method == "POST" and form.is_valid():
        try:
            saved = annotation_config_save(config=config, **form.service_fields())
        except AnnotationConfigInvalid as exc:
            form.add_service_error(exc)
        except AnnotationConfigNameTaken as exc:
            form.add_error("name", f"{exc.name!r} is taken: another annotation config has it.")
        else:
            messages.success(request, f"Saved the annotation config {saved.name}.")
            return redirect("annotations:configs")
    return render(request, "annotations/configs_form.html", {"form": form, "config": config})


@login_required
@require_http_methods(["GET", "POST"])
def config_new(request: HttpRequest) -> HttpResponse:
    form = AnnotationConfigForm(request.POST if request.method == "POST" else None)
    return _config_form_page(request, None, form)


@login_required
@require_http_methods(["GET", "POST"])
def config_edit(request: HttpRequest, config_id: int) -> HttpResponse:
    config = get_object_or_404(AnnotationConfig, pk=config_id)
    form = AnnotationConfigForm(request.POST if request.method == "POST" else None, config=config)
    return _config_form_page(request, config, form)


@login_required
@require_POST
def config_delete(request: HttpRequest, config_id: int) -> HttpResponse:
    config = get_object_or_404(AnnotationConfig, pk=config_id)
    annotation_config_delete(config=config)
    messages.success(
        request,
        f"Deleted the annotation config {config.name}. Annotations made with it are kept.",
    )
    return redirect("annotations:configs")


# --- the annotate form --------------------------------------------------------------------------


def _target_or_404(project: str, target: str, target_id: str) -> tuple[Project, AnnotationTarget]:
    target_kind = TARGETS.get(target)
    if target_kind is None:
        raise Http404("no such target kind")
    project_row = get_object_or_404(Project, name=project)
    found = annotation_target_get(project=project_row, target_kind=target_kind, target_id=target_id)
    if found is None:
        raise Http404(f"no such {target} in this project")
    return project_row, found


def _target_url(project: str, target: AnnotationTarget) -> str:
    if isinstance(target, Span):
        return reverse(
            "detail:span_pane",
            kwargs={
                "project": project,
                "trace_id": target.trace.trace_id,
                "span_id": target.span_id,
            },
        )
    if isinstance(target, Trace):
        return reverse("detail:trace", kwargs={"project": project, "trace_id": target.trace_id})
    return reverse("detail:session", kwargs={"project": project, "session_id": target.session_id})


@login_required
@require_http_methods(["GET", "POST"])
def annotate(request: HttpRequest, project: str, target: str, target_id: str) -> HttpResponse:
    """GET: the annotate form of a span, trace or session (htmx; others go to its page).
    POST: save or remove the user's annotation under one rubric; htmx gets that rubric's row
    back, with the form's errors when it did not save."""
    project_row, found = _target_or_404(project, target, target_id)
    if request.method == "GET":
        if not htmx_partial(request):
            return redirect(_target_url(project, found))
        panel = annotate_panel_get(target=found, user=request.user)
        return render(
            request, f"{ANNOTATE_TEMPLATE}#panel", {"panel": panel, "project_name": project}
        )

    form = AnnotateForm(request.POST)
    config = annotation_config_enabled_get(project=project_row, name=request.POST.get("name", ""))
    if config is None:
        if htmx_partial(request):  # swapped in where the row was (htmx swaps no 4xx)
            return render(request, f"{ANNOTATE_TEMPLATE}#gone", {"name": request.POST.get("name")})
        return HttpResponseBadRequest(
            "That annotation config is not enabled for this project.", content_type="text/plain"
        )
    status = ""
    if form.is_valid():
        try:
            if form.deleting:
                removed = annotation_delete(
                    project=project_row,
                    target_kind=TARGETS[target],
                    target_id=target_id,
                    name=config.name,
                    identifier=request.user.get_username(),
                )
                status = "Removed." if removed else "Nothing to remove."
            else:
                annotation_person_save(
                    project=project_row,
                    target_kind=TARGETS[target],
                    target_id=target_id,
                    config=config,
                    user=request.user,  # type: ignore[arg-type]  # login_required: a signed-in user
                    label=form.cleaned_data["label"] or None,
                    score=form.cleaned_data["score"],
                    explanation=form.cleaned_data["explanation"],
                )
                status = "Saved."
        except AnnotationInputError as exc:
            form.add_service_error(exc)
        except AnnotationTargetNotFound:
            raise Http404(f"no such {target} in this project") from None
    errors = form.messages() if form.errors else []
    if not htmx_partial(request):
        for error in errors:
            messages.error(request, f"{config.name}: {error}")
        return redirect(_target_url(project, found))
    panel = annotate_panel_get(target=found, user=request.user, names=[config.name])
    context: dict[str, Any] = {
        "panel": panel,
        "item": panel.items[0],
        "project_name": project,
        "errors": errors,
        "posted": request.POST if errors else None,
        "status": status,
    }
    return render(request, f"{ANNOTATE_TEMPLATE}#item", context)


# --- a project's Annotations tab ----------------------------------------------------------------


def _project_context(project: Project, view: str) -> dict[str, Any]:
    return {
        "project": project,
        "tabs": project_tabs(project.name),
        "tab": "annotations",
        "view": view,
    }


@login_required
@require_GET
def project_annotations(request: HttpRequest, project: str) -> HttpResponse:
    """Every annotation of the project, filtered, sorted and paged by the URL."""
    project_row = get_object_or_404(Project, name=project)
    form = AnnotationFilterForm(request.GET)
    filters = form.filters()
    page = annotation_browse_page(
        project=project_row, filters=filters, sort=form.sort_key(), page=form.page_number()
    )
    context = {
        **_project_context(project_row, "list"),
        "form": form,
        "filters": filters,
        "page": page,
        "oob": htmx_partial(request),
    }
    template = "annotations/project_annotations.html"
    if htmx_partial(request):
        return render(request, f"{template}#results", context)
    context["names"] = annotation_names(project=project_row)
    context["authors"] = annotation_authors(project=project_row)
    return render(request, template, context)


@login_required
@require_GET
def project_agreement(request: HttpRequest, project: str) -> HttpResponse:
    """How much the project's annotators agree, per rubric name and pair of annotators."""
    project_row = get_object_or_404(Project, name=project)
    form = AgreementForm(request.GET)
    name = form.cleaned_data["name"].strip() if form.is_valid() else ""
    report = agreement(agreement_ratings(project=project_row, name=name or None))
    context = {
        **_project_context(project_row, "agreement"),
        "form": form,
        "name": name,
        "report": report,
    }
    template = "annotations/agreement.html"
    if htmx_partial(request):
        return render(request, f"{template}#report", context)
    context["names"] = annotation_names(project=project_row, annotator_kind=AnnotatorKind.HUMAN)
    return render(request, template, context)
