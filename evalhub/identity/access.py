"""Who may do what: roles of people, scopes of API keys, and what each route needs.

Roles (of a person, see ``user_role``):

- **annotator** — labels the items of their labeling queues, nothing else (the ``annotator``
  group, see ``evalhub.identity.roles``);
- **member** — everyone else who is not an admin: reads everything, sends and logs spans,
  annotates, evaluates, and creates, changes and deletes the team's evaluators (not custom code
  ones), tasks, rubrics, queues and datasets; manages their own API keys;
- **admin** — a superuser, or a staff user who is not in the annotator group: also deletes projects and spans, manages AI providers,
  custom code evaluators, users and everyone's API keys.

Scopes (of an API key, ``ApiKeyScope``): ``ingest`` (OTLP only), ``read``, ``write`` (read +
log spans, annotate, evaluate, team content), ``admin`` (everything). A key of a user is never
more than its user: its power is what both its scope and its user's role grant. A key with no
user has just its scope.

Each route needs one ``Need`` (``evalhub.identity.policy`` says which); ``Principal.can`` decides. The
grants below are the only statement of what a role or a scope allows.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from django.contrib.auth.models import AnonymousUser, User

from evalhub.identity.models import ApiKeyScope

if TYPE_CHECKING:
    from evalhub.identity.models import ApiKey


class Role(enum.StrEnum):
    ANNOTATOR = "annotator"
    MEMBER = "member"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Need(enum.StrEnum):
    """What a route asks of its caller."""

    PUBLIC = "public"  # anyone, signed in or not
    SIGNED_IN = "signed in"  # any person or key but an ingest-only key
    INGEST = "ingest"  # send OTLP spans (with an API key only)
    QUEUE = "queue"  # labeling queues: see one's queues and label their items
    READ = "read"  # read projects, spans, annotations, evaluators, tasks, datasets
    WRITE = "write"  # log spans, annotate, evaluate, create/change/delete team content
    KEYS = "keys"  # manage one's own API keys (an admin: anyone's)
    ADMIN = "admin"  # delete trace data, providers, custom code, users, others' keys


ROLE_GRANTS: Final[dict[Role, frozenset[Need]]] = {
    Role.ANNOTATOR: frozenset({Need.PUBLIC, Need.SIGNED_IN, Need.QUEUE}),
    Role.MEMBER: frozenset(
        {
            Need.PUBLIC,
            Need.SIGNED_IN,
            Need.INGEST,
            Need.QUEUE,
            Need.READ,
            Need.WRITE,
            Need.KEYS,
        }
    ),
    Role.ADMIN: frozenset(Need),
}
SCOPE_GRANTS: Final[dict[str, frozenset[Need]]] = {
    ApiKeyScope.INGEST: frozenset({Need.PUBLIC, Need.INGEST}),
    ApiKeyScope.READ: frozenset({Need.PUBLIC, Need.SIGNED_IN, Need.QUEUE, Need.READ}),
    ApiKeyScope.WRITE: frozenset(
        {Need.PUBLIC, Need.SIGNED_IN, Need.INGEST, Need.QUEUE, Need.READ, Need.WRITE}
    ),
    # Only an admin key manages keys through the API: a leaked write key cannot mint others.
    ApiKeyScope.ADMIN: frozenset(Need),
}
# The widest scope a person of each role may give a key of theirs.
ROLE_MAX_SCOPE: Final[dict[Role, str]] = {
    Role.ANNOTATOR: ApiKeyScope.WRITE,
    Role.MEMBER: ApiKeyScope.WRITE,
    Role.ADMIN: ApiKeyScope.ADMIN,
}
SCOPE_ORDER: Final = (ApiKeyScope.INGEST, ApiKeyScope.READ, ApiKeyScope.WRITE, ApiKeyScope.ADMIN)


def user_role(user: User | AnonymousUser | None) -> Role | None:
    """The role of an active, signed-in ``user``; None for anyone else."""
    if user is None or not user.is_authenticated or not getattr(user, "is_active", False):
        return None
    if getattr(user, "is_superuser", False):
        return Role.ADMIN
    from evalhub.identity.roles import is_annotator

    if is_annotator(user):  # the annotator group wins over is_staff: the narrower role
        return Role.ANNOTATOR
    return Role.ADMIN if getattr(user, "is_staff", False) else Role.MEMBER


def user_is_admin(user: User | AnonymousUser | None) -> bool:
    return user_role(user) == Role.ADMIN


def scope_allowed_for(role: Role | None, scope: str) -> bool:
    """Whether a person of ``role`` may give a key of theirs ``scope`` (None: a user-less key,
    which only an admin makes — checked by the caller)."""
    if role is None:
        return scope in SCOPE_ORDER
    return SCOPE_ORDER.index(scope) <= SCOPE_ORDER.index(ROLE_MAX_SCOPE[role])


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a signed-in person (``key`` None), an API key (with its user, if any),
    or nobody (both None)."""

    user: User | None = None
    key: ApiKey | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.user is None and self.key is None

    @property
    def role(self) -> Role | None:
        return user_role(self.user) if self.user is not None else None

    @property
    def scope(self) -> str | None:
        return self.key.scope if self.key is not None else None

    def can(self, need: Need) -> bool:
        if need == Need.PUBLIC:
            return True
        if self.is_anonymous:
            return False
        if need == Need.INGEST and self.key is None:
            return False  # exporters send spans with a key; a browser session never does
        if self.key is not None and need not in SCOPE_GRANTS.get(self.key.scope, frozenset()):
            return False
        if self.user is None:
            return self.key is not None  # a user-less key: its scope alone
        role = self.role
        return role is not None and need in ROLE_GRANTS[role]

    @property
    def is_admin(self) -> bool:
        return self.can(Need.ADMIN)

    def describe(self) -> str:
        """Who this is, for messages: "the API key 'ci' (read scope, of alice, a member)",
        "alice (annotator)"."""
        if self.key is not None:
            owner = ""
            if self.user is not None:
                owner = f", of {self.user.get_username()}, {_a(self.role)}"
            return f"the API key {self.key.name!r} ({self.key.scope} scope{owner})"
        if self.user is not None:
            return f"{self.user.get_username()} ({self.role or 'deactivated'})"
        return "an anonymous caller"


def _a(role: Role | None) -> str:
    if role is None:
        return "deactivated"
    return f"an {role.value}" if role.value[0] in "aeiou" else f"a {role.value}"


ANONYMOUS: Final = Principal()


def refusal(principal: Principal, need: Need) -> str:
    """Why ``principal`` may not do what needs ``need``: the detail of a 403."""
    wanted = {
        Need.SIGNED_IN: "a signed-in person or a key with read scope or more",
        Need.INGEST: "an API key with ingest, write or admin scope",
        Need.QUEUE: "a signed-in person or a key with read scope or more",
        Need.READ: "a member or admin, or a key with read scope or more",
        Need.WRITE: "a member or admin, or a key with write scope or more",
        Need.KEYS: "a member or admin signed in, or a key with admin scope",
        Need.ADMIN: "an admin, or a key with admin scope (of an admin, or with no user)",
    }.get(need, str(need))
    return f"{principal.describe()} may not do this: it needs {wanted}"


__all__ = [
    "ANONYMOUS",
    "ROLE_GRANTS",
    "SCOPE_GRANTS",
    "Need",
    "Principal",
    "Role",
    "refusal",
    "scope_allowed_for",
    "user_is_admin",
    "user_role",
]
