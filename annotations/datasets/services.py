"""Writes for datasets: create, rename, delete, and add examples made from spans.

An example copies its span's input, output and metadata, the labels of the annotations on it
(``{"<name>": {"label", "score", "explanation"}}``) and an expected output: the text of the
annotation named by ``expected_output_from`` when the example has it, else the reference in
the span's metadata (the keys evaluators read as ``reference``). A span is in a dataset at
most once: adding it again is skipped (and counted). Every add is all or nothing.

Examples are given as span pks, so any list of spans — a trace browser selection, a filter's
result, a labeling queue's completed items — becomes examples with the same call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from annotations.datasets.models import Dataset, DatasetExample
from annotations.datasets.selectors import ExampleSource, SourceKind, example_sources
from annotations.datasets.versions import dataset_version_record, span_example_content
from evalhub.core.fields import FieldInvalid, NameTaken, name_free, save_named

MAX_NAME_LENGTH: Final = 255
MAX_EXAMPLES_PER_ADD: Final = 50_000
"""Examples one call adds at most (a selection or filter matching more is refused)."""
BATCH_SIZE: Final = 500
"""Spans read (with their annotations) and examples inserted at a time."""
REFERENCE_KEYS: Final = ("reference", "expected_output", "expected", "ground_truth")
"""Metadata keys of a reference answer, in order: the ones evaluators read as ``reference``
(``evalhub.evaluators.variables.REFERENCE_KEYS``)."""
SOURCES: Final = ("span", "trace", "session")


class DatasetInvalid(FieldInvalid):
    """Dataset input that cannot be stored."""


class DatasetNameTaken(NameTaken):
    noun = "dataset"


class DatasetSourceMissing(Exception):
    """Source spans that do not exist (any more); nothing was written."""

    def __init__(self, missing: Sequence[str]) -> None:
        self.missing = list(missing)
        super().__init__(f"spans not found: {', '.join(self.missing)}")


@dataclass(frozen=True, slots=True)
class DatasetAdded:
    """The outcome of an add: the dataset, the examples added, the spans it already had."""

    dataset: Dataset
    added: int
    skipped: int
    created: bool = False


def dataset_name_clean(name: Any) -> str:
    """``name`` stripped; raises ``DatasetInvalid`` when empty or too long."""
    cleaned = name.strip() if isinstance(name, str) else ""
    if not cleaned:
        raise DatasetInvalid(field="name", message="must not be empty")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise DatasetInvalid(field="name", message=f"is longer than {MAX_NAME_LENGTH} characters")
    return cleaned


def _clean_options(
    spans: Sequence[int], source: str, expected_output_from: str | None
) -> tuple[list[int], str | None]:
    if source not in SOURCES:
        raise DatasetInvalid(
            field="source", message=f"must be one of {', '.join(SOURCES)} (got {source!r})"
        )
    pks = list(dict.fromkeys(spans))
    if len(pks) > MAX_EXAMPLES_PER_ADD:
        raise DatasetInvalid(
            field="spans",
            message=f"at most {MAX_EXAMPLES_PER_ADD:,} examples can be added at once",
        )
    return pks, expected_output_from_clean(expected_output_from)


def expected_output_from_clean(value: Any) -> str | None:
    """The annotation name an expected output comes from, stripped (None when blank); raises
    ``DatasetInvalid`` when it is not a string or too long."""
    if value is not None and not isinstance(value, str):
        raise DatasetInvalid(field="expected_output_from", message="must be a string")
    cleaned = (value or "").strip() or None
    if cleaned is not None and len(cleaned) > MAX_NAME_LENGTH:
        raise DatasetInvalid(
            field="expected_output_from", message=f"is longer than {MAX_NAME_LENGTH} characters"
        )
    return cleaned


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def expected_output_of(
    *,
    labels: Mapping[str, Mapping[str, Any]],
    metadata: Mapping[str, Any],
    expected_output_from: str | None = None,
) -> str | None:
    """The expected output of an example: the explanation (else the label) of the annotation
    named ``expected_output_from`` when there is one, else the reference in ``metadata``."""
    if expected_output_from and expected_output_from in labels:
        chosen = labels[expected_output_from]
        text = chosen.get("explanation")
        if text is None:
            text = chosen.get("label")
        if text is not None:
            return str(text)
    for key in REFERENCE_KEYS:
        if metadata.get(key) is not None:
            return _text(metadata[key])
    return None


def _example(dataset: Dataset, source: ExampleSource, expected_from: str | None) -> DatasetExample:
    return DatasetExample(
        dataset=dataset,
        input=source.input,
        output=source.output,
        expected_output=expected_output_of(
            labels=source.labels, metadata=source.metadata, expected_output_from=expected_from
        ),
        labels=source.labels,
        metadata=source.metadata,
        source_span_id=source.span_id,
        source_trace_id=source.trace_id,
        source_project=source.project,
    )


def _batches(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _add(
    dataset: Dataset, pks: list[int], source: SourceKind, expected_from: str | None
) -> tuple[int, int]:
    """Insert the examples of ``pks`` not yet in ``dataset`` (locked by the caller)."""
    added = skipped = 0
    created: list[DatasetExample] = []
    for batch in _batches(pks, BATCH_SIZE):
        sources = example_sources(batch, source=source)
        missing = [f"#{pk}" for pk in batch if pk not in sources]
        if missing:
            raise DatasetSourceMissing(missing)
        present = set(
            DatasetExample.objects.filter(
                dataset=dataset,
                source_span_id__in=[s.span_id for s in sources.values()],
                removed_at__isnull=True,
            ).values_list("source_span_id", flat=True)
        )
        new = [sources[pk] for pk in batch if sources[pk].span_id not in present]
        created += DatasetExample.objects.bulk_create(
            [_example(dataset, s, expected_from) for s in new]
        )
        added += len(new)
        skipped += len(batch) - len(new)
    if added:
        # Every change makes a version (annotations.datasets.versions).
        dataset_version_record(
            dataset=dataset,
            creates=[(e, span_example_content(e)) for e in created],
            description=f"{added} example{'' if added == 1 else 's'} added from spans",
        )
    return added, skipped


def _lock(dataset: Dataset) -> None:
    """Lock the dataset row so that adds to one dataset run one after the other."""
    Dataset.objects.select_for_update().filter(pk=dataset.pk).values_list("pk").get()


def _user(user: User | None) -> Any:
    return user if user is not None and user.is_authenticated else None


def _insert(dataset: Dataset) -> Dataset:
    save_named(dataset, taken=DatasetNameTaken)
    return dataset


@transaction.atomic
def dataset_create(
    *,
    name: str,
    description: str = "",
    user: User | None = None,
    spans: Sequence[int] = (),
    source: SourceKind = "span",
    expected_output_from: str | None = None,
) -> DatasetAdded:
    """Create a dataset with examples made from ``spans`` (pks, in order).

    Raises ``DatasetInvalid`` naming the field, ``DatasetNameTaken``, and
    ``DatasetSourceMissing`` when a span does not exist; then nothing is written.
    """
    cleaned = dataset_name_clean(name)
    pks, expected_from = _clean_options(spans, source, expected_output_from)
    name_free(Dataset, cleaned, pk=None, taken=DatasetNameTaken)
    dataset = _insert(Dataset(name=cleaned, description=description or "", created_by=_user(user)))
    added, skipped = _add(dataset, pks, source, expected_from)
    return DatasetAdded(dataset=dataset, added=added, skipped=skipped, created=True)


@transaction.atomic
def dataset_examples_add(
    *,
    dataset: Dataset,
    spans: Sequence[int],
    source: SourceKind = "span",
    expected_output_from: str | None = None,
) -> DatasetAdded:
    """Add examples made from ``spans`` (pks, in order) to ``dataset``; spans it already has
    are skipped. ``source`` says what each span stands for: itself, its trace (the span is the
    trace's root) or its session, whose annotations then label the example too.

    Raises ``DatasetInvalid`` naming the field and ``DatasetSourceMissing``; then nothing is
    written.
    """
    pks, expected_from = _clean_options(spans, source, expected_output_from)
    _lock(dataset)
    added, skipped = _add(dataset, pks, source, expected_from)
    return DatasetAdded(dataset=dataset, added=added, skipped=skipped)


@transaction.atomic
def dataset_examples_add_by_name(
    *,
    name: str,
    spans: Sequence[int],
    source: SourceKind = "span",
    expected_output_from: str | None = None,
    user: User | None = None,
) -> DatasetAdded:
    """Add examples to the dataset named ``name``, creating it when there is none (the trace
    browser's "Add to dataset": pick a dataset or type a new name). Raises as
    ``dataset_examples_add``."""
    cleaned = dataset_name_clean(name)
    pks, expected_from = _clean_options(spans, source, expected_output_from)
    dataset = Dataset.objects.select_for_update().filter(name=cleaned).first()
    created = dataset is None
    if dataset is None:
        try:
            dataset = _insert(Dataset(name=cleaned, created_by=_user(user)))
        except DatasetNameTaken:
            # Created by a concurrent request meanwhile: add to it.
            dataset = Dataset.objects.select_for_update().get(name=cleaned)
            created = False
    added, skipped = _add(dataset, pks, source, expected_from)
    return DatasetAdded(dataset=dataset, added=added, skipped=skipped, created=created)


@transaction.atomic
def dataset_update(*, dataset: Dataset, name: str, description: str | None = None) -> Dataset:
    """Rename a dataset and set its description. Raises ``DatasetInvalid`` and
    ``DatasetNameTaken``."""
    cleaned = dataset_name_clean(name)
    name_free(Dataset, cleaned, pk=dataset.pk, taken=DatasetNameTaken)
    dataset.name = cleaned
    dataset.description = description or ""
    dataset.updated_at = timezone.now()
    save_named(dataset, taken=DatasetNameTaken, update_fields=["name", "description", "updated_at"])
    return dataset


@transaction.atomic
def dataset_delete(*, dataset: Dataset) -> None:
    """Delete a dataset with its examples; the source spans stay."""
    dataset.delete()


__all__ = [
    "MAX_EXAMPLES_PER_ADD",
    "REFERENCE_KEYS",
    "SOURCES",
    "DatasetAdded",
    "DatasetInvalid",
    "DatasetNameTaken",
    "DatasetSourceMissing",
    "dataset_create",
    "dataset_delete",
    "dataset_examples_add",
    "dataset_examples_add_by_name",
    "dataset_name_clean",
    "dataset_update",
    "expected_output_from_clean",
    "expected_output_of",
]
