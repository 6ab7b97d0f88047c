"""Settings → Budgets: every budget with its spend so far; create and delete (admins)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from evalhub.budgets.forms import BudgetForm
from evalhub.budgets.models import Budget
from evalhub.budgets.selectors import budget_states
from evalhub.budgets.services import BudgetInvalid, budget_create, budget_delete


@login_required
def budgets(request: HttpRequest) -> HttpResponse:
    form = BudgetForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                budget_create(
                    scope=data["scope"],
                    period=data["period"],
                    unit=data["unit"],
                    limit=data["limit"],
                    warn_percent=data["warn_percent"],
                    task=data.get("task"),
                    evaluator=data.get("evaluator"),
                    provider=data.get("provider"),
                    channels=list(data.get("channels") or []),
                )
            except BudgetInvalid as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, "Budget saved.")
                return redirect("budgets:list")
    return render(
        request, "budgets/budgets.html", {"form": form, "states": budget_states()}, status=status
    )


@login_required
@require_POST
def budget_remove(request: HttpRequest, budget_id: int) -> HttpResponse:
    budget_delete(budget=get_object_or_404(Budget, pk=budget_id))
    messages.success(request, "Budget deleted.")
    return redirect("budgets:list")
