"""Built-in code evaluators: deterministic checks with parameters.

Each check reads a ``CodeInput`` and returns an ``Outcome``. The score is 1.0 when the condition
the check is named after holds (a match, valid JSON, within budget, an error status, PII found,
…) and 0.0 when not; ``string_similarity`` scores the similarity itself (0..1). A check that
cannot run (no reference to compare with, no latency without a span) raises ``CheckError``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import jsonschema


class CheckError(ValueError):
    """The check cannot run on this input; the message says why."""


@dataclass(frozen=True, slots=True)
class CodeInput:
    input: str | None
    output: str | None
    reference: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    span: dict[str, Any] = field(default_factory=dict)  # name, kind, status_code, latency_ms…
    documents: tuple[str, ...] = ()  # the span's retrieved documents' contents, in order


@dataclass(frozen=True, slots=True)
class Outcome:
    label: str | None
    score: float | None
    explanation: str | None = None
    # One outcome per retrieved document, in the documents' order (document checks only).
    documents: tuple[Outcome, ...] = ()


def _target(data: CodeInput, params: Mapping[str, Any]) -> str:
    which = params.get("target", "output")
    value = data.input if which == "input" else data.output
    if value is None:
        raise CheckError(f"the span has no {which}")
    return value


def _reference(data: CodeInput) -> str:
    if data.reference is None:
        raise CheckError("no reference: map one (metadata.<key>) or paste it")
    return data.reference


def _flag(condition: bool, yes: str, no: str, explanation: str | None = None) -> Outcome:
    return Outcome(yes if condition else no, 1.0 if condition else 0.0, explanation)


def exact_match(data: CodeInput, params: Mapping[str, Any]) -> Outcome:
    value, reference = _target(data, params), _reference(data)
    if params["strip"]:
        value, reference = value.strip(), reference.strip()
    if not params["case_sensitive"]:
        value, reference = value.casefold(), reference.casefold()
    return _flag(value == reference, "match", "no_match")


def regex(data: CodeInput, params: Mapping[str, Any]) -> Outcome:
    value = _target(data, params)
    flags = re.IGNORECASE if params["ignore_case"] else 0
    pattern = re.compile(params["pattern"], flags | re.MULTILINE)
    found = pattern.fullmatch(value) if params["full_match"] else pattern.search(value)
    return _flag(
        found is not None,
        "match",
        "no_match",
        f"matched {found.group(0)[:200]!r}" if found else None,
    )


def contains_keywords(data: CodeInput, params: Mapping[str, Any]) -> Outcome:
    value = _target(data, params)
    haystack = value if params["case_sensitive"] else value.casefold()
    keywords = params["keywords"]
    present = [k for k in keywords if (k if params["case_sensitive"] else k.casefold()) in haystack]
    missing = [k for k in keywords if k not in present]
    ok = bool(present) if params["mode"] == "any" else not missing
    explanation = f"found: {', '.join(present) or 'none'}; missing: {', '.join(missing) or 'none'}"
    return _flag(ok, "contains", "does_not_contain", explanation)


def valid_json(data: CodeInput, params: Mapping[str, Any]) -> Outcome:
    value = _target(data, params)
    try:
        json.loads(value)
    except ValueError as exc:
        return Outcome("invalid", 0.0, f"not JSON: {exc}")
    return Outcome("valid", 1.0)


def json_schema(data: CodeInput, params: Mapping[str, Any]) -> Outcome:
    value = _target(data, params)
    try:
        document = json.loads(value)
    except ValueError as exc:
        return Outcome("invalid", 0.0, f"not JSON: {exc}")
    validator = jsonschema.Draft202012Validator(params["schema"])
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
        return Outcome("invalid", 0.0, f"{where}: {errors[0].message}")
    return Outcome("valid", 1.0)


def length_bounds(data: CodeInput, params: Mapping[str, Any]) -> Outcome:
    value = _target(data, params)
    unit = params["unit"]
    size = len(value.split()) if unit == "words" else len(value)
    low, high = params.get("min"), params.get("max")
    too_short = low is not None and size < low
    too_long = high is not None and size > high
    label = "too_short" if too_short else "too_long" if too_long else "within_bounds"
    bounds = f"[{low if low is not None else 0}, {high if high is not None else '∞'}]"
    return Outcome(label, 0.0 if too_short or too_long else 1.0, f"{size} {unit}, bounds {bounds}")


def latency_budget(data: CodeInput, params: Mapping[str, Any]) -> Outcome:
    latency = data.span.get("latency_ms")
    if latency is None:
        raise CheckError("no latency: pick a span or paste latency_ms")
    budget = params["max_ms"]
    return _flag(
        float(latency) <= budget,
        "within_budget",
        "over_budget",
        f"{float(latency):.0f} ms, budget {budget:g} ms",
    )


def status_is_error(data: CodeInput, params: Mapping[str, Any]) -> Outcome:
    status = data.span.get("status_code")
    if status is None:
        raise CheckError("no status: pick a span or paste status_code")
    message = data.span.get("status_message") or None
    return _flag(str(status).upper() == "ERROR", "error", "ok", message)


def _luhn(number: str) -> bool:
    digits = [int(d) for d in number if d.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


# In this order: each kind's matches are blanked out before the next kinds are looked for, so
# a card number or an SSN is not also counted as a phone number.
PII_PATTERNS: dict[str, tuple[re.Pattern[str], Callable[[str], bool] | None]] = {
    "email": (re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"), None),
    "credit_card": (re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), _luhn),
    "iban": (re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), None),
    "ssn": (re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b"), None),
    "ip_address": (
        re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"),
        None,
    ),
    "phone": (
        re.compile(
            r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)|\d{2,4})[\s.-]\d{3,4}[\s.-]\d{3,4}\b"
        ),
        None,
    ),
}


def pii(data: CodeInput, params: Mapping[str, Any]) -> Outcome:
    """Names the kinds found and how many, never the values (they would be copied into
    the annotation)."""
    text = _target(data, params)
    counts = {}
    for kind, (pattern, verify) in PII_PATTERNS.items():
        hits = 0

        def blank(match: re.Match[str], verify: Callable[[str], bool] | None = verify) -> str:
            nonlocal hits
            if verify is not None and not verify(match.group(0)):
                return match.group(0)
            hits += 1
            return " " * len(match.group(0))

        text = pattern.sub(blank, text)
        if hits and kind in params["kinds"]:
            counts[kind] = hits
    explanation = ", ".join(f"{kind} ({n})" for kind, n in counts.items()) or None
    return _flag(bool(counts), "pii_found", "no_pii", explanation)


def _levenshtein_ratio(a: str, b: str) -> float:
    if not a and not b:
        return 1.0
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return 1.0 - previous[-1] / max(len(a), len(b))


def _jaccard(a: str, b: str) -> float:
    left, right = set(a.split()), set(b.split())
    if not left and not right:
        return 1.0
    return len(left & right) / len(left | right)


SIMILARITY = {
    "ratio": lambda a, b: difflib.SequenceMatcher(None, a, b, autojunk=False).ratio(),
    "levenshtein": _levenshtein_ratio,
    "jaccard": _jaccard,
}


def string_similarity(data: CodeInput, params: Mapping[str, Any]) -> Outcome:
    value, reference = _target(data, params), _reference(data)
    if not params["case_sensitive"]:
        value, reference = value.casefold(), reference.casefold()
    if params["method"] == "levenshtein" and len(value) * len(reference) > 25_000_000:
        raise CheckError("texts too long for levenshtein; use ratio or jaccard")
    similarity = round(SIMILARITY[params["method"]](value.strip(), reference.strip()), 4)
    label = "similar" if similarity >= params["threshold"] else "dissimilar"
    return Outcome(label, similarity, f"{params['method']} similarity {similarity:.3f}")


_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) >= 3}


def document_relevance(data: CodeInput, params: Mapping[str, Any]) -> Outcome:
    """Each retrieved document against the span's input (the query): the share of the
    query's words (3 letters or more) the document contains; ``relevant`` from ``threshold``.
    One outcome per document; the span's own is the share of relevant documents."""
    if not data.documents:
        raise CheckError("the span has no retrieved documents")
    query = _words(_target(data, params))
    if not query:
        raise CheckError(f"the span's {params.get('target', 'input')} has no words to look for")
    threshold = params["threshold"]
    outcomes = []
    for content in data.documents:
        found = query & _words(content)
        share = len(found) / len(query)
        outcomes.append(
            Outcome(
                "relevant" if share >= threshold else "irrelevant",
                round(share, 4),
                f"{len(found)} of {len(query)} query words: {', '.join(sorted(found)) or 'none'}",
            )
        )
    relevant = sum(o.label == "relevant" for o in outcomes)
    return Outcome(
        "relevant" if relevant else "irrelevant",
        round(relevant / len(outcomes), 4),
        f"{relevant} of {len(outcomes)} documents relevant",
        tuple(outcomes),
    )


