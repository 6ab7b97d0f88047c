"""The annotator role: people who label the items of their labeling queues and do nothing else.

An annotator is a member of the ``annotator`` group who is not a superuser (the group wins over
``is_staff``: the more restrictive reading). Grant
the role with ``annotator_role_grant`` (or ``manage.py annotator_role <username>``, or the Users
and roles page in Settings). What an annotator may open is decided with every other role in
``evalhub.identity.access`` / ``evalhub.identity.policy``: the labeling queue pages and API (``Need.QUEUE``), and
nothing else.
"""

from __future__ import annotations

from typing import Final

from django.contrib.auth.models import AnonymousUser, Group, User
from django.db import transaction

ANNOTATOR_GROUP: Final = "annotator"
_CACHE_ATTR: Final = "_evalhub_is_annotator"


def is_annotator(user: User | AnonymousUser | None) -> bool:
    """Whether ``user`` has the annotator role (a superuser never has it). Cached on ``user``."""
    if user is None or not user.is_authenticated or getattr(user, "is_superuser", False):
        return False
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        cached = user.groups.filter(name=ANNOTATOR_GROUP).exists()
        setattr(user, _CACHE_ATTR, cached)
    return bool(cached)


def annotator_known(user: User, annotator: bool) -> None:
    """Cache on ``user`` whether they are an annotator, when a query of many people read it."""
    setattr(user, _CACHE_ATTR, annotator)


def _group() -> Group:
    group, _ = Group.objects.get_or_create(name=ANNOTATOR_GROUP)
    return group


@transaction.atomic
def annotator_role_grant(*, user: User) -> bool:
    """Give ``user`` the annotator role; False when they had it."""
    group = _group()
    had = user.groups.filter(pk=group.pk).exists()
    if not had:
        user.groups.add(group)
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)
    return not had


@transaction.atomic
def annotator_role_revoke(*, user: User) -> bool:
    """Take the annotator role from ``user``; False when they did not have it."""
    group = _group()
    had = user.groups.filter(pk=group.pk).exists()
    if had:
        user.groups.remove(group)
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)
    return had


__all__ = ["ANNOTATOR_GROUP", "annotator_role_grant", "annotator_role_revoke", "is_annotator"]
