"""Pages: Monitors (list, detail with history, create/edit with the "would have fired"
preview), Settings → Notification channels, and a project's Automations. Thin: a form, one
service or selector, a template. Who may open each is decided by ``evalhub.identity.policy``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from evalhub.core.fields import FieldInvalid, NameTaken, form_error
from evalhub.monitors import selectors
from evalhub.monitors.automations import automation_create, automation_delete, automation_update
from evalhub.monitors.channels import (
    channel_create,
    channel_delete,
    channel_update,
    delivery_test_create,
)
from evalhub.monitors.checks import monitor_preview
from evalhub.monitors.forms import (
    FORM_FIELDS,
    AutomationForm,
    ChannelForm,
    MonitorForm,
    MuteForm,
)
from evalhub.monitors.models import Automation, Monitor, NotificationChannel
from evalhub.monitors.services import monitor_create, monitor_delete, monitor_mute, monitor_update
from tracing.browser.project_tabs import project_tabs
from tracing.models import Project


@require_GET
def monitor_list(request: HttpRequest) -> HttpResponse:
    project = None
    if request.GET.get("project"):
        project = Project.objects.filter(name=request.GET["project"]).first()
    rows = selectors.monitor_rows(project=project)
    return render(
        request,
        "monitors/monitor_list.html",
        {"rows": rows, "project": project, "projects": Project.objects.all()},
    )


def _saved[T](form: forms.Form, save: Callable[[], T]) -> T | None:
    """Run ``save`` (a service call) for a valid ``form``; its refusals become form errors."""
    if not form.is_valid():
        return None
    try:
        return save()
    except FieldInvalid as exc:
        form_error(form, exc, fields=FORM_FIELDS)
    except NameTaken as exc:
        form.add_error("name", str(exc))
    return None


def _save(form: MonitorForm, monitor: Monitor | None) -> Monitor | None:
    if not form.is_valid():
        return None
    project = Project.objects.get(name=form.cleaned_data["project"])
    if monitor is None:
        return _saved(form, lambda: monitor_create(project=project, data=form.monitor_input()))
    if project != monitor.project:
        form.add_error("project", "a monitor stays in its project")
        return None
    return _saved(form, lambda: monitor_update(monitor=monitor, data=form.monitor_input()))


@require_http_methods(["GET", "POST"])
def monitor_new(request: HttpRequest) -> HttpResponse:
    initial: dict[str, Any] = {"project": request.GET.get("project", ""), "enabled": True}
    form = MonitorForm(request.POST or None, initial=initial)
    if request.method == "POST":
        monitor = _save(form, None)
        if monitor is not None:
            messages.success(request, f"Monitor {monitor.name} created.")
            return redirect("monitors:detail", monitor_id=monitor.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "monitors/monitor_form.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
def monitor_edit(request: HttpRequest, monitor_id: int) -> HttpResponse:
    monitor = get_object_or_404(Monitor.objects.select_related("project"), pk=monitor_id)
    form = MonitorForm(request.POST or None, initial=MonitorForm.initial_of(monitor))
    if request.method == "POST" and _save(form, monitor) is not None:
        messages.success(request, f"Monitor {monitor.name} saved.")
        return redirect("monitors:detail", monitor_id=monitor.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "monitors/monitor_form.html", {"form": form, "monitor": monitor}, status=status
    )


@require_GET
def monitor_preview_view(request: HttpRequest) -> HttpResponse:
    """The "would have fired" chart for the form's current values (an htmx partial)."""
    form = MonitorForm(request.GET)
    preview = None
    if form.is_valid():
        project = Project.objects.get(name=form.cleaned_data["project"])
        try:
            preview = monitor_preview(project=project, data=form.monitor_input())
        except FieldInvalid as exc:
            form_error(form, exc, fields=FORM_FIELDS)
    return render(
        request,
        "monitors/monitor_form.html#preview",
        {"form": form, "preview": preview, "metric": request.GET.get("metric", "")},
    )


@require_GET
def monitor_detail(request: HttpRequest, monitor_id: int) -> HttpResponse:
    monitor = get_object_or_404(Monitor.objects.select_related("project"), pk=monitor_id)
    return render(
        request,
        "monitors/monitor_detail.html",
        {
            "monitor": monitor,
            "checks": selectors.monitor_checks(monitor=monitor),
            "events": monitor.events.select_related("check_row")[:50],
            "deliveries": selectors.delivery_log_of_monitor(monitor=monitor),
            "mute_form": MuteForm(),
        },
    )


