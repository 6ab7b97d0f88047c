"""Requests EvalHub makes to addresses its users configure (LLM providers; webhooks later), kept
away from the denied networks and names of ``EVALHUB_OUTBOUND_DENY`` — by default link-local
addresses (``169.254.0.0/16``, where cloud metadata services answer, and ``fe80::/10``) and the
metadata names and addresses of the large clouds. Loopback and private networks are allowed
unless listed: self-hosted models often live there.

- ``outbound_url_check(url)`` when a URL is saved: the scheme, then the host name and every
  address it resolves to. Raises ``OutboundDenied`` (a ``ValueError`` with ``field``).
- ``OutboundTransport`` / ``outbound_http_client()`` for every request: ``httpx2`` (the HTTP
  client of the ``openai`` SDK) connections that resolve the
  host, check every address and connect to a checked one — so a name that resolved to an allowed
  address when it was saved and now resolves to a denied one (DNS rebinding) is refused when the
  request is made, before a byte (or a key) is sent.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpcore2
import httpx2

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class OutboundDenied(ValueError):
    """A URL or address EvalHub will not send requests to; ``field`` names the input."""

    def __init__(self, *, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


@lru_cache(maxsize=8)
def _deny_list(entries: tuple[str, ...]) -> tuple[tuple[IPNetwork, ...], frozenset[str]]:
    networks: list[IPNetwork] = []
    names: set[str] = set()
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(_host_name(entry))
    return tuple(networks), frozenset(names)


def outbound_deny_list() -> tuple[tuple[IPNetwork, ...], frozenset[str]]:
    """The denied networks and host names (``EVALHUB_OUTBOUND_DENY``)."""
    from django.conf import settings

    return _deny_list(tuple(settings.EVALHUB_OUTBOUND_DENY))


def _host_name(host: str) -> str:
    return host.strip().lower().rstrip(".")


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # without an IPv6 zone
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254
    return address


def outbound_address_check(host: str, address: str, *, field: str = "url") -> None:
    """Raise ``OutboundDenied`` if ``address`` (what ``host`` resolved to) is denied."""
    networks, _names = outbound_deny_list()
    ip = _address(address)
    if ip is None:
        raise OutboundDenied(field=field, message=f"{host} resolved to {address!r}, not an address")
    for network in networks:
        if ip.version == network.version and ip in network:
            shown = host if host == address else f"{host} ({address})"
            raise OutboundDenied(
                field=field,
                message=f"{shown} is in a denied network ({network}, EVALHUB_OUTBOUND_DENY)",
            )


def outbound_host_check(host: str, *, field: str = "url") -> list[str]:
    """Check ``host``'s name and every address it resolves to; the addresses, in the resolver's
    order. A name that does not resolve gives an empty list (it may resolve where the request
    is made, and is checked there)."""
    _networks, names = outbound_deny_list()
    name = _host_name(host)
    if name in names:
        raise OutboundDenied(
            field=field, message=f"{host} is a denied host name (EVALHUB_OUTBOUND_DENY)"
        )
    literal = name.strip("[]")
    addresses = [literal] if _address(literal) is not None else _resolve(name)
    for address in addresses:
        outbound_address_check(host, address, field=field)
    return addresses


def _resolve(host: str, port: int | None = None) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    seen: dict[str, None] = {}
    for _family, _type, _proto, _canonical, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


def outbound_url_check(url: str, *, field: str = "url") -> None:
    """Raise ``OutboundDenied`` (naming ``field``) unless ``url`` is an http(s) URL whose host is
    neither a denied name nor resolves to a denied address."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 — raises ValueError for a bad port
    except ValueError as exc:
        raise OutboundDenied(field=field, message=f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise OutboundDenied(field=field, message="must start with http:// or https://")
    if not host:
        raise OutboundDenied(field=field, message="has no host name")
    outbound_host_check(host, field=field)


class _CheckedBackend(httpcore2.SyncBackend):
    """Connects only to checked addresses: the host is resolved here, each address checked,
    and the connection made to the first that answers — the one that was checked."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        addresses = outbound_host_check(host)
        if not addresses:
            raise httpcore2.ConnectError(f"cannot resolve {host}")
        error: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(
                    address, port, timeout, local_address, socket_options=socket_options
                )
            except httpcore2.ConnectError as exc:
                error = exc
        assert error is not None
        raise error


class OutboundTransport(httpx2.HTTPTransport):
    """``httpx2.HTTPTransport`` over ``_CheckedBackend`` (TLS still verifies the host name)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # httpx2 has no parameter for httpcore2's network backend: give the pool ours.
        pool = self._pool
        assert isinstance(pool, httpcore2.ConnectionPool), "no proxy: the pool connects itself"
        pool._network_backend = _CheckedBackend()


def outbound_http_client(**kwargs: Any) -> httpx2.Client:
    """An ``httpx2`` client for requests to user-configured URLs (``kwargs`` as for
    ``httpx2.Client``). Proxies from the environment are not used — a proxy would connect
    wherever it is told —, its TLS settings (``SSL_CERT_FILE``…) are."""
    return httpx2.Client(transport=OutboundTransport(), trust_env=False, **kwargs)


__all__ = [
    "OutboundDenied",
    "OutboundTransport",
    "outbound_address_check",
    "outbound_deny_list",
    "outbound_host_check",
    "outbound_http_client",
    "outbound_url_check",
]
