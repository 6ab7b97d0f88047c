"""Reads for API keys, LLM providers and evaluators."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Max, Q, QuerySet

from evalhub.evaluators.models import Evaluator, EvaluatorVersion
from tracing.models import Project, Span


def evaluator_list(*, kind: str | None = None, search: str = "") -> QuerySet[Evaluator]:
    """Evaluators by name, each with ``latest_number`` (its newest version's number)."""
    query = Evaluator.objects.annotate(latest_number=Max("versions__number")).order_by("name")
    if kind:
        query = query.filter(kind=kind)
    if search.strip():
        query = query.filter(Q(name__icontains=search.strip()) | Q(description__icontains=search))
    return query


def evaluator_get(id_or_name: str | int) -> Evaluator | None:
    ident = str(id_or_name).strip()
    if ident.isdigit():
        found = Evaluator.objects.filter(pk=int(ident)).first()
        if found is not None:
            return found
    return Evaluator.objects.filter(name=ident).first()


def evaluator_version_latest(*, evaluator: Evaluator) -> EvaluatorVersion:
    version = evaluator.versions.order_by("-number").first()
    assert version is not None, "an evaluator always has a version"
    return version


def evaluator_version_get(*, evaluator: Evaluator, number: int) -> EvaluatorVersion | None:
    return evaluator.versions.filter(number=number).first()


@dataclass(frozen=True, slots=True)
class VariablePreview:
    name: str
    source: str
    value: str | None
    error: str | None


def variables_preview(
    *, config: dict[str, Any], span: Span | None, values: Mapping[str, Any] | None = None
) -> list[VariablePreview]:
    """Each variable of the definition ``config`` with its source and its value on ``span``
    (or in ``values``), or the error that names why it has none."""
    from evalhub.evaluators.definition import config_parse
    from evalhub.evaluators.judge import TemplateVariableMissing
    from evalhub.evaluators.variables import variables_resolve

    mapping = config_parse(config).mapping()
    previews = []
    for name, source in mapping.items():
        try:
            value = variables_resolve(mapping={name: source}, span=span, values=values)[name]
        except TemplateVariableMissing as exc:
            previews.append(VariablePreview(name, source, None, str(exc)))
        else:
            previews.append(VariablePreview(name, source, value, None))
    return previews


# --- the playground's span picker ---------------------------------------------------------------

PICKER_LIMIT = 20


def picker_projects() -> QuerySet[Project]:
    return Project.objects.order_by("name")


def playground_spans(
    *, project: Project, filter_text: str = "", limit: int = PICKER_LIMIT
) -> list[Span]:
    """The ``limit`` newest spans of ``project`` matching ``filter_text`` (the filter language;
    raises ``tracing.query.FilterError`` when it cannot be read)."""
    from tracing.query.lists import span_queryset

    return list(span_queryset(project=project, filter_expr=filter_text)[:limit])


def playground_span(span_id: str) -> Span | None:
    """The span with this id, with its project, or None."""
    span_id = span_id.strip()
    if not span_id:
        return None
    return Span.objects.filter(span_id=span_id).select_related("project").first()
