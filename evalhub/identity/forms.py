"""Forms of Settings → API keys and Settings → Users and roles."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from evalhub.identity.access import SCOPE_ORDER, Principal, Role, scope_allowed_for
from evalhub.identity.models import ApiKeyScope

NO_USER = ""


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="Where it is used, e.g. “support-bot prod”.")
    scope = forms.ChoiceField(
        initial=ApiKeyScope.INGEST,
        help_text="Ingest: sends spans over OTLP and nothing else — the one for apps' exporter "
        "headers. Read: reads. Write: reads, logs spans, annotates, evaluates. Admin: everything.",
    )
    expires_on = forms.DateField(
        required=False,
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Optional: the key stops working at 00:00 UTC that day.",
    )
    owner = forms.ChoiceField(
        required=False,
        label="Acts for",
        help_text="A key never does more than its person's role allows. A key with no person "
        "has just its scope.",
    )

    def __init__(self, *args: Any, principal: Principal, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.principal = principal
        role = principal.role
        scopes = [s for s in SCOPE_ORDER if principal.is_admin or scope_allowed_for(role, s)]
        scope, owner = self.fields["scope"], self.fields["owner"]
        assert isinstance(scope, forms.ChoiceField) and isinstance(owner, forms.ChoiceField)
        scope.choices = [(s, ApiKeyScope(s).label) for s in scopes]
        if principal.is_admin:
            people = get_user_model()._default_manager.filter(is_active=True).order_by("username")
            owner.choices = [(str(user.pk), user.get_username()) for user in people] + [
                (NO_USER, "— no person (a service) —")
            ]
            self.fields["owner"].initial = str(principal.user.pk) if principal.user else NO_USER
        else:
            del self.fields["owner"]

    def clean_expires_on(self) -> datetime | None:
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        moment = datetime.combine(day, time.min, tzinfo=UTC)
        if moment <= timezone.now():
            raise forms.ValidationError("Choose a day after today.")
        return moment

    def owner_user(self) -> Any:
        if "owner" not in self.fields:
            return self.principal.user
        chosen = self.cleaned_data.get("owner") or NO_USER
        if chosen == NO_USER:
            return None
        return get_user_model()._default_manager.filter(pk=int(chosen)).first()


ROLE_CHOICES = [
    (Role.ANNOTATOR.value, "Annotator — labels the items of their annotation queues, nothing else"),
    (Role.MEMBER.value, "Member — reads, annotates, evaluates, manages the team's content"),
    (Role.ADMIN.value, "Admin — also deletes trace data, manages providers, users and keys"),
]


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Role.MEMBER.value)
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to get a one-time link with which they choose their own.",
    )


class UserRoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)
