"""Authentication and the enforcement of the access policy, for every route.

``AccessMiddleware`` (after ``AuthenticationMiddleware``) runs once the URL is resolved:

1. it finds the route's need in ``evalhub.identity.policy`` (a REST operation by its name and method);
2. it works out the caller (``Principal``): for the REST API (``/v1``, OTLP ingest, the OpenAPI
   schema) an API key when the request carries one — the key alone decides, a cookie beside it
   is ignored —, else the browser session, whose unsafe requests (POST, PUT, PATCH, DELETE) must
   then carry Django's CSRF token (``X-CSRFToken``, as the pages' htmx calls send it); for pages
   the session;
3. it refuses what the caller may not do: 401 (API) or the login page (pages) for nobody, 403
   otherwise, with a ``detail`` naming what the route needs;
4. a REST operation that reads a JSON body refuses any other content type with 415 (a
   ``text/plain`` or form body is what a cross-site form or ``fetch`` can send without asking).

Views read the caller from ``request_principal(request)``; ninja operations get the key or the
user as ``request.auth`` from ``ApiKeyAuth``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from ninja.security import APIKeyHeader

from evalhub.core.api_errors import error_response, is_protobuf_request
from evalhub.identity.access import ANONYMOUS, Need, Principal, refusal
from evalhub.identity.models import ApiKey
from evalhub.identity.policy import SAFE_METHODS, api_need, api_operation, is_api_route, page_rule
from evalhub.identity.selectors import api_key_check, api_key_from_headers

logger = logging.getLogger(__name__)

_PRINCIPAL_ATTR: Final = "principal"
JSON_TYPES: Final = ("application/json",)


class Unauthenticated(Exception):
    """A request whose API key cannot be used; the message is the 401's detail."""


# --- who is calling -------------------------------------------------------------------------------


def _key_principal(raw_key: str) -> Principal:
    key, problem = api_key_check(raw_key)
    if key is None:
        raise Unauthenticated(problem or "invalid API key")
    return Principal(user=key.user, key=key)


def _session_principal(request: HttpRequest) -> Principal:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Principal(user=user)
    return ANONYMOUS


def api_principal(request: HttpRequest) -> Principal:
    """The caller of a REST route: its API key if it sends one (raises ``Unauthenticated`` when
    the key cannot be used), else its browser session, else anonymous."""
    raw_key = api_key_from_headers(request.headers)
    if raw_key:
        return _key_principal(raw_key)
    return _session_principal(request)


def request_principal(request: HttpRequest) -> Principal:
    """The caller ``AccessMiddleware`` identified (anonymous before it ran)."""
    return getattr(request, _PRINCIPAL_ATTR, None) or _session_principal(request)


def request_user(request: HttpRequest) -> User | None:
    """The person calling: the signed-in user, or the owner of the request's API key (None for
    a key without one, or nobody)."""
    return request_principal(request).user


def request_api_key(request: HttpRequest) -> ApiKey | None:
    """The live API key the request was authenticated with, if any (the OTLP view's check: the
    middleware has already refused keys that may not ingest)."""
    principal = getattr(request, _PRINCIPAL_ATTR, None)
    if principal is not None:
        return principal.key
    try:
        return api_principal(request).key
    except Unauthenticated:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The client's address for login throttling: the peer's, or with
    ``EVALHUB_TRUSTED_PROXIES`` = n, the n-th address from the right of X-Forwarded-For (the
    one our outermost proxy saw; what clients put further left is not trusted)."""
    from django.conf import settings

    proxies: int = settings.EVALHUB_TRUSTED_PROXIES
    if proxies:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")


# --- CSRF for cookie-authenticated API calls ----------------------------------------------------


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check, answering the reason of a failure instead of a page."""

    def _reject(self, request: HttpRequest, reason: str) -> Any:
        return reason


def _csrf_checked_view(request: HttpRequest) -> HttpResponse:  # pragma: no cover - never called
    raise AssertionError


def csrf_failure(request: HttpRequest) -> str | None:
    """Why the request fails Django's CSRF check (token, origin, referer), or None."""
    check = _CsrfCheck(lambda _request: HttpResponse())
    request.csrf_processing_done = False  # type: ignore[attr-defined]  # CsrfViewMiddleware reads this flag
    check.process_request(request)
    return check.process_view(request, _csrf_checked_view, (), {})  # type: ignore[return-value]  # the check answers None or a refusal


# --- which route, what it needs -----------------------------------------------------------------


def _reads_json(operation: Any) -> bool:
    from ninja.params.models import BodyModel, FileModel, FormModel

    return any(
        issubclass(model, BodyModel) and not issubclass(model, FormModel | FileModel)
        for model in operation.models
    )