CHECKS: dict[str, Callable[[CodeInput, Mapping[str, Any]], Outcome]] = {
    "exact_match": exact_match,
    "regex": regex,
    "contains_keywords": contains_keywords,
    "valid_json": valid_json,
    "json_schema": json_schema,
    "length_bounds": length_bounds,
    "latency_budget": latency_budget,
    "status_is_error": status_is_error,
    "pii": pii,
    "string_similarity": string_similarity,
    "document_relevance": document_relevance,
}


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a built-in check, declared once: its type and default are what
    ``params_validate`` checks, its label and kind what the evaluator form shows. ``kind``:
    bool, text, int, number, lines (a list, one per line), json (an object), choice (one of
    ``options``), multi (several of ``options``). ``default=...``: required."""

    name: str
    kind: str
    label: str
    default: Any = None
    options: tuple[str, ...] = ()
    help_text: str = ""

    @property
    def types(self) -> type | tuple[type, ...]:
        return _KIND_TYPES[self.kind]


_KIND_TYPES: Final[dict[str, type | tuple[type, ...]]] = {
    "bool": bool,
    "text": str,
    "int": int,
    "number": (int, float),
    "lines": list,
    "json": dict,
    "choice": str,
    "multi": list,
}
_TARGET = Param("target", "choice", "Check the span's", "output", ("output", "input"))
PARAMS: Final[dict[str, tuple[Param, ...]]] = {
    "exact_match": (
        _TARGET,
        Param("case_sensitive", "bool", "Case-sensitive", True),
        Param("strip", "bool", "Ignore leading and trailing whitespace", True),
    ),
    "regex": (
        _TARGET,
        Param("pattern", "text", "Pattern", ..., help_text="A Python regular expression."),
        Param("ignore_case", "bool", "Ignore case", False),
        Param("full_match", "bool", "The whole text must match", False),
    ),
    "contains_keywords": (
        _TARGET,
        Param("keywords", "lines", "Keywords", ..., help_text="One per line."),
        Param("mode", "choice", "Passes when it contains", "any", ("any", "all")),
        Param("case_sensitive", "bool", "Case-sensitive", False),
    ),
    "valid_json": (_TARGET,),
    "json_schema": (
        _TARGET,
        Param("schema", "json", "JSON Schema", ..., help_text="A JSON Schema (draft 2020-12)."),
    ),
    "length_bounds": (
        _TARGET,
        Param("min", "int", "At least"),
        Param("max", "int", "At most"),
        Param("unit", "choice", "Counting", "chars", ("chars", "words")),
    ),
    "latency_budget": (Param("max_ms", "number", "Budget (ms)", ...),),
    "status_is_error": (),
    "pii": (_TARGET, Param("kinds", "multi", "Look for", list(PII_PATTERNS), tuple(PII_PATTERNS))),
    "string_similarity": (
        _TARGET,
        Param("method", "choice", "Method", "ratio", tuple(SIMILARITY)),
        Param("threshold", "number", "Similar from (0 to 1)", 0.8),
        Param("case_sensitive", "bool", "Case-sensitive", False),
    ),
    "document_relevance": (
        Param("target", "choice", "Query", "input", ("input", "output")),
        Param(
            "threshold",
            "number",
            "Relevant from (0 to 1)",
            0.5,
            help_text="The share of the query's words a document must contain.",
        ),
    ),
}


def params_validate(check: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` for ``check`` with defaults filled in; ``ValueError`` naming a bad one."""
    spec = {param.name: (param.types, param.default) for param in PARAMS[check]}
    unknown = set(params) - set(spec)
    if unknown:
        raise ValueError(f"params: unknown {', '.join(sorted(unknown))} for {check}")
    cleaned: dict[str, Any] = {}
    for name, (types, default) in spec.items():
        value = params.get(name, default)
        if value is ...:
            raise ValueError(f"params.{name}: required for {check}")
        if value is not None and (
            not isinstance(value, types) or (types is not bool and isinstance(value, bool))
        ):
            raise ValueError(f"params.{name}: wrong type {type(value).__name__}")
        cleaned[name] = value
    if cleaned.get("target", "output") not in ("input", "output"):
        raise ValueError("params.target: must be input or output")
    if check == "regex":
        try:
            re.compile(cleaned["pattern"])
        except re.error as exc:
            raise ValueError(f"params.pattern: not a regular expression: {exc}") from None
    if check == "contains_keywords":
        if not cleaned["keywords"] or not all(
            isinstance(k, str) and k for k in cleaned["keywords"]
        ):
            raise ValueError("params.keywords: a non-empty list of non-empty strings")
        if cleaned["mode"] not in ("any", "all"):
            raise ValueError("params.mode: must be any or all")
    if check == "json_schema":
        try:
            jsonschema.Draft202012Validator.check_schema(cleaned["schema"])
        except jsonschema.SchemaError as exc:
            raise ValueError(f"params.schema: not a valid JSON Schema: {exc.message}") from None
    if check == "length_bounds":
        if cleaned["min"] is None and cleaned["max"] is None:
            raise ValueError("params: length_bounds needs min, max or both")
        if cleaned["unit"] not in ("chars", "words"):
            raise ValueError("params.unit: must be chars or words")
        if (
            cleaned["min"] is not None
            and cleaned["max"] is not None
            and cleaned["min"] > cleaned["max"]
        ):
            raise ValueError("params: min is greater than max")
    if check == "latency_budget" and cleaned["max_ms"] <= 0:
        raise ValueError("params.max_ms: must be positive")
    if check == "pii":
        unknown_kinds = set(cleaned["kinds"]) - set(PII_PATTERNS)
        if not cleaned["kinds"] or unknown_kinds:
            raise ValueError(f"params.kinds: choose from {', '.join(PII_PATTERNS)}")
    if check == "document_relevance" and not 0 <= cleaned["threshold"] <= 1:
        raise ValueError("params.threshold: between 0 and 1")
    if check == "string_similarity":
        if cleaned["method"] not in SIMILARITY:
            raise ValueError(f"params.method: one of {', '.join(SIMILARITY)}")
        if not 0 <= cleaned["threshold"] <= 1:
            raise ValueError("params.threshold: between 0 and 1")
    return cleaned


def check_run(check: str, data: CodeInput, params: Mapping[str, Any]) -> Outcome:
    return CHECKS[check](data, params)
