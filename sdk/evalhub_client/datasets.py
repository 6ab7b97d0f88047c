"""``client.datasets``: datasets with versions. Every change (examples uploaded, edited,
deleted) makes a version; examples hold ``input``, ``output`` (the expected output) and
``metadata`` as JSON objects.

>>> ds = client.datasets.create("qa", dataframe=df, input_keys=["question"], output_keys=["answer"])
>>> ds = client.datasets.add_examples("qa", inputs=[{"question": "why?"}])
>>> client.datasets.versions("qa")[0]["version_id"] == ds.version_id
True
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from evalhub_client._http import Transport, path_segment

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Dataset:
    """One version of a dataset with its examples (``id``/``input``/``output``/``metadata``)."""

    id: str
    name: str
    version_id: str | None
    examples: list[dict[str, Any]] = field(repr=False)
    description: str = ""

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.examples)

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "example_id": e["id"],
                    "input": e["input"],
                    "output": e["output"],
                    "metadata": e["metadata"],
                }
                for e in self.examples
            ]
        ).set_index("example_id")


def _records(frame: pd.DataFrame, keys: Sequence[str]) -> list[dict[str, Any]]:
    if not keys:
        return [{} for _ in range(len(frame))]
    missing = [k for k in keys if k not in frame.columns]
    if missing:
        raise ValueError(f"columns not in the DataFrame: {', '.join(missing)}")
    return frame[list(keys)].to_dict(orient="records")


class Examples(TypedDict, total=False):
    """Where ``create`` and ``add_examples`` take examples from: a DataFrame with the columns of
    each part (``*_keys``; by default every column not an output or metadata is input), or
    lists of objects (``inputs``, and optionally ``outputs`` and ``metadata``)."""

    dataframe: pd.DataFrame | None
    input_keys: Sequence[str]
    output_keys: Sequence[str]
    metadata_keys: Sequence[str]
    inputs: Sequence[Mapping[str, Any]] | None
    outputs: Sequence[Mapping[str, Any]] | None
    metadata: Sequence[Mapping[str, Any]] | None


def _rows(examples: Examples) -> tuple[Any, Any, Any]:
    """The examples' (inputs, outputs, metadata)."""
    dataframe, inputs = examples.get("dataframe"), examples.get("inputs")
    if dataframe is not None:
        if inputs is not None:
            raise ValueError("give a dataframe or inputs, not both")
        output_keys = examples.get("output_keys", ())
        metadata_keys = examples.get("metadata_keys", ())
        keys = builtins.list(examples.get("input_keys", ())) or [
            c for c in dataframe.columns if c not in (*output_keys, *metadata_keys)
        ]
        return (
            _records(dataframe, keys),
            _records(dataframe, output_keys),
            _records(dataframe, metadata_keys),
        )
    if inputs is None:
        raise ValueError("give a dataframe or inputs")
    return inputs, examples.get("outputs"), examples.get("metadata")


class Datasets:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def _path(self, dataset: str | Dataset) -> str:
        ident = dataset.id if isinstance(dataset, Dataset) else dataset
        return f"/v1/datasets/{path_segment(ident)}"

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every dataset (id, name, description, example_count, ...), newest first."""
        found: builtins.list[dict[str, Any]] = []
        cursor = None
        while True:
            body = self._t.request("GET", "/v1/datasets", params={"cursor": cursor, "limit": 1000})
            found += body["data"]
            cursor = body.get("next_cursor")
            if not cursor:
                return found

    def get(self, dataset: str | Dataset, *, version_id: str | None = None) -> Dataset:
        """A dataset (by id or name) at a version, default its latest."""
        info = self._t.request("GET", self._path(dataset))["data"]
        examples = self._t.request(
            "GET", f"{self._path(info['id'])}/examples", params={"version_id": version_id}
        )["data"]
        return Dataset(
            id=info["id"],
            name=info["name"],
            version_id=examples.get("version_id"),
            examples=examples["examples"],
            description=info.get("description") or "",
        )

    def create(
        self, name: str, *, description: str | None = None, **examples: Unpack[Examples]
    ) -> Dataset:
        """A new dataset from a DataFrame (columns chosen by ``*_keys``; by default every
        column not an output or metadata is input) or lists of objects. A malformed row is
        refused with its row number and nothing is stored."""
        return self._upload("create", name, description, examples)

    def add_examples(self, name: str, **examples: Unpack[Examples]) -> Dataset:
        """Add examples (a new version); creates the dataset when there is none."""
        return self._upload("append", name, None, examples)

    def _upload(
        self, action: str, name: str, description: str | None, examples: Examples
    ) -> Dataset:
        inputs, outputs, metadata = _rows(examples)
        body: dict[str, Any] = {"action": action, "name": name, "inputs": builtins.list(inputs)}
        if outputs is not None:
            body["outputs"] = builtins.list(outputs)
        if metadata is not None:
            body["metadata"] = builtins.list(metadata)
        if description is not None:
            body["description"] = description
        data = self._t.request("POST", "/v1/datasets/upload", json=body)["data"]
        return self.get(data["dataset_id"], version_id=data["version_id"])

    def edit_examples(
        self, dataset: str | Dataset, examples: Sequence[Mapping[str, Any]]
    ) -> Dataset:
        """Replace examples' ``input``/``output``/``metadata`` (by ``id``): a new version."""
        data = self._t.request(
            "POST",
            f"{self._path(dataset)}/examples/edit",
            json={"examples": builtins.list(examples)},
        )["data"]
        return self.get(data["dataset_id"], version_id=data["version_id"])

    def delete_examples(self, dataset: str | Dataset, example_ids: Sequence[str]) -> Dataset:
        """Delete examples: a new version (older versions keep them)."""
        data = self._t.request(
            "POST",
            f"{self._path(dataset)}/examples/delete",
            json={"example_ids": [str(i) for i in example_ids]},
        )["data"]
        return self.get(data["dataset_id"], version_id=data["version_id"])

    def versions(self, dataset: str | Dataset) -> builtins.list[dict[str, Any]]:
        """The dataset's versions, newest first."""
        return self._t.request("GET", f"{self._path(dataset)}/versions")["data"]

    def diff(self, dataset: str | Dataset, *, version_id: str, against: str) -> dict[str, Any]:
        """Examples ``added``, ``removed`` and ``changed`` from ``against`` to ``version_id``."""
        return self._t.request(
            "GET",
            f"{self._path(dataset)}/versions/{path_segment(version_id)}/diff",
            params={"against": against},
        )["data"]

    def download(
        self, dataset: str | Dataset, *, version_id: str | None = None, format: str = "csv"
    ) -> str:
        """A version (default latest) as CSV or JSONL text."""
        if format not in ("csv", "jsonl"):
            raise ValueError("format must be csv or jsonl")
        with self._t.stream(
            f"{self._path(dataset)}/{format}", params={"version_id": version_id}
        ) as response:
            return response.read().decode()

    def delete(self, dataset: str | Dataset) -> None:
        self._t.request("DELETE", self._path(dataset))