def _content_type_refusal(request: HttpRequest) -> str | None:
    """Why a JSON route's body is refused (415), or None."""
    content_type = (request.content_type or "").lower()
    if not content_type:
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.strip() in ("", "0"):
            return None  # no body: the operation says what it misses
    if content_type in JSON_TYPES or content_type.endswith("+json"):
        return None
    return (
        f"Content-Type {content_type or '(none)'!r} is not supported: "
        "send the body as application/json"
    )


# --- refusals -----------------------------------------------------------------------------------


def _json(request: HttpRequest, status: int, detail: str) -> HttpResponse:
    response = error_response(status, detail, protobuf=is_protobuf_request(request))
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="evalhub"'
    return response


def _page_refusal(request: HttpRequest, principal: Principal, need: Need) -> HttpResponse:
    if principal.is_anonymous:
        return redirect_to_login(request.get_full_path())
    raise PermissionDenied(refusal(principal, need))


# --- the middleware ------------------------------------------------------------------------------


class AccessMiddleware:
    """Identifies the caller and enforces ``evalhub.identity.policy`` for every resolved route (see the
    module's docstring). Unknown paths stay 404 and static files (served before) are untouched."""

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
        if match is None:  # pragma: no cover - process_view runs on resolved requests
            return None
        method = (request.method or "GET").upper()
        rule = page_rule(match.view_name)
        if rule is not None:
            return self._page(request, rule.need(method))
        operation = api_operation(match, method)
        if operation is not None:
            name, ninja_operation = operation
            return self._api(request, api_need(name) or _unclassified(name), ninja_operation)
        if is_api_route(match):
            return None  # a method the operation does not take: ninja answers 405
        need = api_need(match.view_name)
        if need is not None:
            return self._api(request, need, None)
        need = _unclassified(match.view_name)
        if request.path.startswith("/v1/"):
            return self._api(request, need, None)
        return self._page(request, need)

    def _page(self, request: HttpRequest, need: Need) -> HttpResponse | None:
        principal = _session_principal(request)
        setattr(request, _PRINCIPAL_ATTR, principal)
        if principal.can(need):
            return None
        return _page_refusal(request, principal, need)

    def _api(self, request: HttpRequest, need: Need, operation: Any) -> HttpResponse | None:
        if need == Need.PUBLIC:
            setattr(request, _PRINCIPAL_ATTR, ANONYMOUS)
            return None
        try:  # a database failure here is answered by DatabaseFailureMiddleware (503)
            principal = api_principal(request)
        except Unauthenticated as exc:
            return _json(request, 401, str(exc))
        setattr(request, _PRINCIPAL_ATTR, principal)
        if principal.is_anonymous:
            return _json(
                request, 401, "missing API key: send 'Authorization: Bearer <key>' (or sign in)"
            )
        unsafe = (request.method or "GET").upper() not in SAFE_METHODS
        if principal.key is None and unsafe:
            reason = csrf_failure(request)
            if reason is not None:
                return _json(
                    request,
                    403,
                    f"CSRF check failed ({reason}): a signed-in browser must send the "
                    "X-CSRFToken header; scripts should use an API key",
                )
        if not principal.can(need):
            return _json(request, 403, refusal(principal, need))
        if unsafe and operation is not None and _reads_json(operation):
            problem = _content_type_refusal(request)
            if problem is not None:
                return _json(request, 415, problem)
        return None


_reported: set[str] = set()


def _unclassified(view_name: str) -> Need:
    """A route the policy does not name: admins only, and said loudly."""
    if view_name not in _reported:
        _reported.add(view_name)
        logger.error(
            "route %r is not in evalhub.identity.policy: only admins may use it", view_name
        )
    return Need.ADMIN


# --- ninja ----------------------------------------------------------------------------------------


def ingest_api_key(headers: Mapping[str, str]) -> ApiKey | None:
    """The valid API key that may send spans, from request headers or gRPC metadata (a
    case-insensitive mapping): ``Authorization: Bearer <key>`` or ``api_key``. The one check
    for both OTLP transports, HTTP (``tracing.ingest.http``) and gRPC (``tracing.ingest.grpc``)."""
    raw_key = api_key_from_headers(headers)
    if not raw_key:
        return None
    key, _problem = api_key_check(raw_key)
    if key is None or not Principal(user=key.user, key=key).can(Need.INGEST):
        return None
    return key


class ApiKeyAuth(APIKeyHeader):
    """Ninja's view of ``AccessMiddleware``'s work: the request's API key, or the signed-in user.
    Declares the bearer scheme in the OpenAPI schema."""

    param_name = "api_key"
    openapi_scheme = "bearer"

    def __call__(self, request: HttpRequest) -> Any:
        principal = getattr(request, _PRINCIPAL_ATTR, None)
        if principal is None:  # the middleware did not run: refuse rather than guess
            return None
        return principal.key or principal.user

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:  # pragma: no cover
        return self(request)


__all__ = [
    "AccessMiddleware",
    "ApiKeyAuth",
    "Unauthenticated",
    "api_principal",
    "csrf_failure",
    "request_api_key",
    "request_principal",
    "request_user",
]
