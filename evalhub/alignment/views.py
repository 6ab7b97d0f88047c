"""The alignment workspace pages: the draft form (with past runs), a run's comparison, and
its actions — save as a new version, copy to a golden dataset, send to a worker again."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotations.datasets.services import DatasetInvalid
from evalhub.alignment.forms import DraftForm, GoldenForm
from evalhub.alignment.models import AlignmentRun
from evalhub.alignment.selectors import (
    FLIP_KINDS,
    alignment_comparison,
    alignment_items_errored,
    alignment_run_get,
    alignment_runs,
)
from evalhub.alignment.services import (
    AlignmentInvalid,
    alignment_estimate,
    alignment_golden_dataset,
    alignment_run_create,
    alignment_run_resume,
    alignment_save,
)
from evalhub.calibration.estimate import duration_text
from evalhub.core.fields import form_error
from evalhub.core.web import found_or_404, htmx_partial
from evalhub.evaluators.models import Evaluator, EvaluatorKind
from evalhub.evaluators.selectors import evaluator_get, evaluator_version_latest
from evalhub.identity.auth import request_user

WORKSPACE = "alignment/workspace.html"
RUN = "alignment/run.html"


def _evaluator(ident: str) -> Evaluator:
    return found_or_404(evaluator_get(ident), "evaluator")


def _run(evaluator: Evaluator, run_id: int) -> AlignmentRun:
    return found_or_404(alignment_run_get(evaluator=evaluator, run_id=run_id), "alignment run")


@login_required
def alignment_workspace(request: HttpRequest, ident: str) -> HttpResponse:
    """GET: the draft form over the current version; POST: run the draft (a new run)."""
    evaluator = _evaluator(ident)
    current = evaluator_version_latest(evaluator=evaluator)
    is_judge = evaluator.kind == EvaluatorKind.LLM
    form = DraftForm(request.POST or None, base=current.config, initial=request.GET.dict())
    if request.method == "POST" and is_judge and form.is_valid():
        try:
            run = alignment_run_create(
                evaluator=evaluator,
                project=form.cleaned_data["project"],
                draft=form.draft(),
                user=request_user(request),
                max_items=form.cleaned_data["max_items"],
            )
        except AlignmentInvalid as exc:
            form_error(form, exc)
        else:
            return redirect("alignment:run", ident=evaluator.name, alignment_id=run.pk)
    context: dict[str, Any] = {
        "evaluator": evaluator,
        "current": current,
        "is_judge": is_judge,
        "form": form,
        "runs": alignment_runs(evaluator=evaluator)[:20],
    }
    return render(request, WORKSPACE, context, status=400 if form.errors else 200)


@login_required
@require_GET
def alignment_run(request: HttpRequest, ident: str, alignment_id: int) -> HttpResponse:
    """The draft's agreement with people beside the current version's, and where it flips;
    while the run is running the ``#alignment`` part polls."""
    evaluator = _evaluator(ident)
    run = _run(evaluator, alignment_id)
    flips = request.GET.get("flips") or None
    if flips not in (None, *FLIP_KINDS):
        flips = None
    context = {
        "evaluator": evaluator,
        "run": run,
        "comparison": alignment_comparison(run=run, flips=flips),
        "errored": alignment_items_errored(run=run),
        "flips": flips,
        "flip_kinds": FLIP_KINDS,
        "golden_form": GoldenForm(initial={"name": f"{evaluator.name} golden examples"}),
    }
    return render(request, f"{RUN}#alignment" if htmx_partial(request) else RUN, context)


@login_required
@require_POST
def alignment_run_save(request: HttpRequest, ident: str, alignment_id: int) -> HttpResponse:
    evaluator = _evaluator(ident)
    run = _run(evaluator, alignment_id)
    try:
        version = alignment_save(run=run, user=request_user(request))
    except AlignmentInvalid as exc:
        messages.error(request, f"Not saved: the run {exc.message}")
        return redirect("alignment:run", ident=evaluator.name, alignment_id=run.pk)
    messages.success(request, f"Saved the draft as v{version.number} of {evaluator.name}.")
    return redirect("evaluators:detail", ident=evaluator.name)


@login_required
@require_POST
def alignment_run_golden(request: HttpRequest, ident: str, alignment_id: int) -> HttpResponse:
    evaluator = _evaluator(ident)
    run = _run(evaluator, alignment_id)
    form = GoldenForm(request.POST)
    back = reverse("alignment:run", kwargs={"ident": evaluator.name, "alignment_id": run.pk})
    if not form.is_valid():
        messages.error(request, "Give the dataset a name.")
        return redirect(back)
    try:
        added = alignment_golden_dataset(
            run=run,
            name=form.cleaned_data["name"],
            user=request_user(request),
        )
    except (DatasetInvalid, AlignmentInvalid) as exc:
        messages.error(request, f"Not copied: {exc}")
        return redirect(back)
    messages.success(
        request,
        f"Copied {added.added} labelled item{'s' if added.added != 1 else ''} into "
        f"{added.dataset.name}"
        + (f" ({added.skipped} were there already)." if added.skipped else "."),
    )
    return redirect(back)


@login_required
@require_POST
def alignment_run_resume_view(request: HttpRequest, ident: str, alignment_id: int) -> HttpResponse:
    evaluator = _evaluator(ident)
    run = _run(evaluator, alignment_id)
    if alignment_run_resume(run=run):
        messages.success(request, "Sent to a worker again.")
    return redirect("alignment:run", ident=evaluator.name, alignment_id=run.pk)


@login_required
@require_POST
def alignment_estimate_view(request: HttpRequest, ident: str) -> HttpResponse:
    """The draft form's estimate: items, judge calls, tokens, cost, duration (a fragment)."""
    evaluator = _evaluator(ident)
    current = evaluator_version_latest(evaluator=evaluator)
    form = DraftForm(request.POST, base=current.config)
    context: dict[str, Any] = {"estimate": None, "problems": []}
    if not form.is_valid():
        context["problems"] = [
            f"{form.fields[name].label if name in form.fields else 'Draft'}: "
            f"{' '.join(map(str, errors))}"
            for name, errors in form.errors.items()
        ]
    else:
        try:
            estimate = alignment_estimate(
                evaluator=evaluator,
                project=form.cleaned_data["project"],
                draft=form.draft(),
                user=request_user(request),
                max_items=form.cleaned_data["max_items"],
            )
        except AlignmentInvalid as exc:
            context["problems"] = [str(exc)]
        else:
            context |= {"estimate": estimate, "duration": duration_text(estimate.seconds)}
    return render(request, "calibration/_estimate.html", context)
