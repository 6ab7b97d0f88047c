"""Labeling queue pages: the list, create/edit, a queue's progress and items, adding items
from a filter or from the trace browser's selection, and the labeling view.

The labeling view is one URL per item (``queues/<id>/label/<item>/``): GET shows the item
beside the rubric and reserves it; POST submits (or skips) and redirects to the next item
(``queues/<id>/label/``), which reserves the next one and redirects to it — or shows the end
of the queue. Keyboard shortcuts are in static/js/queue.js.
"""

from __future__ import annotations

from typing import Any, Final

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotations.queues.display import queue_item_display
from annotations.queues.forms import LabelForm, QueueFilterForm, QueueForm
from annotations.queues.labelling import (
    QueueAnswersInvalid,
    QueueItemAlreadyDone,
    QueueItemUnavailable,
    queue_item_next,
    queue_item_reserve,
    queue_item_skip,
    queue_item_submit,
    reservation_seconds,
)
from annotations.queues.models import ItemState, LabelingQueue, LabelingQueueItem
from annotations.queues.progress import queue_progress, queue_progress_for
from annotations.queues.selectors import (
    ITEM_STATES,
    KIND_NOUNS,
    assignee_ids,
    queue_can_label,
    queue_configs,
    queue_get,
    queue_item_answers,
    queue_item_can_label,
    queue_item_get,
    queue_item_previous,
    queue_item_rows,
    queue_item_rows_build,
    queue_item_state,
    queue_items_for,
    queue_items_waiting,
    queue_list,
)
from annotations.queues.services import (
    QueueInvalid,
    QueueItemsNotFound,
    QueueNameTaken,
    queue_create,
    queue_items_add,
    queue_items_add_from_filter,
    queue_update,
)
from evalhub.core.fields import form_error
from evalhub.core.web import htmx_partial, next_or
from evalhub.identity.auth import request_user
from evalhub.identity.roles import is_annotator
from tracing.models import Project
from tracing.query import FilterError

ITEMS_PER_PAGE: Final = 50
LABEL_TEMPLATE: Final = "annotations/queue_label.html"
DETAIL_TEMPLATE: Final = "annotations/queue_detail.html"


def _queue_or_404(request: HttpRequest, queue_id: int) -> LabelingQueue:
    queue = queue_get(queue_id=queue_id, user=request.user)
    if queue is None:
        raise Http404("No such queue.")
    return queue


def _managers_only(request: HttpRequest) -> None:
    """Queues and their items are set up by the team; annotators only label."""
    if is_annotator(request.user):
        raise PermissionDenied("annotators cannot change queues")


# --- list, create, edit -----------------------------------------------------------------------


@login_required
@require_GET
def queues(request: HttpRequest) -> HttpResponse:
    """The queues the user sees, each with its progress and what is left for the user."""
    rows = []
    for queue in queue_list(user=request.user):
        mine = (
            queue_progress_for(queue=queue, user=request.user)
            if queue_can_label(queue=queue, user=request.user)
            else None
        )
        rows.append({"queue": queue, "progress": queue_progress(queue=queue), "mine": mine})
    return render(
        request,
        "annotations/queue_list.html",
        {"rows": rows, "annotator": is_annotator(request.user)},
    )


def _save_form(
    request: HttpRequest, form: QueueForm, queue: LabelingQueue | None
) -> LabelingQueue | None:
    data = form.cleaned_data
    fields = {
        "name": data["name"],
        "instructions": data["instructions"],
        "item_kind": data["item_kind"],
        "assignment_mode": data["assignment_mode"],
        "configs": list(data["configs"]),
        "assignees": list(data["assignees"]),
        "hide_machine_results": data["hide_machine_results"],
    }
    try:
        if queue is None:
            return queue_create(**fields, user=request_user(request))
        return queue_update(queue=queue, **fields)
    except QueueInvalid as exc:
        form_error(form, exc)
    except QueueNameTaken as exc:
        form.add_error("name", str(exc))
    return None


@login_required
@require_http_methods(["GET", "POST"])
def queue_new(request: HttpRequest) -> HttpResponse:
    _managers_only(request)
    form = QueueForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        queue = _save_form(request, form, None)
        if queue is not None:
            messages.success(request, f"Created the queue {queue.name}. Now add items to it.")
            return redirect("annotations:queue-add", queue_id=queue.pk)
    return render(request, "annotations/queue_form.html", {"form": form, "queue": None})


@login_required
@require_http_methods(["GET", "POST"])
def queue_edit(request: HttpRequest, queue_id: int) -> HttpResponse:
    _managers_only(request)
    queue = _queue_or_404(request, queue_id)
    initial = {
        "name": queue.name,
        "instructions": queue.instructions,
        "item_kind": queue.item_kind,
        "assignment_mode": queue.assignment_mode,
        "configs": list(queue.configs.all()),
        "assignees": list(queue.assignees.all()),
        "hide_machine_results": queue.hide_machine_results,
    }
    form = QueueForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        saved = _save_form(request, form, queue)
        if saved is not None:
            messages.success(request, f"Saved the queue {saved.name}.")
            return redirect("annotations:queue", queue_id=saved.pk)
    return render(
        request,
        "annotations/queue_form.html",
        {"form": form, "queue": queue, "has_items": queue.items.exists()},
    )


