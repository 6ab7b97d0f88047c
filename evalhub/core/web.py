"""Helpers every page view shares: whether htmx asked for a part of the page, where a form
goes back to, and the 404 of a row that is not there."""

from __future__ import annotations

from django.http import Http404, HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme


def htmx_partial(request: HttpRequest) -> bool:
    """Whether to answer with the part of the page htmx swaps: an htmx request that is not a
    history restore (which needs the whole page)."""
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.history_restore_request


def next_or(request: HttpRequest, fallback: str) -> str:
    """The posted ``next`` page when it is on this site, else ``fallback``."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def found_or_404[T](found: T | None, what: str) -> T:
    """``found``, or a 404 "no such ``what``" when a selector found nothing."""
    if found is None:
        raise Http404(f"no such {what}")
    return found
