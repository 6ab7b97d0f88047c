"""REST routes of budgets: ``/v1/budgets``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db.models import Q
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from evalhub.budgets.models import Budget
from evalhub.budgets.notify import channel_choices
from evalhub.budgets.selectors import BudgetState, budget_list, budget_states
from evalhub.budgets.services import BudgetInvalid, budget_create, budget_delete
from evalhub.core.paging import Page, Pages, page_from_id, paged
from evalhub.evaluators.selectors import evaluator_get
from evalhub.providers.models import Provider
from evalhub.tasks.models import Task

router = Router(tags=["budgets"])


class BudgetIn(Schema):
    scope: str = Field(..., description="global, task, evaluator or provider")
    period: str = Field(..., description="day or month (UTC)")
    unit: str = Field(..., description="usd or tokens")
    limit: float
    warn_percent: int = 80
    task_id: int | None = None
    evaluator: str | None = Field(None, description="An evaluator's name or id")
    provider_id: int | None = None
    channels: list[str] = Field(
        default_factory=list,
        description="Notification channels (names or ids) the warning goes through, once a period",
    )


class BudgetOut(Schema):
    id: int
    scope: str
    target: str
    task_id: int | None
    evaluator_id: int | None
    provider_id: int | None
    period: str
    unit: str
    limit: float
    warn_percent: int
    period_start: date
    spent: float = Field(..., description="This period, from the calls' recorded tokens/cost")
    calls: int
    reached: bool
    warning: bool
    channels: list[str]
    warned_at: datetime | None = Field(None, description="When this period's warning was sent")
    warned_channels: int = Field(0, description="Messages the warning sent (0: page only)")


def _out(state: BudgetState) -> dict[str, Any]:
    b = state.budget
    return {
        "id": b.pk, "scope": b.scope, "target": b.target, "task_id": b.task_id,
        "evaluator_id": b.evaluator_id, "provider_id": b.provider_id, "period": b.period,
        "unit": b.unit, "limit": b.limit, "warn_percent": b.warn_percent,
        "period_start": state.period_start, "spent": state.spent, "calls": state.calls,
        "reached": state.reached, "warning": state.warning, "channels": state.channel_names,
        "warned_at": state.warned_at, "warned_channels": state.warned_channels,
    }  # fmt: skip


@router.get("/budgets", response=list[BudgetOut])
@paged()
def budgets_list(request: HttpRequest) -> Pages:
    """Every budget with its spend in the current period, oldest first, a page at a time."""

    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        query = budget_list().order_by("id")
        page = page_from_id(query, cursor=cursor, limit=limit, descending=False)
        return Page([_out(state) for state in budget_states(page.items)], page.next_cursor)

    return pages


@router.post("/budgets", response={201: BudgetOut})
def budgets_create(request: HttpRequest, body: BudgetIn) -> Status:
    task = evaluator = provider = None
    if body.task_id is not None:
        task = Task.objects.filter(pk=body.task_id).first()
        if task is None:
            raise HttpError(404, f"task_id: no task {body.task_id}")
    if body.evaluator is not None:
        evaluator = evaluator_get(body.evaluator)
        if evaluator is None:
            raise HttpError(404, f"evaluator: no evaluator {body.evaluator!r}")
    if body.provider_id is not None:
        provider = Provider.objects.filter(pk=body.provider_id).first()
        if provider is None:
            raise HttpError(404, f"provider_id: no provider {body.provider_id}")
    channels = []
    for ident in body.channels:
        found = (
            channel_choices()
            .filter(
                Q(name=ident) | (Q(pk=int(ident)) if ident.isdigit() and len(ident) < 13 else Q())
            )
            .first()
        )
        if found is None:
            raise HttpError(422, f"channels: no notification channel {ident!r}")
        channels.append(found)
    try:
        budget = budget_create(
            scope=body.scope, period=body.period, unit=body.unit, limit=body.limit,
            warn_percent=body.warn_percent, task=task, evaluator=evaluator, provider=provider,
            channels=channels,
        )  # fmt: skip
    except BudgetInvalid as exc:
        raise HttpError(422, str(exc)) from None
    state = next(s for s in budget_states() if s.budget.pk == budget.pk)
    return Status(201, _out(state))


@router.delete("/budgets/{budget_id}", response={204: None})
def budgets_delete(request: HttpRequest, budget_id: int) -> Status:
    budget = Budget.objects.filter(pk=budget_id).first()
    if budget is None:
        raise HttpError(404, f"budget {budget_id} not found")
    budget_delete(budget=budget)
    return Status(204, None)
