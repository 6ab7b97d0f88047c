"""Evaluator hub pages: evaluators, the template library, the playground, AI providers."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from evalhub.core.web import htmx_partial
from evalhub.evaluators.forms import SOURCE_SUGGESTIONS, EvaluatorForm, variable_rows
from evalhub.evaluators.library import TEMPLATES, JudgeTemplate, template_get
from evalhub.evaluators.models import Evaluator, EvaluatorKind
from evalhub.evaluators.running import evaluator_run
from evalhub.evaluators.selectors import (
    evaluator_get,
    evaluator_list,
    evaluator_version_get,
    evaluator_version_latest,
    picker_projects,
    playground_span,
    playground_spans,
    variables_preview,
)
from evalhub.evaluators.services import evaluator_create, evaluator_update
from evalhub.identity.auth import request_user
from evalhub.providers.models import Provider, ProviderKind
from evalhub.providers.selectors import provider_list
from evalhub.providers.services import (
    provider_create,
    provider_delete,
    provider_test_connection,
    provider_update,
)
from tracing.models import Span
from tracing.query import FilterError
from tracing.store.selectors import project_get

_NEW_DEFINITIONS: dict[str, dict[str, Any]] = {
    EvaluatorKind.LLM: TEMPLATES[0].config(),
    EvaluatorKind.CODE: {"kind": "CODE", "check": "exact_match", "params": {}},
}
_CUSTOM_EXAMPLE: dict[str, Any] = {
    "kind": "CODE",
    "check": "custom",
    "code": (
        "def evaluate(input, output, metadata, reference, span):\n"
        "    ok = reference is not None and reference.strip() in (output or '')\n"
        '    return {"label": "pass" if ok else "fail", "score": float(ok),\n'
        '            "explanation": "reference found" if ok else "reference missing"}\n'
    ),
}


def _evaluator_or_404(ident: str) -> Evaluator:
    evaluator = evaluator_get(ident)
    if evaluator is None:
        raise Http404("no such evaluator")
    return evaluator


@login_required
def evaluators_list(request: HttpRequest) -> HttpResponse:
    evaluators = evaluator_list(
        kind=request.GET.get("kind") or None, search=request.GET.get("q", "")
    )
    ctx = {"evaluators": evaluators, "kinds": EvaluatorKind.choices}
    if htmx_partial(request):
        return render(request, "evalhub/evaluator_list.html#results", ctx)
    return render(request, "evalhub/evaluator_list.html", ctx)


@login_required
@require_GET
def templates_library(request: HttpRequest) -> HttpResponse:
    """The judge templates; "Use" opens the new-evaluator form filled from one (nothing is
    created until that form is saved, with a name, a provider and a model chosen)."""
    return render(request, "evalhub/template_library.html", {"templates": TEMPLATES})


def _save_evaluator(
    request: HttpRequest,
    form: EvaluatorForm,
    evaluator: Evaluator | None,
    *,
    template_key: str = "",
) -> Evaluator | None:
    """The saved evaluator, or None with the service's errors put on the form."""
    config = form.cleaned_data["config"]
    try:
        if evaluator is None:
            return evaluator_create(
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                config=config,
                user=request_user(request),
                template_key=template_key,
            )
        evaluator_update(
            evaluator=evaluator,
            user=request_user(request),
            description=form.cleaned_data["description"],
            config=config,
        )
        return evaluator
    except PermissionDenied as exc:
        form.add_config_error(exc, field="code" if "code" in form.fields else None)
    except ValueError as exc:
        form.add_config_error(exc)
    return None


def _form_page(
    request: HttpRequest,
    form: EvaluatorForm,
    evaluator: Evaluator | None,
    *,
    template: JudgeTemplate | None = None,
) -> HttpResponse:
    return render(
        request,
        "evalhub/evaluator_form.html",
        {
            "form": form,
            "evaluator": evaluator,
            "sources": SOURCE_SUGGESTIONS,
            "library_template": template,
        },
    )


