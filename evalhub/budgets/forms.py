from __future__ import annotations

from django import forms

from evalhub.budgets.models import BudgetPeriod, BudgetScope, BudgetUnit
from evalhub.budgets.notify import channel_choices
from evalhub.evaluators.models import Evaluator
from evalhub.providers.models import Provider
from evalhub.tasks.models import Task


class BudgetForm(forms.Form):
    scope = forms.ChoiceField(choices=BudgetScope.choices, label="Covers")
    task = forms.ModelChoiceField(queryset=Task.objects.order_by("name"), required=False)
    evaluator = forms.ModelChoiceField(queryset=Evaluator.objects.order_by("name"), required=False)
    provider = forms.ModelChoiceField(queryset=Provider.objects.order_by("name"), required=False)
    period = forms.ChoiceField(choices=BudgetPeriod.choices)
    unit = forms.ChoiceField(choices=BudgetUnit.choices)
    limit = forms.FloatField(min_value=0.000001)
    warn_percent = forms.IntegerField(min_value=1, max_value=100, initial=80, label="Warn at (%)")
    channels = forms.ModelMultipleChoiceField(
        queryset=channel_choices(),
        required=False,
        label="Warn through",
        help_text="Notification channels (Settings → Notification channels); none: this page.",
        widget=forms.CheckboxSelectMultiple,
    )
