"""Site-wide views."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from evalhub.identity.roles import is_annotator
from evalhub.site.navigation import navigation


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The start page is the first page of the main navigation (Projects); annotators start
    at their labeling queues."""
    if is_annotator(request.user):
        return redirect("annotations:queues")
    entries = navigation(request)["nav"]
    return redirect(entries[0]["url"] if entries else "admin:index")  # type: ignore[index]  # entries are dicts with a url
