"""REST routes for API keys (``/v1/api_keys``), with the rules of the API keys page: members
manage their own keys (scopes up to ``write``), admins anyone's and keys with no user. Through
the API with a key, only an ``admin``-scope key manages keys (``Need.KEYS``). The raw key is in
the creation's answer only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from evalhub.identity.access import Principal
from evalhub.identity.auth import request_principal
from evalhub.identity.models import ApiKey
from evalhub.identity.selectors import api_key_list
from evalhub.identity.services import (
    ApiKeyForbidden,
    ApiKeyInvalid,
    api_key_create,
    api_key_revoke,
)

router = Router(tags=["api keys"])


class ApiKeyOut(Schema):
    id: int
    name: str
    prefix: str = Field(description="The first characters of the key, to recognise it.")
    scope: str
    user: str | None = Field(description="The username the key acts for; null: no user.")
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None = Field(description="Updated at most once a minute.")
    expires_at: datetime | None
    revoked_at: datetime | None
    status: str = Field(description="active, expired or revoked")


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="The key itself: shown this once, never stored.")


class ApiKeyListOut(Schema):
    data: list[ApiKeyOut]


class ApiKeyIn(Schema):
    name: str
    scope: str = Field("ingest", description="ingest (OTLP only), read, write or admin")
    expires_at: datetime | None = Field(None, description="When it stops working; null: never.")
    user: str | None = Field(
        None,
        description="Username the key acts for (admins only). Default: the caller's own user; "
        "an admin key with no user makes keys with no user.",
    )


def _status(key: ApiKey) -> str:
    if key.revoked_at is not None:
        return "revoked"
    return "expired" if key.is_expired() else "active"


def _out(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.pk,
        "name": key.name,
        "prefix": key.prefix,
        "scope": key.scope,
        "user": key.user.get_username() if key.user else None,
        "created_at": key.created_at,
        "created_by": key.created_by.get_username() if key.created_by else None,
        "last_used_at": key.last_used_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "status": _status(key),
    }


def _visible(principal: Principal) -> Any:
    """The keys ``principal`` manages: everyone's for an admin, else their own."""
    return api_key_list(user=None if principal.is_admin else principal.user)


def _key(principal: Principal, key_id: int) -> ApiKey:
    key = _visible(principal).filter(pk=key_id).first()
    if key is None:
        raise HttpError(404, f"no API key #{key_id}")
    return key


@router.get("/api_keys", response=ApiKeyListOut, url_name="api_keys_list")
def api_keys_list(request: HttpRequest) -> dict[str, Any]:
    """Your API keys (an admin: everyone's), newest first; revoked and expired ones included."""
    return {"data": [_out(key) for key in _visible(request_principal(request))]}


@router.post("/api_keys", response={201: ApiKeyCreatedOut}, url_name="api_keys_create")
def api_keys_create(request: HttpRequest, body: ApiKeyIn) -> Status:
    principal = request_principal(request)
    owner = principal.user
    if body.user is not None:
        owner = get_user_model()._default_manager.filter(username=body.user).first()
        if owner is None:
            raise HttpError(422, f"user: no user named {body.user!r}")
    try:
        key, raw = api_key_create(
            name=body.name,
            scope=body.scope,
            user=owner,
            expires_at=body.expires_at,
            actor=principal,
        )
    except ApiKeyInvalid as exc:
        raise HttpError(422, str(exc)) from None
    except ApiKeyForbidden as exc:
        raise HttpError(403, str(exc)) from None
    return Status(201, _out(key) | {"key": raw})


@router.get("/api_keys/{key_id}", response=ApiKeyOut, url_name="api_key_get")
def api_key_get(request: HttpRequest, key_id: int) -> dict[str, Any]:
    return _out(_key(request_principal(request), key_id))


@router.delete("/api_keys/{key_id}", response={204: None}, url_name="api_key_revoke")
def api_key_revoke_route(request: HttpRequest, key_id: int) -> Status:
    """Revoke a key: it stops working at once. Revoking a revoked key changes nothing."""
    principal = request_principal(request)
    try:
        api_key_revoke(key=_key(principal, key_id), actor=principal)
    except ApiKeyForbidden as exc:
        raise HttpError(403, str(exc)) from None
    return Status(204, None)
