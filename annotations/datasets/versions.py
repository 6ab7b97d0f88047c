"""Dataset versions: every change to a dataset's examples makes a version, and an example's
input, expected output and metadata at a version are JSON objects (``DatasetExampleRevision``).

An example at version V is its revision with the greatest version <= V, unless that revision
deletes it. Writes (``dataset_version_record``, ``dataset_examples_patch``,
``dataset_examples_remove``, ``dataset_version_delete``) and reads
(``dataset_version_latest``, ``version_examples``, ``version_diff``) live here so the
REST API, the pages and the experiments all see versions the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from django.db import transaction
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.utils import timezone

from annotations.datasets.models import (
    Dataset,
    DatasetExample,
    DatasetExampleRevision,
    DatasetVersion,
    RevisionKind,
)
from evalhub.core.paging import Page, cursor_id, page_from_id
from evalhub.core.streams import FORMATS, csv_stream

BATCH_SIZE: Final = 1000


class VersionGone(Exception):
    """A dataset version that was deleted: experiments may not use it any more."""

    def __init__(self, version: DatasetVersion) -> None:
        self.version = version
        super().__init__(f"dataset version {version.pk} was deleted")


@dataclass(frozen=True, slots=True)
class ExampleContent:
    """What a version holds of an example: three JSON objects."""

    input: dict[str, Any]
    output: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        """A canonical text of the content (to match rows of a re-uploaded table)."""
        return json.dumps([self.input, self.output, self.metadata], sort_keys=True, default=str)


def span_example_content(example: DatasetExample) -> ExampleContent:
    """The JSON objects of an example made from a span: ``{"input": <text>}`` and
    ``{"output": <expected output, else the span's output>}``."""
    expected = example.expected_output if example.expected_output is not None else example.output
    return ExampleContent(
        input={} if example.input is None else {"input": example.input},
        output={} if expected is None else {"output": expected},
        metadata=dict(example.metadata or {}),
    )


def _text(value: Mapping[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def example_from_content(dataset: Dataset, content: ExampleContent) -> DatasetExample:
    """An unsaved example for uploaded content (no source span); its text columns show the
    objects as JSON."""
    return DatasetExample(
        dataset=dataset,
        input=_text(content.input),
        output=None,
        expected_output=_text(content.output) if content.output else None,
        metadata=content.metadata,
    )


# --- writes -----------------------------------------------------------------------------------


def dataset_version_record(
    *,
    dataset: Dataset,
    creates: Sequence[tuple[DatasetExample, ExampleContent]] = (),
    patches: Sequence[tuple[DatasetExample, ExampleContent]] = (),
    deletes: Sequence[DatasetExample] = (),
    description: str = "",
    metadata: Mapping[str, Any] | None = None,
) -> DatasetVersion:
    """A new version of ``dataset`` with these changes (the examples are saved). The caller
    holds the transaction (and the dataset's lock)."""
    now = timezone.now()
    version = DatasetVersion.objects.create(
        dataset=dataset, description=description, metadata=dict(metadata or {}), created_at=now
    )
    rows = [
        DatasetExampleRevision(
            example=example,
            version=version,
            kind=kind,
            input=content.input,
            output=content.output,
            metadata=content.metadata,
            created_at=now,
        )
        for kind, changes in ((RevisionKind.CREATE, creates), (RevisionKind.PATCH, patches))
        for example, content in changes
    ]
    rows += [
        DatasetExampleRevision(example=example, version=version, kind=RevisionKind.DELETE)
        for example in deletes
    ]
    DatasetExampleRevision.objects.bulk_create(rows, batch_size=BATCH_SIZE)
    if deletes:
        DatasetExample.objects.filter(pk__in=[e.pk for e in deletes]).update(removed_at=now)
    Dataset.objects.filter(pk=dataset.pk).update(updated_at=now)
    dataset.updated_at = now
    return version


def _lock(dataset: Dataset) -> None:
    Dataset.objects.select_for_update().filter(pk=dataset.pk).values_list("pk").get()


@transaction.atomic
def dataset_examples_patch(
    *, dataset: Dataset, changes: Mapping[int, ExampleContent], description: str = ""
) -> DatasetVersion:
    """Edit examples (by pk) of ``dataset``: one new version. Raises ``KeyError`` naming an
    example the dataset does not have (at its latest version)."""
    _lock(dataset)
    current = _current_examples(dataset, list(changes))
    return dataset_version_record(
        dataset=dataset,
        patches=[(current[pk], content) for pk, content in changes.items()],
        description=description,
    )


@transaction.atomic
def dataset_examples_remove(
    *, dataset: Dataset, example_ids: Sequence[int], description: str = ""
) -> DatasetVersion:
    """Delete examples (by pk) from ``dataset``: one new version (older versions keep them).
    Raises ``KeyError`` naming an example the dataset does not have."""
    _lock(dataset)
    current = _current_examples(dataset, list(example_ids))
    return dataset_version_record(
        dataset=dataset, deletes=list(current.values()), description=description
    )


def _current_examples(dataset: Dataset, pks: list[int]) -> dict[int, DatasetExample]:
    latest = dataset_version_latest(dataset=dataset)
    live = (
        {}
        if latest is None
        else {
            r.example_id: r.example
            for r in version_examples(version=latest)
            .filter(example_id__in=pks)
            .select_related("example")
        }
    )
    for pk in pks:
        if pk not in live:
            raise KeyError(f"example {pk} is not in dataset {dataset.name!r}")
    return live


@transaction.atomic
def dataset_version_delete(*, version: DatasetVersion) -> DatasetVersion:
    """Mark a version deleted: it stays readable for the experiments that ran on it."""
    if version.deleted_at is None:
        version.deleted_at = timezone.now()
        version.save(update_fields=["deleted_at"])
    return version


# --- reads ------------------------------------------------------------------------------------


def dataset_versions(*, dataset: Dataset) -> QuerySet[DatasetVersion]:
    """A dataset's versions, newest first, each with ``change_count``."""
    return (
        DatasetVersion.objects.filter(dataset=dataset)
        .annotate(change_count=Count("revisions"))
        .order_by("-id")
    )


def dataset_version_latest(*, dataset: Dataset) -> DatasetVersion | None:
    """The newest version of ``dataset`` that is not deleted."""
    return (
        DatasetVersion.objects.filter(dataset=dataset, deleted_at__isnull=True)
        .order_by("-id")
        .first()
    )


def dataset_version_get(*, dataset: Dataset, version_id: str | int) -> DatasetVersion | None:
    """One version of ``dataset`` by id (deleted ones too), else None."""
    text = str(version_id).strip()
    if not text.isdigit() or len(text) > 18:
        return None
    return DatasetVersion.objects.filter(dataset=dataset, pk=int(text)).first()


def version_examples(*, version: DatasetVersion) -> QuerySet[DatasetExampleRevision]:
    """The examples at ``version``: for each example its newest revision up to the version,
    without deleted ones, in the order examples were added."""
    newest = (
        DatasetExampleRevision.objects.filter(
            example_id=OuterRef("example_id"), version_id__lte=version.pk
        )
        .order_by("-version_id")
        .values("id")[:1]
    )
    return (
        DatasetExampleRevision.objects.filter(
            example__dataset_id=version.dataset_id, version_id__lte=version.pk
        )
        .filter(id=Subquery(newest))
        .exclude(kind=RevisionKind.DELETE)
        .order_by("example_id")
    )


def version_examples_page(
    *, version: DatasetVersion | None, cursor: str | None = None, limit: int | None = None
) -> Page[DatasetExampleRevision]:
    """The examples at ``version`` (with their example rows): all of them, or ``limit`` at a
    time; the cursor is the example id the next page starts at. Raises ``InvalidCursor`` for a
    cursor this server did not hand out."""
    cursor_id(cursor)
    if version is None:
        return Page([], None)
    query = version_examples(version=version).select_related("example")
    return page_from_id(query, cursor=cursor, limit=limit, descending=False, field="example_id")


def version_example_count(*, version: DatasetVersion | None) -> int:
    return 0 if version is None else version_examples(version=version).count()


@dataclass(frozen=True, slots=True)
class VersionDiff:
    """What changed from version ``a`` to version ``b``: example pks added, removed, changed
    (with both contents)."""

    added: list[DatasetExampleRevision]
    removed: list[DatasetExampleRevision]
    changed: list[tuple[DatasetExampleRevision, DatasetExampleRevision]]


def version_diff(*, a: DatasetVersion, b: DatasetVersion) -> VersionDiff:
    """The examples added, removed and changed between two versions of one dataset."""
    before = {r.example_id: r for r in version_examples(version=a)}
    after = {r.example_id: r for r in version_examples(version=b)}
    changed = [
        (before[pk], after[pk])
        for pk in before.keys() & after.keys()
        if (before[pk].input, before[pk].output, before[pk].metadata)
        != (after[pk].input, after[pk].output, after[pk].metadata)
    ]
    return VersionDiff(
        added=[after[pk] for pk in sorted(after.keys() - before.keys())],
        removed=[before[pk] for pk in sorted(before.keys() - after.keys())],
        changed=sorted(changed, key=lambda pair: pair[0].example_id),
    )


@dataclass(frozen=True, slots=True)
class Download:
    text: str
    content_type: str
    filename: str


def version_download(*, dataset: Dataset, version: DatasetVersion | None, fmt: str) -> Download:
    """A version's examples as CSV (objects as JSON text) or JSON lines."""
    rows = (
        []
        if version is None
        else [
            {
                "example_id": str(r.example_id),
                "input": r.input,
                "output": r.output,
                "metadata": r.metadata,
                "span_id": r.example.source_span_id or None,
            }
            for r in version_examples(version=version).select_related("example").iterator()
        ]
    )
    tag = f"v{version.pk}" if version is not None else "empty"
    if fmt == "jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        return Download(
            text, "application/jsonl; charset=utf-8", f"dataset-{dataset.pk}-{tag}.jsonl"
        )
    text = b"".join(csv_stream([rows], columns=_CSV_COLUMNS, record=_csv_cells)).decode()
    return Download(text, FORMATS["csv"][0], f"dataset-{dataset.pk}-{tag}.csv")


_CSV_COLUMNS: Final = ("example_id", "input", "output", "metadata", "span_id")


def _csv_cells(row: dict[str, Any]) -> dict[str, Any]:
    """A version row's CSV cells: the objects as JSON text."""
    return {
        **row,
        **{k: json.dumps(row[k], ensure_ascii=False) for k in ("input", "output", "metadata")},
        "span_id": row["span_id"] or "",
    }


__all__ = [
    "ExampleContent",
    "VersionDiff",
    "VersionGone",
    "dataset_examples_patch",
    "dataset_examples_remove",
    "dataset_version_delete",
    "dataset_version_get",
    "dataset_version_latest",
    "dataset_version_record",
    "dataset_versions",
    "example_from_content",
    "span_example_content",
    "version_diff",
    "version_download",
    "version_example_count",
    "version_examples",
    "version_examples_page",
]
