"""A URL path converter for names and ids that are any string: project names, session ids,
span and trace ids, evaluator names.

Django's ``str`` converter refuses a ``/`` (reversing ``team/app`` raises ``NoReverseMatch``,
a 500), and a percent-encoded slash cannot help: servers decode ``%2F`` before Django sees the
path. Browsers also resolve ``.`` and ``..`` path segments away. So the ``name`` converter
writes such values with ``~`` escapes, one path segment whatever the value holds:

=============  ===================
in the value   in the URL
=============  ===================
``~``          ``~~``
``/``          ``~s``
``.`` / ``..`` ``~d`` / ``~d~d`` (a segment of dots only)
=============  ===================

Everything else is left to ``reverse``'s percent-encoding (spaces, ``%``, ``?``, ``#``,
unicode, control characters). A name without ``~`` or ``/`` reads the same in the URL; a
segment with a broken escape (``a~x``) matches no route (404). Use it in every route that
takes a name: ``path("projects/<name:project>/", ...)``; ninja routes write
``{name:project}``. Code that builds URLs by hand (a placeholder replaced per row) encodes
with ``name_to_url``.
"""

from __future__ import annotations

from urllib.parse import quote

from django.urls import register_converter
from django.utils.http import RFC3986_SUBDELIMS

_ESCAPES = {"~": "~", "s": "/", "d": "."}


def name_to_url(value: str) -> str:
    """``value`` as a path segment (before percent-encoding): ``team/app`` → ``team~sapp``."""
    text = str(value).replace("~", "~~").replace("/", "~s")
    if text and set(text) == {"."}:
        text = "~d" * len(text)
    return text


def name_from_url(segment: str) -> str:
    """The value a path segment stands for; ``ValueError`` for a broken escape."""
    if "~" not in segment:
        return segment
    out: list[str] = []
    chars = iter(segment)
    for char in chars:
        if char != "~":
            out.append(char)
            continue
        escaped = next(chars, "")
        if escaped not in _ESCAPES:
            raise ValueError(f"bad escape in {segment!r}")
        out.append(_ESCAPES[escaped])
    return "".join(out)


def name_segment(value: str) -> str:
    """``value`` as ``reverse`` writes it in a URL: escaped, then percent-encoded. For URLs
    built from one reversed pattern with a placeholder (tables of many rows)."""
    return quote(name_to_url(value), safe=RFC3986_SUBDELIMS + "~:@")


class NameConverter:
    """``<name:project>``: any non-empty string (see the module's docstring)."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        return name_from_url(value)

    def to_url(self, value: str) -> str:
        text = name_to_url(value)
        if not text:
            raise ValueError("an empty name has no URL")
        return text


register_converter(NameConverter, "name")
