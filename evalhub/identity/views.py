"""Settings → API keys (everyone but annotators: their own keys; admins: everyone's) and
Settings → Users and roles (admins), and the one-time set-password page.

Who may open each page is decided by ``evalhub.identity.policy``; the services enforce the finer rules
(whose keys, which scopes, not oneself, not the last admin)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from evalhub.identity.access import user_role
from evalhub.identity.auth import request_principal, request_user
from evalhub.identity.forms import ApiKeyForm, UserCreateForm, UserRoleForm
from evalhub.identity.selectors import api_key_list, user_get, user_list
from evalhub.identity.services import (
    ApiKeyForbidden,
    ApiKeyInvalid,
    UserInvalid,
    api_key_create,
    api_key_revoke,
    set_password_link,
    user_active_set,
    user_create,
    user_role_change,
)

API_KEYS_TEMPLATE = "evalhub/settings/api_keys.html"
USERS_TEMPLATE = "evalhub/settings/users.html"
USER_TEMPLATE = "evalhub/settings/user.html"
LOGIN_TEMPLATE = "registration/login.html"


# --- API keys ---------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    """The keys one manages, and a form to make one; a new key is shown on this answer only."""
    principal = request_principal(request)
    form = ApiKeyForm(request.POST or None, principal=principal)
    created = None
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                key, raw = api_key_create(
                    name=form.cleaned_data["name"],
                    scope=form.cleaned_data["scope"],
                    user=form.owner_user(),
                    expires_at=form.cleaned_data["expires_on"],
                    actor=principal,
                )
            except ApiKeyInvalid as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            except ApiKeyForbidden as exc:
                raise PermissionDenied(str(exc)) from None
            else:
                created, status = {"key": key, "raw": raw}, 201
                form = ApiKeyForm(principal=principal)
    keys = api_key_list(user=None if principal.is_admin else principal.user)
    context = {
        "form": form,
        "keys": keys,
        "created": created,
        "now": timezone.now(),
        "everyone": principal.is_admin,
    }
    return render(request, API_KEYS_TEMPLATE, context, status=status)


@require_POST
def api_key_revoke_view(request: HttpRequest, key_id: int) -> HttpResponse:
    principal = request_principal(request)
    key = api_key_list(user=None if principal.is_admin else principal.user).filter(pk=key_id)
    found = key.first()
    if found is None:
        raise Http404("no such API key")
    try:
        revoked = api_key_revoke(key=found, actor=principal)
    except ApiKeyForbidden as exc:
        raise PermissionDenied(str(exc)) from None
    if revoked:
        messages.success(request, f"Revoked the key {found.name} ({found.prefix}…).")
    else:
        messages.info(request, f"The key {found.name} was already revoked.")
    return redirect("settings:api-keys")


# --- users and roles --------------------------------------------------------------------------


def _link(request: HttpRequest, user: Any) -> str:
    return request.build_absolute_uri(set_password_link(user=user).path)


@require_http_methods(["GET", "POST"])
def users(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    created: dict[str, Any] | None = None
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                user, link = user_create(
                    username=form.cleaned_data["username"],
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    password=form.cleaned_data["password"] or None,
                )
            except UserInvalid as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                status = 201
                created = {
                    "user": user,
                    "link": request.build_absolute_uri(link.path) if link else None,
                }
                form = UserCreateForm()
    people = [{"user": u, "role": user_role(u) if u.is_active else None} for u in user_list()]
    return render(
        request,
        USERS_TEMPLATE,
        {
            "form": form,
            "people": people,
            "created": created,
            "link_days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def user_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    """One person: change the role, deactivate or reactivate, make a new set-password link."""
    person = user_get(user_id)
    if person is None:
        raise Http404("no such user")
    actor = request_user(request)
    assert actor is not None  # an admin's page (evalhub.identity.policy)
    role_form = UserRoleForm(initial={"role": (user_role(person) or "member")})
    link = None
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "role":
                role_form = UserRoleForm(request.POST)
                if role_form.is_valid():
                    user_role_change(user=person, role=role_form.cleaned_data["role"], actor=actor)
                    messages.success(request, f"{person.get_username()} is now {_role(person)}.")
                    return redirect("settings:user", user_id=person.pk)
                status = 400
            elif action in ("deactivate", "reactivate"):
                user_active_set(user=person, active=action == "reactivate", actor=actor)
                done = "Reactivated" if action == "reactivate" else "Deactivated"
                messages.success(request, f"{done} {person.get_username()}.")
                return redirect("settings:user", user_id=person.pk)
            elif action == "link":
                link = _link(request, person)
            else:
                status = 400
                messages.error(request, "Unknown action.")
        except UserInvalid as exc:
            status = 400
            messages.error(request, str(exc).split(": ", 1)[-1].capitalize() + ".")
    context = {
        "person": person,
        "role": user_role(person) if person.is_active else None,
        "role_form": role_form,
        "link": link,
        "keys": api_key_list(user=person),
        "now": timezone.now(),
        "is_me": person.pk == request.user.pk,
    }
    return render(request, USER_TEMPLATE, context, status=status)


def _role(person: Any) -> str:
    person.refresh_from_db()
    for attr in ("_evalhub_is_annotator",):
        if hasattr(person, attr):
            delattr(person, attr)
    role = user_role(person)
    return f"{'an' if role and role.value[0] in 'aeiou' else 'a'} {role}" if role else "inactive"


# --- login throttling ---------------------------------------------------------------------------


def login_locked_out(
    request: HttpRequest, response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """What a refused login gets (django-axes' ``AXES_LOCKOUT_CALLABLE``): the login form with
    the reason, or JSON for an API client, with 429."""
    from django.contrib.auth.forms import AuthenticationForm

    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    message = (
        "Too many failed logins for this account or from this address: "
        f"try again in {minutes} minutes."
    )
    if request.path.startswith("/v1/") or "application/json" in request.headers.get("Accept", ""):
        locked: HttpResponse = JsonResponse({"detail": message}, status=429)
    else:
        # An unbound form: validating it would try the password again.
        form = AuthenticationForm(request, initial={"username": request.POST.get("username", "")})
        context = {"form": form, "next": request.POST.get("next", ""), "lockout": message}
        locked = render(request, LOGIN_TEMPLATE, context, status=429)
    locked["Retry-After"] = str(minutes * 60)
    return locked


# --- the one-time set-password link -------------------------------------------------------------


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """Django's password-reset confirmation, as the target of the links the Users page makes.
    The token is single-use (choosing a password voids it) and expires after
    ``PASSWORD_RESET_TIMEOUT``."""

    template_name = "registration/set_password.html"
    success_url = reverse_lazy("login")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, "Your password is set: log in with it.")
        return response


set_password = SetPasswordView.as_view()
