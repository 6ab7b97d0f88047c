"""Alignment runs: create one from the items people labelled, run the draft over them (the
hub's judge code and provider limiter, on threads), save the draft as the evaluator's next
version, copy the labelled items into a dataset of golden examples."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from annotations.agreement import TRACE, rating_pairs
from annotations.datasets.services import DatasetAdded, dataset_examples_add_by_name
from annotations.store.selectors import agreement_ratings
from evalhub.alignment.models import (
    AlignmentItem,
    AlignmentRun,
    AlignmentStatus,
)
from evalhub.alignment.running import (
    alignment_dispatch,
    alignment_run_resume,
    alignment_run_work,
)
from evalhub.calibration.estimate import SAMPLE, Estimate, JudgeInput, run_estimate
from evalhub.core.fields import FieldInvalid
from evalhub.evaluators.definition import EvaluatorConfigError
from evalhub.evaluators.models import Evaluator, EvaluatorVersion
from evalhub.evaluators.selectors import evaluator_version_latest
from evalhub.evaluators.services import evaluator_config_check, evaluator_update
from evalhub.tasks.evaluating import representative_spans
from tracing.models import Project, Session, Span, Trace

logger = logging.getLogger(__name__)

MAX_ITEMS = 2000
DEFAULT_ITEMS = 500


class AlignmentInvalid(FieldInvalid):
    """Bad input for an alignment run: ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field=field, message=message)


@dataclass(frozen=True, slots=True)
class LabelledItem:
    target_kind: str
    target_key: str
    human_label: str
    current_label: str | None
    current_version: int | None


def labelled_items(*, project: Project, name: str) -> tuple[list[LabelledItem], int]:
    """The items people gave a label named ``name`` in ``project``, with the people's majority
    label and the evaluator's stored result on it (the agreement page's pairing); and how many
    items were left out because people disagree there without a majority."""
    ratings = agreement_ratings(project=project, name=name)
    people: dict[tuple[str, str], Counter[str]] = {}
    for rating in ratings:
        if rating.rater.is_human and rating.label is not None:
            key = (rating.target.kind, rating.target.key)
            people.setdefault(key, Counter())[rating.label] += 1
    current: dict[tuple[str, str], tuple[str, int | None]] = {}
    for _name, first, second in rating_pairs(ratings):
        if first.rater.is_human and not second.rater.is_human and second.label is not None:
            current[(first.target.kind, first.target.key)] = (second.label, second.version)
    items, tied = [], 0
    for key in sorted(people):
        (top, n), *rest = people[key].most_common()
        if rest and rest[0][1] == n:
            tied += 1
            continue
        label, version = current.get(key, (None, None))
        items.append(LabelledItem(key[0], key[1], top, label, version))
    return items, tied


def item_spans(project: Project, items: list[LabelledItem]) -> dict[tuple[str, str], Span]:
    """Each item's span (a trace's root span, a session's first trace's root span)."""
    found: dict[tuple[str, str], Span] = {}
    keys: dict[str, list[str]] = {}
    for item in items:
        keys.setdefault(item.target_kind, []).append(item.target_key)
    for span in Span.objects.filter(project=project, span_id__in=keys.get("SPAN", [])):
        found[("SPAN", span.span_id)] = span
    for kind, model, granularity in (
        (TRACE, Trace, "trace"),
        ("SESSION", Session, "session"),
    ):
        if not keys.get(kind):
            continue
        field = "trace_id" if model is Trace else "session_id"
        pks = dict(
            model.objects.filter(project=project, **{f"{field}__in": keys[kind]}).values_list(
                "pk", field
            )
        )
        for pk, span in representative_spans(granularity, list(pks)).items():
            found[(kind, pks[pk])] = span
    return found


def draft_clean(
    *, evaluator: Evaluator, draft: Any, user: User | None, admin: bool | None = None
) -> dict[str, Any]:
    """The validated draft definition (the rules of saving a version); raises
    ``AlignmentInvalid`` naming the field."""
    if not isinstance(draft, dict):
        raise AlignmentInvalid("draft", "must be an object: an evaluator definition")
    try:
        cleaned = evaluator_config_check(draft, user, admin)
    except EvaluatorConfigError as exc:
        raise AlignmentInvalid("draft", str(exc)) from None
    except ValueError as exc:
        raise AlignmentInvalid("draft", str(exc)) from None
    if cleaned["kind"] != evaluator.kind:
        raise AlignmentInvalid("draft", "kind: the draft must be of the evaluator's kind")
    return cleaned


