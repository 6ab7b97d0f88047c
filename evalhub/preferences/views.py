"""Settings → Preferences: the time zone of one's pages."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from evalhub.core.fields import form_error
from evalhub.identity.auth import request_user
from evalhub.preferences.forms import TimeZoneForm
from evalhub.preferences.middleware import BROWSER_COOKIE
from evalhub.preferences.selectors import user_time_zone
from evalhub.preferences.services import PreferencesInvalid, user_time_zone_set
from evalhub.preferences.zones import zone_get

TEMPLATE = "evalhub/settings/preferences.html"


@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    if user is None:  # the access policy lets only signed-in people here
        raise PermissionDenied
    browser = request.COOKIES.get(BROWSER_COOKIE, "")
    browser_zone = browser if zone_get(browser) is not None else ""
    initial = {"time_zone": user_time_zone(user=user)}
    form = TimeZoneForm(request.POST or None, initial=initial, browser_zone=browser_zone)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                user_time_zone_set(user=user, time_zone=form.cleaned_data["time_zone"])
            except PreferencesInvalid as exc:
                form_error(form, exc)
            else:
                messages.success(request, "Saved your preferences.")
                return redirect("settings:preferences")
    return render(request, TEMPLATE, {"form": form, "browser_zone": browser_zone}, status=status)
