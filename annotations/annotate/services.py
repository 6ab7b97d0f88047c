"""A person's annotations under a rubric (the annotate form)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import models, transaction

from annotations.models import (
    Annotation,
    AnnotationConfig,
    AnnotationSource,
    AnnotatorKind,
    ProjectAnnotationConfig,
    TargetKind,
)
from annotations.naming import AnnotatorClass, class_kinds
from annotations.rubrics.answers import Answer, AnswerInvalid, rubric_answer
from annotations.store.services import AnnotationInput, AnnotationInputError, annotations_upsert
from tracing.models import Project

# --- a person's annotations under a rubric (the annotate form) ----------------------------------


# Per target kind: the lookup of an annotation's target by its user-facing id.
_TARGET_LOOKUPS: dict[str, str] = {
    TargetKind.SPAN: "span__span_id",
    TargetKind.TRACE: "trace__trace_id",
    TargetKind.SESSION: "session__session_id",
}


def _stored(
    *,
    project: Project,
    target_kind: str,
    target_id: str,
    name: str,
    identifier: str,
    klass: AnnotatorClass = "human",
) -> models.QuerySet[Annotation]:
    """The stored annotation with this key (at most one), as a query."""
    if target_kind not in _TARGET_LOOKUPS:
        return Annotation.objects.none()
    return Annotation.objects.filter(
        project=project,
        target_kind=target_kind,
        name=name,
        identifier=identifier,
        annotator_kind__in=class_kinds(klass),
        **{_TARGET_LOOKUPS[target_kind]: target_id},
    )


def _person_result(
    *,
    config: AnnotationConfig,
    stored: Annotation | None,
    label: str | None,
    score: float | None,
    explanation: str | None,
) -> Answer:
    """What to store, checked by ``rubric_answer``; a label or score not given keeps the stored
    one (so notes can be changed alone)."""
    if label is None and stored is not None:
        label = stored.label
    if score is None and stored is not None:
        score = stored.score
    try:
        answer = rubric_answer(config, label=label, score=score, explanation=explanation)
    except AnswerInvalid as exc:
        raise AnnotationInputError(index=0, field=exc.field, message=exc.message) from None
    assert answer is not None  # text is required here
    return answer


@transaction.atomic
def annotation_person_save(
    *,
    project: Project,
    target_kind: str,
    target_id: str,
    config: AnnotationConfig,
    user: User,
    label: str | None = None,
    score: float | None = None,
    explanation: str | None = None,
) -> Annotation:
    """Store ``user``'s annotation of a span, trace or session under the rubric ``config``
    (enabled for ``project``): one per person and rubric, identified by the username, made by a
    HUMAN in the APP.

    A CATEGORICAL label must be one of the rubric's values and takes that value's score; a
    CONTINUOUS score must lie within its bounds; a FREEFORM annotation is its text (stored as the
    explanation). A ``None`` label (CATEGORICAL) or score (CONTINUOUS) keeps the stored one, so
    notes can be changed alone. A blank explanation clears it. Raises ``AnnotationInputError``
    naming the field, ``AnnotationTargetNotFound`` for a target not in the project.
    """
    if not ProjectAnnotationConfig.objects.filter(
        project=project, annotation_config=config
    ).exists():
        raise AnnotationInputError(
            index=0, field="name", message=f"{config.name!r} is not enabled for {project.name}"
        )
    identifier = user.get_username()
    stored = _stored(
        project=project,
        target_kind=target_kind,
        target_id=target_id,
        name=config.name,
        identifier=identifier,
    ).first()
    answer = _person_result(
        config=config, stored=stored, label=label, score=score, explanation=explanation
    )
    (annotation,) = annotations_upsert(
        items=[
            AnnotationInput(
                target_kind=target_kind,
                target_id=target_id,
                name=config.name,
                annotator_kind=AnnotatorKind.HUMAN,
                label=answer.label,
                score=answer.score,
                explanation=answer.explanation,
                metadata=stored.metadata if stored is not None else {},
                identifier=identifier,
            )
        ],
        source=AnnotationSource.APP,
        user=user,
        project=project,
    )
    return annotation


@transaction.atomic
def annotation_delete(
    *,
    project: Project,
    target_kind: str,
    target_id: str,
    name: str,
    identifier: str,
    klass: AnnotatorClass = "human",
) -> bool:
    """Delete the annotation named ``name`` with ``identifier`` by a person (``klass``
    "human") or a machine on a span, trace or session of ``project``; False when there is
    none."""
    deleted, _ = _stored(
        project=project,
        target_kind=target_kind,
        target_id=target_id,
        name=name,
        identifier=identifier,
        klass=klass,
    ).delete()
    return deleted > 0