def alignment_estimate(
    *,
    evaluator: Evaluator,
    project: Project,
    draft: Any,
    user: User | None = None,
    admin: bool | None = None,
    max_items: int = DEFAULT_ITEMS,
) -> Estimate:
    """What running ``draft`` over the labelled items would take (``alignment_run_create``'s
    items): calls, tokens, cost, duration. Writes nothing; raises ``AlignmentInvalid``."""
    cleaned = draft_clean(evaluator=evaluator, draft=draft, user=user, admin=admin)
    _check_max_items(max_items)
    items, _tied = labelled_items(project=project, name=evaluator.annotation_name)
    spans = item_spans(project, items[:max_items])
    chosen = [
        spans[(i.target_kind, i.target_key)]
        for i in items
        if (i.target_kind, i.target_key) in spans
    ]
    draft_version = EvaluatorVersion(evaluator=evaluator, number=0, config=cleaned)
    return run_estimate(
        items=min(len(chosen), max_items),
        judges=[JudgeInput(version=draft_version)],
        spans=chosen[:SAMPLE],
        capped=len(items) > max_items,
    )


def _check_max_items(max_items: Any) -> None:
    if not isinstance(max_items, int) or isinstance(max_items, bool) or max_items < 1:
        raise AlignmentInvalid("max_items", "must be a whole number of at least 1")
    if max_items > MAX_ITEMS:
        raise AlignmentInvalid("max_items", f"must be at most {MAX_ITEMS}")


@transaction.atomic
def alignment_run_create(
    *,
    evaluator: Evaluator,
    project: Project,
    draft: Any,
    user: User | None = None,
    admin: bool | None = None,
    max_items: int = DEFAULT_ITEMS,
) -> AlignmentRun:
    """A run of ``draft`` over (up to ``max_items`` of) the items people labelled with the
    evaluator's result name in ``project``, queued for a worker. Raises ``AlignmentInvalid``
    (nothing written) for a bad draft, a bad limit or no labelled item."""
    _check_max_items(max_items)
    cleaned = draft_clean(evaluator=evaluator, draft=draft, user=user, admin=admin)
    items, tied = labelled_items(project=project, name=evaluator.annotation_name)
    spans = item_spans(project, items)
    items = [item for item in items if (item.target_kind, item.target_key) in spans][:max_items]
    if not items:
        raise AlignmentInvalid(
            "project",
            f"nobody labelled an item of {project.name} with {evaluator.annotation_name!r} yet",
        )
    run = AlignmentRun.objects.create(
        evaluator=evaluator,
        project=project,
        base_version=evaluator_version_latest(evaluator=evaluator),
        draft=cleaned,
        total=len(items),
        skipped=tied,
        created_by=user if user is not None and user.pk else None,
    )
    AlignmentItem.objects.bulk_create(
        AlignmentItem(
            run=run,
            target_kind=item.target_kind,
            target_key=item.target_key,
            span=spans[(item.target_kind, item.target_key)],
            human_label=item.human_label,
            current_label=item.current_label,
            current_version=item.current_version,
        )
        for item in items
    )
    transaction.on_commit(lambda: alignment_dispatch(run.pk))
    return run


# --- saving --------------------------------------------------------------------------------


@transaction.atomic
def alignment_save(
    *, run: AlignmentRun, user: User | None = None, admin: bool | None = None
) -> EvaluatorVersion:
    """Save the run's draft as the evaluator's next version (the same definition saved twice
    is one version). Raises ``AlignmentInvalid`` while the run is not completed."""
    run = AlignmentRun.objects.select_for_update().get(pk=run.pk)
    if run.status != AlignmentStatus.COMPLETED:
        raise AlignmentInvalid("run", f"is {run.status}: save it once it has completed")
    version = evaluator_update(evaluator=run.evaluator, user=user, config=run.draft, admin=admin)
    run.saved_version = version
    run.save(update_fields=["saved_version"])
    return version


def alignment_golden_dataset(
    *, run: AlignmentRun, name: str, user: User | None = None
) -> DatasetAdded:
    """Copy the run's items — with their labels, people's and the evaluator's — into the
    dataset ``name`` (created when there is none): golden examples whose expected output is
    the people's label. Items already in it are skipped. Raises the dataset services' errors
    (``DatasetInvalid`` naming the field)."""
    added: DatasetAdded | None = None
    by_source: dict[str, list[int]] = {}
    for kind, span_pk in run.items.filter(span__isnull=False).values_list("target_kind", "span_id"):
        by_source.setdefault(kind.lower(), []).append(span_pk)
    total_added = total_skipped = 0
    with transaction.atomic():
        for source in ("span", "trace", "session"):
            if source not in by_source:
                continue
            added = dataset_examples_add_by_name(
                name=name,
                spans=by_source[source],
                source=source,
                expected_output_from=run.evaluator.annotation_name,
                user=user,
            )
            total_added += added.added
            total_skipped += added.skipped
    if added is None:
        raise AlignmentInvalid("run", "has no item with a span left to copy")
    return DatasetAdded(
        dataset=added.dataset, added=total_added, skipped=total_skipped, created=added.created
    )


__all__ = [
    "AlignmentInvalid",
    "LabelledItem",
    "alignment_dispatch",
    "alignment_estimate",
    "alignment_golden_dataset",
    "alignment_run_create",
    "alignment_run_resume",
    "alignment_run_work",
    "alignment_save",
    "draft_clean",
    "item_spans",
    "labelled_items",
]