# --- detail -----------------------------------------------------------------------------------


@login_required
@require_GET
def queue_detail(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Progress (overall and per annotator) and the items with their states. An annotator sees
    their own items and states only. htmx: ``#items`` for the filters and pages, ``#progress``
    (``?part=progress``) for the poll."""
    queue = _queue_or_404(request, queue_id)
    annotator = is_annotator(request.user)
    state = request.GET.get("state", "")
    if state not in ITEM_STATES:
        state = ""
    assignee = None
    if annotator:
        assignee = request.user
    elif request.GET.get("assignee", "").isdigit():
        assignee = queue.assignees.filter(pk=int(request.GET["assignee"])).first()
    page = Paginator(
        queue_item_rows(queue=queue, state=state or None, assignee=assignee),  # type: ignore[arg-type]  # login_required: a signed-in user
        ITEMS_PER_PAGE,
    ).get_page(request.GET.get("page"))
    progress = queue_progress(queue=queue)
    can_label = queue_can_label(queue=queue, user=request.user)
    context: dict[str, Any] = {
        "queue": queue,
        "progress": progress,
        "mine": queue_progress_for(queue=queue, user=request.user) if can_label else None,
        "can_label": can_label,
        "annotator": annotator,
        "page": page,
        "rows": queue_item_rows_build(queue=queue, items=list(page.object_list)),
        "state": state,
        "states": ITEM_STATES,
        "assignee": assignee,
        "assignees": list(queue.assignees.order_by("username")),
        "nouns": KIND_NOUNS[queue.item_kind],
        "configs": queue_configs(queue=queue),
    }
    if htmx_partial(request):
        part = "progress" if request.GET.get("part") == "progress" else "items"
        return render(request, f"{DETAIL_TEMPLATE}#{part}", context)
    return render(request, DETAIL_TEMPLATE, context)


# --- adding items -----------------------------------------------------------------------------


def _added_message(queue: LabelingQueue, added: int, already: int) -> str:
    singular, plural = KIND_NOUNS[queue.item_kind]
    text = f"Added {added} {singular if added == 1 else plural} to {queue.name}."
    if already:
        text += f" {already} {'was' if already == 1 else 'were'} already in it."
    return text


@login_required
@require_http_methods(["GET", "POST"])
def queue_add_filter(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Add items from a filter: project, filter text, cap and sampling rate."""
    _managers_only(request)
    queue = _queue_or_404(request, queue_id)
    initial: dict[str, Any] = {"sample_percent": 100}
    if request.GET.get("project"):
        initial["project"] = Project.objects.filter(name=request.GET["project"]).first()
    form = QueueFilterForm(request.POST or None, initial=initial)
    filter_error: FilterError | None = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = queue_items_add_from_filter(
                queue=queue,
                project=data["project"],
                filter_text=data["filter"],
                limit=data["limit"],
                sample_percent=data["sample_percent"],
            )
        except FilterError as exc:
            filter_error = exc
            form.add_error("filter", f"Column {exc.position}: {exc.message}")
        except QueueInvalid as exc:
            form_error(form, exc)
        else:
            messages.success(request, _added_message(queue, result.added, result.already_queued))
            return redirect("annotations:queue", queue_id=queue.pk)
    return render(
        request,
        "annotations/queue_add.html",
        {
            "queue": queue,
            "form": form,
            "filter_error": filter_error,
            "filter_caret": " " * (filter_error.position - 1) + "^" if filter_error else "",
            "nouns": KIND_NOUNS[queue.item_kind],
        },
    )


@login_required
@require_POST
def queue_add_selected(request: HttpRequest, project: str) -> HttpResponse:
    """The trace browser's bulk action: add the selected rows (``selected``: span, trace or
    session ids, as the queue takes) to the queue ``labeling_queue``; back to the table."""
    _managers_only(request)
    project_row = get_object_or_404(Project, name=project)
    back = next_or(request, reverse("tracing:project", kwargs={"project": project_row.name}))
    raw_queue = request.POST.get("labeling_queue", "")
    queue = queue_get(queue_id=int(raw_queue), user=request.user) if raw_queue.isdigit() else None
    selected = [key for key in request.POST.getlist("selected") if key]
    if queue is None:
        messages.error(request, "Choose a queue to add the selected rows to.")
        return redirect(back)
    if not selected:
        messages.warning(request, "Select rows to add to the queue first.")
        return redirect(back)
    ids_field = {"SPAN": "span_ids", "TRACE": "trace_ids", "SESSION": "session_ids"}
    try:
        result = queue_items_add(
            queue=queue, project=project_row, **{ids_field[queue.item_kind]: selected}
        )
    except (QueueInvalid, QueueItemsNotFound) as exc:
        messages.error(request, f"Nothing was added to {queue.name}: {exc}")
        return redirect(back)
    messages.success(request, _added_message(queue, result.added, result.already_queued))
    return redirect(back)


# --- labelling --------------------------------------------------------------------------------


def _label_url(queue: LabelingQueue, item: LabelingQueueItem | None, skipped: bool) -> str:
    if item is None:
        url = reverse("annotations:queue-label", kwargs={"queue_id": queue.pk})
    else:
        url = reverse("annotations:queue-item", kwargs={"queue_id": queue.pk, "item_id": item.pk})
    return f"{url}?skipped=1" if skipped else url


def _labeler_or_403(request: HttpRequest, queue: LabelingQueue) -> None:
    if not queue_can_label(queue=queue, user=request.user):
        raise PermissionDenied("you do not label in this queue")


@login_required
@require_GET
def queue_label_next(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Reserve the user's next item and go to it; at the end, say so (with progress).
    ``?skipped=1`` goes through the items the user skipped."""
    queue = _queue_or_404(request, queue_id)
    _labeler_or_403(request, queue)
    skipped = request.GET.get("skipped") == "1"
    state = ItemState.SKIPPED if skipped else ItemState.PENDING
    item = queue_item_next(queue=queue, user=request.user, state=state)  # type: ignore[arg-type]  # login_required: a signed-in user
    if item is not None:
        return redirect(_label_url(queue, item, skipped))
    previous = queue_item_previous(queue=queue, user=request.user, item=None)
    return render(
        request,
        LABEL_TEMPLATE,
        {
            "queue": queue,
            "item": None,
            "mine": queue_progress_for(queue=queue, user=request.user),
            "waiting": queue_items_waiting(queue=queue, user=request.user),
            "skipped_left": queue_items_for(
                queue=queue, user=request.user, state=ItemState.SKIPPED
            ).count(),
            "in_skipped": skipped,
            "previous_url": _label_url(queue, previous, False) if previous else "",
            "reservation_minutes": max(1, round(reservation_seconds() / 60)),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def queue_item_label(request: HttpRequest, queue_id: int, item_id: int) -> HttpResponse:
    """One item beside the rubric. GET reserves it for the user; POST ``action=submit`` writes
    the answers (``action=skip`` passes) and goes to the next item."""
    queue = _queue_or_404(request, queue_id)
    item = queue_item_get(queue=queue, item_id=item_id)
    if item is None:
        raise Http404("No such item in this queue.")
    can_label = queue_item_can_label(item=item, user=request.user)
    if not can_label and is_annotator(request.user):
        raise Http404("No such item in this queue.")
    skipped = request.GET.get("skipped") == "1"
    configs = queue_configs(queue=queue)
    form = LabelForm(request.POST or None, configs=configs)
    if request.method == "POST":
        if not can_label:
            raise PermissionDenied("this item is not yours to label")
        try:
            if request.POST.get("action") == "skip":
                queue_item_skip(item=item, user=request.user)  # type: ignore[arg-type]  # login_required: a signed-in user
                return redirect(_label_url(queue, None, skipped))
            if form.is_valid():
                queue_item_submit(item=item, user=request.user, answers=form.answers())  # type: ignore[arg-type]  # login_required: a signed-in user
                return redirect(_label_url(queue, None, skipped))
        except QueueAnswersInvalid as exc:
            form.add_answer_errors(exc.errors)
        except QueueItemAlreadyDone as exc:
            messages.warning(request, str(exc))
            return redirect(_label_url(queue, None, skipped))
        except QueueItemUnavailable as exc:
            messages.error(request, str(exc))
    else:
        form = LabelForm(
            configs=configs,
            answers=queue_item_answers(item=item, user=request.user, configs=configs),
        )

    held_by_other = False
    if can_label:
        held_by_other = not queue_item_reserve(item=item, user=request.user)  # type: ignore[arg-type]  # login_required: a signed-in user
    here = _label_url(queue, item, skipped)
    joiner = "&" if "?" in here else "?"
    my_state = queue_item_state(item=item, user=request.user)
    display = queue_item_display(
        item=item,
        span_url=lambda span_id: f"{here}{joiner}span={span_id}",
        span_id=request.GET.get("span") or None,
        hide_machine_results=queue.hide_machine_results and my_state != ItemState.COMPLETED,
    )
    if htmx_partial(request) and request.method == "GET" and request.GET.get("span"):
        return render(request, f"{LABEL_TEMPLATE}#item_pane", {"display": display})
    previous = queue_item_previous(queue=queue, user=request.user, item=item)
    return render(
        request,
        LABEL_TEMPLATE,
        {
            "queue": queue,
            "item": item,
            "display": display,
            "form": form,
            "can_label": can_label,
            "held_by_other": held_by_other,
            "my_state": my_state,
            "mine": queue_progress_for(queue=queue, user=request.user) if can_label else None,
            "in_skipped": skipped,
            "previous_url": _label_url(queue, previous, False) if previous else "",
            "next_url": _label_url(queue, None, skipped),
            "instructions": queue.instructions,
            "annotator": is_annotator(request.user),
            "has_assignees": bool(assignee_ids(queue)),
        },
        status=400 if request.method == "POST" else 200,
    )
