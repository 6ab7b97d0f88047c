"""Uploads to datasets: a table (CSV, JSONL, Parquet, a DataFrame sent as CSV) or JSON lists of
inputs/outputs/metadata become examples in one new version.

Each row is checked before anything is written: a malformed row (a CSV line with the wrong
number of fields, a JSONL line that is not a JSON object, a value that is not an object) is
refused with its row number (``UploadInvalid``) and nothing is stored.

Actions (the Phoenix client's): ``create`` makes a new dataset (409 when the name is taken);
``append`` adds the rows to a dataset (creating it when there is none); ``update`` makes the
rows the dataset's whole content — rows equal to an example it has keep that example, the
others are created, and its examples no row matches are deleted (in the new version only).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from django.contrib.auth.models import User
from django.db import transaction

from annotations.datasets.models import Dataset, DatasetExample, DatasetVersion
from annotations.datasets.services import DatasetNameTaken, dataset_name_clean
from annotations.datasets.versions import (
    ExampleContent,
    dataset_version_latest,
    dataset_version_record,
    example_from_content,
    version_examples,
)
from evalhub.core.fields import save_named

MAX_ROWS: Final = 100_000
MAX_BYTES: Final = 200 * 1024 * 1024
Action = Literal["create", "append", "update"]
ACTIONS: Final = ("create", "append", "update")


class UploadInvalid(ValueError):
    """An upload that cannot be stored; the message names the field or the row."""


@dataclass(frozen=True, slots=True)
class UploadRow:
    content: ExampleContent
    span_id: str = ""


@dataclass(frozen=True, slots=True)
class Uploaded:
    dataset: Dataset
    version: DatasetVersion | None
    created: int
    updated: int
    deleted: int


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UploadInvalid(f"{where}: must be a JSON object")
    return dict(value)


def rows_from_json(
    *,
    inputs: Any,
    outputs: Any = None,
    metadata: Any = None,
    span_ids: Any = None,
) -> list[UploadRow]:
    """Rows from the Phoenix client's JSON body: parallel lists of objects."""
    if not isinstance(inputs, list) or not inputs:
        raise UploadInvalid("inputs: must be a non-empty list of JSON objects")
    if len(inputs) > MAX_ROWS:
        raise UploadInvalid(f"inputs: at most {MAX_ROWS:,} rows at once")
    lists: dict[str, list[Any]] = {}
    for name, values in (("outputs", outputs), ("metadata", metadata), ("span_ids", span_ids)):
        if values is None:
            lists[name] = [None] * len(inputs)
        elif not isinstance(values, list) or len(values) != len(inputs):
            raise UploadInvalid(f"{name}: must be a list as long as inputs ({len(inputs)})")
        else:
            lists[name] = values
    rows = []
    for index, value in enumerate(inputs):
        row = index + 1
        span = lists["span_ids"][index]
        if span is not None and not isinstance(span, str):
            raise UploadInvalid(f"span_ids: row {row}: must be a string")
        rows.append(
            UploadRow(
                ExampleContent(
                    input=_object(value, f"inputs: row {row}"),
                    output=_object(lists["outputs"][index], f"outputs: row {row}"),
                    metadata=_object(lists["metadata"][index], f"metadata: row {row}"),
                ),
                span_id=(span or "").strip()[:32],
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class Keys:
    input: Sequence[str]
    output: Sequence[str] = ()
    metadata: Sequence[str] = ()
    span_id: str | None = None


def _decoded(data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise UploadInvalid(f"file: not a valid gzip stream ({exc})") from None
    return data


def _record_rows(records: Sequence[Mapping[str, Any]], keys: Keys, label: str) -> list[UploadRow]:
    if len(records) > MAX_ROWS:
        raise UploadInvalid(f"file: at most {MAX_ROWS:,} rows at once")
    rows = []
    for record in records:
        rows.append(
            UploadRow(
                ExampleContent(
                    input={k: record.get(k) for k in keys.input},
                    output={k: record.get(k) for k in keys.output},
                    metadata={k: record.get(k) for k in keys.metadata},
                ),
                span_id=str(record.get(keys.span_id) or "")[:32] if keys.span_id else "",
            )
        )
    if not rows:
        raise UploadInvalid(f"file: the {label} has no rows")
    return rows


def _check_columns(columns: Sequence[str], keys: Keys) -> None:
    wanted = [*keys.input, *keys.output, *keys.metadata, *([keys.span_id] if keys.span_id else [])]
    missing = [k for k in wanted if k not in columns]
    if missing:
        raise UploadInvalid(f"file: columns not found: {', '.join(missing)}")


def _default_keys(columns: Sequence[str], keys: Keys) -> Keys:
    """With no keys given: every column is input (Phoenix infers the same way)."""
    if keys.input or keys.output or keys.metadata:
        return keys
    return Keys(input=list(columns))


def rows_from_csv(data: bytes, keys: Keys) -> list[UploadRow]:
    try:
        text = _decoded(data).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UploadInvalid("file: a CSV file must be UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise UploadInvalid("file: the CSV file is empty") from None
    except csv.Error as exc:
        raise UploadInvalid(f"file: row 1: {exc}") from None
    keys = _default_keys(header, keys)
    _check_columns(header, keys)
    records = []
    try:
        for fields in reader:
            row = reader.line_num - 1
            if not fields:
                continue
            if len(fields) != len(header):
                raise UploadInvalid(
                    f"file: row {row}: expected {len(header)} fields, got {len(fields)}"
                )
            records.append(dict(zip(header, fields, strict=True)))
    except csv.Error as exc:
        raise UploadInvalid(f"file: row {reader.line_num - 1}: {exc}") from None
    return _record_rows(records, keys, "CSV file")


def rows_from_jsonl(data: bytes, keys: Keys) -> list[UploadRow]:
    try:
        text = _decoded(data).decode("utf-8")
    except UnicodeDecodeError:
        raise UploadInvalid("file: a JSONL file must be UTF-8") from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise UploadInvalid(f"file: row {number}: not JSON ({exc})") from None
        if not isinstance(value, dict):
            raise UploadInvalid(f"file: row {number}: must be a JSON object")
        records.append(value)
    columns = list(dict.fromkeys(k for r in records for k in r))
    keys = _default_keys(columns, keys)
    _check_columns(columns, keys)
    return _record_rows(records, keys, "JSONL file")


def rows_from_parquet(data: bytes, keys: Keys) -> list[UploadRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError) as exc:
        raise UploadInvalid(f"file: not a readable Parquet file ({exc})") from None
    keys = _default_keys(table.column_names, keys)
    _check_columns(table.column_names, keys)
    return _record_rows(table.to_pylist(), keys, "Parquet file")


def rows_from_file(*, filename: str, content_type: str, data: bytes, keys: Keys) -> list[UploadRow]:
    """Rows of an uploaded file, by its name (``.csv``, ``.jsonl``, ``.parquet``) or type."""
    if len(data) > MAX_BYTES:
        raise UploadInvalid(f"file: larger than {MAX_BYTES // (1024 * 1024)} MB")
    name = (filename or "").lower().removesuffix(".gz")
    kind = content_type.split(";")[0].strip().lower()
    if name.endswith(".parquet") or data[:4] == b"PAR1":
        return rows_from_parquet(data, keys)
    if name.endswith((".jsonl", ".ndjson")) or kind in (
        "application/jsonl",
        "application/x-ndjson",
    ):
        return rows_from_jsonl(data, keys)
    return rows_from_csv(data, keys)


@transaction.atomic
def dataset_upload(
    *,
    name: str,
    rows: Sequence[UploadRow],
    action: str = "create",
    description: str | None = None,
    user: User | None = None,
) -> Uploaded:
    """Store ``rows`` as one new version of the dataset ``name`` (see the module doc for the
    actions). Raises ``UploadInvalid``, ``DatasetInvalid``, ``DatasetNameTaken``."""
    if action not in ACTIONS:
        raise UploadInvalid(f"action: must be one of {', '.join(ACTIONS)} (got {action!r})")
    cleaned = dataset_name_clean(name)
    dataset = Dataset.objects.select_for_update().filter(name=cleaned).first()
    if dataset is not None and action == "create":
        raise DatasetNameTaken(cleaned)
    if dataset is None:
        dataset = Dataset(
            name=cleaned,
            description=description or "",
            created_by=user if user is not None and user.is_authenticated else None,
        )
        save_named(dataset, taken=DatasetNameTaken)
    elif description is not None and description != dataset.description:
        dataset.description = description
        dataset.save(update_fields=["description"])
    kept: dict[str, list[DatasetExample]] = {}
    latest = dataset_version_latest(dataset=dataset)
    if action == "update" and latest is not None:
        for revision in version_examples(version=latest).select_related("example"):
            key = ExampleContent(revision.input, revision.output, revision.metadata).key()
            kept.setdefault(key, []).append(revision.example)
    new_rows = []
    for row in rows:
        matches = kept.get(row.content.key())
        if matches:
            matches.pop()
            continue
        new_rows.append(row)
    deletes = [example for examples in kept.values() for example in examples]
    # A row's span links its example to the trace (once per span in a dataset).
    linked = set(
        DatasetExample.objects.filter(
            dataset=dataset,
            source_span_id__in=[r.span_id for r in new_rows if r.span_id],
            removed_at__isnull=True,
        ).values_list("source_span_id", flat=True)
    )
    examples = []
    for row in new_rows:
        example = example_from_content(dataset, row.content)
        if row.span_id and row.span_id not in linked:
            example.source_span_id = row.span_id
            linked.add(row.span_id)
        examples.append((example, row))
    created = DatasetExample.objects.bulk_create([e for e, _ in examples], batch_size=1000)
    if created or deletes or latest is None:
        version = dataset_version_record(
            dataset=dataset,
            creates=[(e, row.content) for e, (_, row) in zip(created, examples, strict=True)],
            deletes=deletes,
            description=f"upload ({action}): {len(created)} added, {len(deletes)} deleted",
        )
    else:
        version = latest
    return Uploaded(
        dataset=dataset, version=version, created=len(created), updated=0, deleted=len(deletes)
    )
