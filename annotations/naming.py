"""How a result is named, and who a name selects: the one rule every writer and reader calls.

- **A result is named after what produced it**: an evaluator's result carries the evaluator's
  name (``Correctness``), a person's label the rubric's name (``Quality``). Nothing is added to
  the name: a task, the Phoenix client, the batch API and the SDK write the same name, and the
  browser shows it (``result_name``; ``filter_field`` writes it as a filter field; a dataset
  example keeps a machine's result beside a person's label of the same name, ``label_key``).
- **Who produced it is its annotator kind**: a machine (``LLM`` or ``CODE``) or a person
  (``HUMAN``). ``kinds_selected(head)`` says which kinds a prefix selects, for filters
  (``eval.X`` / ``evals['X']`` machine results, ``annotation.X`` / ``annotations['X']`` human
  ones) and for data-frame columns (``eval.X.label`` machine, ``annotation.X.label`` human;
  ``trace_`` / ``session_`` prefixes for results on traces and sessions).
- **One result per target, name, class and identifier**: a person's label and a judge's result
  of the same name on the same span live side by side (they are what agreement compares),
  while a write of the same class replaces the stored one as Phoenix's upsert does (a different
  ``identifier`` keeps both). The class is human or machine rather than the exact kind, so an
  evaluator moved from an LLM judge to code still has one result per item.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from django.db.models import BooleanField, Case, Value, When

# Plain values (``annotations.models`` builds its unique key from this module, so this module
# does not import it): the annotator kinds and target kinds of ``Annotation``.
HUMAN: Final = "HUMAN"
LLM: Final = "LLM"
CODE: Final = "CODE"
SPAN: Final = "SPAN"
TRACE: Final = "TRACE"
SESSION: Final = "SESSION"

AnnotatorClass = Literal["human", "machine"]

MACHINE_KINDS: Final[tuple[str, ...]] = (LLM, CODE)
HUMAN_KINDS: Final[tuple[str, ...]] = (HUMAN,)

# Filter-language heads → the annotator kinds they select.
FILTER_HEADS: Final[dict[str, tuple[str, ...]]] = {
    "eval": MACHINE_KINDS,
    "evals": MACHINE_KINDS,
    "annotation": HUMAN_KINDS,
    "annotations": HUMAN_KINDS,
}

# Filter heads for results on the span's trace (``trace_evals['X'].label``), by class as above.
TRACE_FILTER_HEADS: Final[dict[str, tuple[str, ...]]] = {
    "trace_eval": MACHINE_KINDS,
    "trace_evals": MACHINE_KINDS,
    "trace_annotation": HUMAN_KINDS,
    "trace_annotations": HUMAN_KINDS,
}

# Data-frame column prefix → (what it annotates, the annotator kind written).
RECORD_PREFIXES: Final[dict[str, tuple[str, str]]] = {
    "eval": (SPAN, LLM),
    "annotation": (SPAN, HUMAN),
    "trace_eval": (TRACE, LLM),
    "trace_annotation": (TRACE, HUMAN),
    "session_eval": (SESSION, LLM),
    "session_annotation": (SESSION, HUMAN),
}

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KEYWORDS = frozenset(
    {"and", "or", "not", "in", "is", "contains", "icontains", "true", "false", "null", "none"}
)


def result_name(producer: str) -> str:
    """The name of the results of an evaluator or rubric called ``producer``."""
    return producer.strip()


def is_human(annotator_kind: str) -> bool:
    return annotator_kind == HUMAN


def annotator_class(annotator_kind: str) -> AnnotatorClass:
    """``"human"`` for HUMAN, ``"machine"`` for LLM and CODE."""
    return "human" if is_human(annotator_kind) else "machine"


def class_kinds(klass: AnnotatorClass) -> tuple[str, ...]:
    return HUMAN_KINDS if klass == "human" else MACHINE_KINDS


def human_expression() -> Case:
    """SQL for "written by a person": part of the annotations' unique key."""
    return Case(
        When(annotator_kind=HUMAN, then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )


def kinds_selected(head: str) -> tuple[str, ...]:
    """The annotator kinds a filter head (``eval``, ``evals``, ``annotation``,
    ``annotations``, and their ``trace_`` forms) selects."""
    return FILTER_HEADS.get(head) or TRACE_FILTER_HEADS[head]


def quote_name(name: str) -> str:
    """A result name as a field segment of the filter language: plain words as they are,
    anything else in double quotes (``eval."Q&A Correctness"``)."""
    if _PLAIN.match(name) and name.lower() not in _KEYWORDS:
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def filter_field(name: str, *, human: bool, attribute: str = "") -> str:
    """The filter-language field of the results named ``name`` by people (``annotation.X``) or
    by machines (``eval.X``), with ``.label`` / ``.score`` / ``.explanation`` when given."""
    field = f"{'annotation' if human else 'eval'}.{quote_name(name)}"
    return f"{field}.{attribute}" if attribute else field


def label_key(name: str, annotator_kind: str) -> str:
    """The key of a result in a dataset example's ``labels``: a person's label under its
    rubric's name, a machine's result under ``eval.<name>`` — so both of one name are kept."""
    return name if is_human(annotator_kind) else f"eval.{name}"


__all__ = [
    "FILTER_HEADS",
    "HUMAN_KINDS",
    "MACHINE_KINDS",
    "RECORD_PREFIXES",
    "AnnotatorClass",
    "annotator_class",
    "class_kinds",
    "filter_field",
    "human_expression",
    "is_human",
    "kinds_selected",
    "label_key",
    "quote_name",
    "result_name",
]