@require_POST
def monitor_mute_view(request: HttpRequest, monitor_id: int) -> HttpResponse:
    monitor = get_object_or_404(Monitor, pk=monitor_id)
    form = MuteForm(request.POST)
    if form.is_valid():
        hours = form.cleaned_data.get("mute_hours")
        until = timezone.now() + timedelta(hours=hours) if hours else None
        monitor_mute(monitor=monitor, until=until)
        messages.success(request, "Muted." if until else "Unmuted.")
    else:
        messages.error(
            request, "; ".join(str(e) for errors in form.errors.values() for e in errors)
        )
    return redirect("monitors:detail", monitor_id=monitor.pk)


@require_POST
def monitor_delete_view(request: HttpRequest, monitor_id: int) -> HttpResponse:
    monitor = get_object_or_404(Monitor, pk=monitor_id)
    monitor_delete(monitor=monitor)
    messages.success(request, f"Monitor {monitor.name} deleted.")
    return redirect("monitors:list")


# --- Settings → Notification channels -----------------------------------------------------------


@require_http_methods(["GET", "POST"])
def channels(request: HttpRequest) -> HttpResponse:
    form = ChannelForm(request.POST or None, initial={"enabled": True})
    status = 200
    if request.method == "POST":
        status = 400
        channel = _saved(form, lambda: channel_create(data=form.channel_input()))
        if channel is not None:
            messages.success(request, f"Channel {channel.name} created.")
            return redirect("monitors:channel", channel_id=channel.pk)
    return render(
        request,
        "monitors/channels.html",
        {
            "channels": selectors.channel_list(),
            "form": form,
            "deliveries": selectors.delivery_log(),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def channel_edit(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = get_object_or_404(NotificationChannel, pk=channel_id)
    action = request.POST.get("action", "save")
    if request.method == "POST" and action == "delete":
        channel_delete(channel=channel)
        messages.success(request, f"Channel {channel.name} deleted.")
        return redirect("monitors:channels")
    if request.method == "POST" and action == "test":
        delivery_test_create(channel=channel)
        messages.success(request, "A test message is on its way: see the delivery log.")
        return redirect("monitors:channel", channel_id=channel.pk)
    initial = {k: getattr(channel, k) for k in ("name", "kind", "url", "emails", "enabled")}
    form = ChannelForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if (
            _saved(form, lambda: channel_update(channel=channel, data=form.channel_input()))
            is not None
        ):
            messages.success(request, f"Channel {channel.name} saved.")
            return redirect("monitors:channel", channel_id=channel.pk)
    return render(
        request,
        "monitors/channel.html",
        {
            "channel": channel,
            "form": form,
            "deliveries": selectors.delivery_log(channel=channel),
        },
        status=status,
    )


# --- a project's automations -------------------------------------------------------------------


def _project_context(project: Project) -> dict[str, Any]:
    return {"project": project, "tabs": project_tabs(project.name), "tab": "automations"}


@require_http_methods(["GET", "POST"])
def automations(request: HttpRequest, project: str) -> HttpResponse:
    project_row = get_object_or_404(Project, name=project)
    form = AutomationForm(request.POST or None, initial={"enabled": True, "sampling_rate": 100})
    status = 200
    if request.method == "POST":
        status = 400
        automation = _saved(
            form, lambda: automation_create(project=project_row, data=form.automation_input())
        )
        if automation is not None:
            messages.success(request, f"Automation {automation.name} created.")
            return redirect("monitors:automations", project=project_row.name)
    return render(
        request,
        "monitors/automations.html",
        {
            **_project_context(project_row),
            "automations": selectors.automation_list(project=project_row),
            "form": form,
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def automation_edit(request: HttpRequest, project: str, automation_id: int) -> HttpResponse:
    project_row = get_object_or_404(Project, name=project)
    automation = get_object_or_404(Automation, pk=automation_id, project=project_row)
    if request.method == "POST" and request.POST.get("action") == "delete":
        automation_delete(automation=automation)
        messages.success(request, f"Automation {automation.name} deleted.")
        return redirect("monitors:automations", project=project_row.name)
    initial = {
        "name": automation.name, "filter": automation.filter, "action": automation.action,
        "queue": automation.queue.name if automation.queue else None,
        "dataset": automation.dataset.name if automation.dataset else None,
        "dataset_source": automation.dataset_source,
        "expected_output_from": automation.expected_output_from, "tag": automation.tag,
        "channel": automation.channel.name if automation.channel else None,
        "sampling_rate": automation.sampling_rate, "daily_cap": automation.daily_cap,
        "enabled": automation.enabled,
    }  # fmt: skip
    form = AutomationForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if (
            _saved(
                form, lambda: automation_update(automation=automation, data=form.automation_input())
            )
            is not None
        ):
            messages.success(request, f"Automation {automation.name} saved.")
            return redirect("monitors:automations", project=project_row.name)
    return render(
        request,
        "monitors/automation.html",
        {**_project_context(project_row), "automation": automation, "form": form,
         "hits": automation.hits.count()},
        status=status,
    )  # fmt: skip