@login_required
def evaluator_new(request: HttpRequest) -> HttpResponse:
    """A new evaluator: an LLM judge, a code evaluator (``?kind=CODE``), custom code
    (``?kind=custom``), or a copy of a library template (``?template=<key>``) to name and give a
    provider and model before it is created."""
    template = None
    initial: dict[str, str] = {}
    start: dict[str, Any] | None
    if request.GET.get("template"):
        try:
            template = template_get(request.GET["template"])
        except KeyError:
            raise Http404("no such judge template") from None
        start = template.config()
        initial = {"name": template.key, "description": template.description}
    else:
        kind = request.GET.get("kind", EvaluatorKind.LLM)
        start = _CUSTOM_EXAMPLE if kind == "custom" else _NEW_DEFINITIONS.get(kind)
    form = EvaluatorForm(
        request.POST or None,
        config=start or _NEW_DEFINITIONS[EvaluatorKind.LLM],
        user=request.user,
        initial=initial,
    )
    if request.method == "POST" and form.is_valid():
        evaluator = _save_evaluator(
            request, form, None, template_key=template.key if template else ""
        )
        if evaluator is not None:
            messages.success(request, f"Created {evaluator.name}.")
            return redirect("evaluators:detail", ident=evaluator.name)
    return _form_page(request, form, None, template=template)


@login_required
def evaluator_edit(request: HttpRequest, ident: str) -> HttpResponse:
    evaluator = _evaluator_or_404(ident)
    latest = evaluator_version_latest(evaluator=evaluator)
    form = EvaluatorForm(
        request.POST or None,
        config=latest.config,
        user=request.user,
        initial={"name": evaluator.name, "description": evaluator.description},
    )
    form.fields["name"].disabled = True
    if request.method == "POST" and form.is_valid() and _save_evaluator(request, form, evaluator):
        saved = evaluator_version_latest(evaluator=evaluator)
        if saved.number == latest.number:
            messages.success(
                request, f"Saved. The definition did not change (still v{saved.number})."
            )
        else:
            messages.success(request, f"Saved as v{saved.number}.")
        return redirect("evaluators:detail", ident=evaluator.name)
    return _form_page(request, form, evaluator)


@login_required
@require_POST
def evaluator_form_variables(request: HttpRequest) -> HttpResponse:
    """The variable rows for the template being typed (one per ``{variable}``), keeping the
    sources typed so far."""
    rows = variable_rows(
        request.POST.get("template", "").replace("\r\n", "\n"),
        dict(
            zip(
                request.POST.getlist("variables-name"),
                request.POST.getlist("variables-source"),
                strict=False,
            )
        ),
    )
    return render(request, "evalhub/evaluator_form.html#variable-rows", {"rows": rows})


@login_required
def evaluator_detail(request: HttpRequest, ident: str) -> HttpResponse:
    evaluator = _evaluator_or_404(ident)
    versions = list(evaluator.versions.order_by("-number"))
    span_id = request.GET.get("span", "").strip()
    span = playground_span(span_id)
    project_name = request.GET.get("project", "").strip() or (span.project.name if span else "")
    return render(
        request,
        "evalhub/evaluator_detail.html",
        {
            "evaluator": evaluator,
            "version": versions[0],
            "versions": versions,
            "definition": json.dumps(versions[0].config, indent=2),
            "projects": picker_projects(),
            "picker_project": project_name,
            "picked_span_id": span_id,
            **_picker_context(project_name, "", chosen=span_id),
        },
    )


def _picker_context(project_name: str, filter_text: str, *, chosen: str = "") -> dict[str, Any]:
    """The span picker's list: the newest spans of the project matching the filter, or why
    there are none."""
    ctx: dict[str, Any] = {"picker_spans": None, "filter_error": None, "chosen": chosen}
    project = project_get(project_name) if project_name else None
    if project is None:
        return ctx
    try:
        ctx["picker_spans"] = playground_spans(project=project, filter_text=filter_text)
    except FilterError as exc:
        ctx["filter_error"] = exc
        ctx["filter_text"] = filter_text
        ctx["filter_caret"] = " " * (min(exc.position, len(filter_text) + 1) - 1) + "^"
    return ctx


@login_required
def evaluator_spans(request: HttpRequest, ident: str) -> HttpResponse:
    """The playground's span picker (an htmx fragment)."""
    _evaluator_or_404(ident)
    ctx = _picker_context(
        request.GET.get("project", "").strip(),
        request.GET.get("filter", ""),
        chosen=request.GET.get("span_id", "").strip(),
    )
    return render(request, "evalhub/evaluator_detail.html#span-choices", ctx)


@login_required
def evaluator_test_on_span(request: HttpRequest) -> HttpResponse:
    """Choose an evaluator to try on a span: each opens its playground with the span picked."""
    span_id = request.GET.get("span", "").strip()
    ctx = {
        "evaluators": evaluator_list(search=request.GET.get("q", "")),
        "span": playground_span(span_id),
        "span_id": span_id,
        "project": request.GET.get("project", "").strip(),
    }
    if htmx_partial(request):
        return render(request, "evalhub/evaluator_test_on_span.html#results", ctx)
    return render(request, "evalhub/evaluator_test_on_span.html", ctx)


