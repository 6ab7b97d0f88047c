"""Site-wide views."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from evalhub.navigation import navigation


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The start page is the first page of the main navigation (Projects)."""
    entries = navigation(request)["nav"]
    return redirect(entries[0]["url"] if entries else "admin:index")  # type: ignore[index]
