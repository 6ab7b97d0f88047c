"""The annotator role: people who label the items of their labeling queues and do nothing else.

An annotator is a member of the ``annotator`` group who is not a superuser. Grant the role with
``annotator_role_grant`` (or ``manage.py annotator_role <username>``, or the Groups field of the
user in the admin). ``AnnotatorRestrictionMiddleware`` (after ``AuthenticationMiddleware``) lets
annotators reach only the queue pages, login/logout, the home redirect and the queue API; every
other page or route answers 403, whether the request comes from a browser session or carries
an annotator's API key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

ANNOTATOR_GROUP: Final = "annotator"

# The pages an annotator may open, by URL name (``namespace:name``).
ANNOTATOR_PAGES: Final = frozenset(
    {
        "home",
        "login",
        "logout",
        "annotations:queues",
        "annotations:queue",
        "annotations:queue-label",
        "annotations:queue-item",
    }
)
# The queue API routes (``api:<url_name>``, set on each route in annotations/api_queues.py).
QUEUE_API_ROUTES: Final = frozenset(
    {
        "api:annotation_queues",
        "api:annotation_queues_create",
        "api:annotation_queue",
        "api:annotation_queue_items",
        "api:annotation_queue_items_add",
        "api:annotation_queue_progress",
    }
)
API_PREFIX: Final = "/v1/"
_CACHE_ATTR: Final = "_evalhub_is_annotator"


def is_annotator(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    """Whether ``user`` has the annotator role (a superuser never has it). Cached on ``user``."""
    if user is None or not user.is_authenticated or getattr(user, "is_superuser", False):
        return False
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        cached = user.groups.filter(name=ANNOTATOR_GROUP).exists()  # type: ignore[attr-defined]
        setattr(user, _CACHE_ATTR, cached)
    return bool(cached)


def _group() -> Group:
    group, _ = Group.objects.get_or_create(name=ANNOTATOR_GROUP)
    return group


@transaction.atomic
def annotator_role_grant(*, user: AbstractBaseUser) -> bool:
    """Give ``user`` the annotator role; False when they had it."""
    group = _group()
    had = user.groups.filter(pk=group.pk).exists()  # type: ignore[attr-defined]
    if not had:
        user.groups.add(group)  # type: ignore[attr-defined]
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)
    return not had


@transaction.atomic
def annotator_role_revoke(*, user: AbstractBaseUser) -> bool:
    """Take the annotator role from ``user``; False when they did not have it."""
    group = _group()
    had = user.groups.filter(pk=group.pk).exists()  # type: ignore[attr-defined]
    if had:
        user.groups.remove(group)  # type: ignore[attr-defined]
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)
    return had


def api_key_is_annotators(raw_key: str) -> bool:
    """Whether ``raw_key`` is a live API key of a user with the annotator role."""
    from evalhub.models import ApiKey
    from evalhub.services import api_key_hash

    return ApiKey.objects.filter(
        key_hash=api_key_hash(raw_key.strip()),
        revoked_at__isnull=True,
        user__groups__name=ANNOTATOR_GROUP,
        user__is_superuser=False,
    ).exists()


def _forbidden(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return JsonResponse(
            {"detail": "the annotator role may only use the labeling queue API"}, status=403
        )
    return render(request, "annotations/queue_forbidden.html", status=403)


class AnnotatorRestrictionMiddleware:
    """Answers 403 to annotators outside their pages (``ANNOTATOR_PAGES``) and the queue API
    (``QUEUE_API_ROUTES``). The check runs once the URL is resolved (``process_view``), so
    unknown paths stay 404 and static files (served before this) are untouched. An API key of
    an annotator is looked up only for routes annotators may not use."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        match = request.resolver_match
        view_name = match.view_name if match is not None else ""
        if view_name in ANNOTATOR_PAGES or view_name in QUEUE_API_ROUTES:
            return None
        if is_annotator(getattr(request, "user", None)):
            return _forbidden(request)
        from evalhub.selectors import api_key_from_headers

        raw_key = api_key_from_headers(request.headers)
        if raw_key and api_key_is_annotators(raw_key):
            return _forbidden(request)
        return None


__all__ = [
    "ANNOTATOR_GROUP",
    "ANNOTATOR_PAGES",
    "QUEUE_API_ROUTES",
    "AnnotatorRestrictionMiddleware",
    "annotator_role_grant",
    "annotator_role_revoke",
    "api_key_is_annotators",
    "is_annotator",
]