def _playground_inputs(
    request: HttpRequest, evaluator: Evaluator
) -> tuple[Any, Span | None, dict[str, Any] | None, str | None]:
    number = request.POST.get("version")
    version = (
        evaluator_version_get(evaluator=evaluator, number=int(number))
        if number and number.isdigit()
        else evaluator_version_latest(evaluator=evaluator)
    )
    if version is None:
        return None, None, None, "no such version"
    span = None
    span_id = request.POST.get("span_id", "").strip()
    if span_id:
        span = Span.objects.filter(span_id=span_id).first()
        if span is None:
            return version, None, None, f"no span {span_id}"
    values = None
    raw_values = request.POST.get("values", "").strip()
    if raw_values:
        try:
            values = json.loads(raw_values)
        except ValueError as exc:
            return version, span, None, f"sample values are not valid JSON: {exc}"
        if not isinstance(values, dict):
            return version, span, None, "sample values must be a JSON object"
    if span is None and not values:
        return version, None, None, "pick a span or paste sample values"
    return version, span, values, None


@login_required
@require_POST
def evaluator_playground(request: HttpRequest, ident: str) -> HttpResponse:
    """Run the evaluator on a span or pasted values and show everything; writes nothing."""
    evaluator = _evaluator_or_404(ident)
    version, span, values, problem = _playground_inputs(request, evaluator)
    ctx: dict[str, Any] = {"evaluator": evaluator, "problem": problem}
    if problem is None:
        if request.POST.get("action") == "preview":
            ctx["previews"] = variables_preview(config=version.config, span=span, values=values)
        else:
            ctx["result"] = evaluator_run(version=version, span=span, values=values)
    return render(request, "evalhub/evaluator_detail.html#playground-result", ctx)


# --- Settings → AI providers ------------------------------------------------------------------


class ProviderForm(forms.Form):
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=ProviderKind.choices)
    base_url = forms.CharField(
        label="Base URL", max_length=500, required=False, help_text="Empty for OpenAI."
    )
    api_version = forms.CharField(
        label="API version", max_length=40, required=False, help_text="Azure only."
    )
    api_key = forms.CharField(
        label="API key",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=(
            "Stored encrypted and never shown again. Leave empty to keep the current key — "
            "except when you change the base URL or kind: the key is never sent to a new address."
        ),
    )
    default_model = forms.CharField(max_length=200)
    max_concurrency = forms.IntegerField(min_value=1, initial=4)
    requests_per_minute = forms.IntegerField(min_value=0, initial=60, help_text="0: no limit.")
    timeout_seconds = forms.FloatField(min_value=1, max_value=600, initial=60)
    is_default = forms.BooleanField(required=False, label="Default provider")


def _service_error(form: forms.Form, exc: ValueError) -> None:
    """A service's ``field: message`` error shown on that field when the form has it."""
    field, separator, message = str(exc).partition(": ")
    field = getattr(exc, "field", field)
    if separator and field in form.fields:
        form.add_error(field, getattr(exc, "message", message))
    else:
        form.add_error(None, str(exc))


@sensitive_post_parameters("api_key")
@staff_member_required
def providers(request: HttpRequest) -> HttpResponse:
    form = ProviderForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            provider_create(**form.cleaned_data)
        except ValueError as exc:
            _service_error(form, exc)
        else:
            messages.success(request, "Provider added. Its key is stored encrypted.")
            return redirect("evaluators:providers")
    return render(request, "evalhub/providers.html", {"providers": provider_list(), "form": form})


@sensitive_post_parameters("api_key")
@staff_member_required
def provider_edit(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = Provider.objects.filter(pk=provider_id).first()
    if provider is None:
        raise Http404("no such provider")
    if request.method == "POST" and request.POST.get("action") == "delete":
        provider_delete(provider=provider)
        messages.success(request, f"Deleted {provider.name}.")
        return redirect("evaluators:providers")
    initial = {
        field: getattr(provider, field) for field in ProviderForm.base_fields if field != "api_key"
    }
    form = ProviderForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            provider_update(provider=provider, **form.cleaned_data)
        except ValueError as exc:
            _service_error(form, exc)
        else:
            messages.success(request, "Provider saved.")
            return redirect("evaluators:providers")
    return render(request, "evalhub/provider_form.html", {"provider": provider, "form": form})


@staff_member_required
@require_POST
def provider_test(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = Provider.objects.filter(pk=provider_id).first()
    if provider is None:
        raise Http404("no such provider")
    result = provider_test_connection(provider=provider)
    return render(
        request, "evalhub/providers.html#test-result", {"provider": provider, "test": result}
    )
