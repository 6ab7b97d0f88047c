"""Span content as text for the detail pages: durations, JSON indented, scalar values, results,
and nested attributes as the tokens of a ``<details>`` tree.

Span content is user data: everything here returns ``str`` and never marks it safe, so the
templates escape it; JSON is pretty-printed to text for the same reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

# Lists of numbers longer than this are shown by their length (embedding vectors).
MAX_NUMBERS_SHOWN: Final = 16
# JSON longer than this is shown as it came rather than parsed and indented.
MAX_PRETTY_CHARS: Final = 1_000_000


def duration_text(ms: float | None) -> str:
    """``0.42`` → ``"0.42 ms"``, ``812.3`` → ``"812 ms"``, ``1534`` → ``"1.53 s"``,
    ``125000`` → ``"2m 5s"``."""
    if ms is None:
        return ""
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes}m {seconds}s"


def pretty_json(value: Any) -> str:
    """Indented JSON text (non-ASCII kept as is); the caller's template escapes it."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@dataclass(frozen=True, slots=True)
class TextBlock:
    """A value to show in a ``<pre>``: JSON indented when it is JSON, else the text itself."""

    text: str
    is_json: bool


def text_block(value: Any, mime_type: str = "") -> TextBlock | None:
    """``None`` for no value; JSON (by mime type or because it parses as an object or array)
    indented; other text as it is."""
    if value is None:
        return None
    if not isinstance(value, str):
        return TextBlock(pretty_json(value), True)
    stripped = value.strip()
    looks_json = "json" in mime_type.lower() or stripped[:1] in ("{", "[")
    if looks_json and stripped and len(value) <= MAX_PRETTY_CHARS:
        try:
            parsed = json.loads(stripped)
        except ValueError:
            return TextBlock(value, False)
        if isinstance(parsed, dict | list):
            return TextBlock(pretty_json(parsed), True)
    return TextBlock(value, False)


def json_text(value: Any) -> str:
    """A JSON-ish attribute (``llm.invocation_parameters``, ``tool.parameters``) as text."""
    block = text_block(value, "application/json")
    return block.text if block else ""


def scalar_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e6 else f"{value:.4f}"
    if isinstance(value, dict | list):
        return pretty_json(value)
    return str(value)


def result_text(label: str | None, score: float | None) -> str:
    """An evaluation's result as one word: its label, else its score."""
    return label if label is not None else scalar_text(score)


# --- the attribute tree -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TreeItem:
    """One token of a nested ``<details>`` tree, emitted in document order: ``open`` starts a
    branch (``key``, ``summary``), ``close`` ends one, anything else is a leaf."""

    kind: str  # "open" | "close" | "leaf"
    key: str = ""
    value: str = ""
    summary: str = ""
    is_open: bool = False
    multiline: bool = False


def attribute_tree(value: Mapping[str, Any], *, open_depth: int = 1) -> list[TreeItem]:
    """Nested attributes → tokens for nested ``<details>``; branches shallower than
    ``open_depth`` start open. Long lists of numbers (vectors) are summarised by length."""
    items: list[TreeItem] = []
    _tree_walk(value, 0, open_depth, items)
    return items


def _tree_walk(
    value: Mapping[str, Any] | list[Any], depth: int, open_depth: int, out: list[TreeItem]
) -> None:
    pairs: Iterable[tuple[str, Any]] = (
        (((str(k) if k != "" else "(value)"), v) for k, v in value.items())
        if isinstance(value, Mapping)
        else ((f"[{i}]", v) for i, v in enumerate(value))
    )
    for key, child in pairs:
        if isinstance(child, list) and _is_vector(child):
            out.append(TreeItem("leaf", key, f"[{len(child)} numbers]"))
        elif isinstance(child, Mapping | list) and child:
            size = len(child)
            summary = f"{{{size}}}" if isinstance(child, Mapping) else f"[{size}]"
            out.append(TreeItem("open", key, summary=summary, is_open=depth < open_depth))
            _tree_walk(child, depth + 1, open_depth, out)
            out.append(TreeItem("close"))
        else:
            text = (
                scalar_text(child) if not isinstance(child, Mapping | list) else pretty_json(child)
            )
            out.append(TreeItem("leaf", key, text, multiline="\n" in text or len(text) > 120))


def _is_vector(value: list[Any]) -> bool:
    return len(value) > MAX_NUMBERS_SHOWN and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    )
