"""Reads of the annotate form: the span, trace or session a person annotates."""

from __future__ import annotations

from annotations.store.selectors import TARGET_OF, AnnotationTarget
from tracing.models import Project


def annotation_target_get(
    *, project: Project, target_kind: str, target_id: str
) -> AnnotationTarget | None:
    """The span, trace or session with this user-facing id in ``project``."""
    for model, (kind, _, id_field) in TARGET_OF.items():
        if kind == target_kind:
            return model._default_manager.filter(  # type: ignore[return-value]  # the model is one of the three
                project=project, **{id_field: target_id}
            ).first()
    return None
