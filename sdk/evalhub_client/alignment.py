"""The alignment workspace: run a draft of an evaluator's next version over the items people
labelled, compare it with the current version, save it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pandas as pd

from evalhub_client._http import Transport, path_segment

FINISHED = ("completed", "failed")


class Alignment:
    """``client.alignment``. A ``run`` argument is a run's id or the dict the server sent."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def create(
        self,
        evaluator: str | int,
        *,
        project: str,
        draft: Mapping[str, Any],
        max_items: int = 500,
    ) -> dict[str, Any]:
        """Start running ``draft`` (a definition, as a version's) over up to ``max_items``
        items of ``project`` that people labelled with the evaluator's results' name."""
        body: dict[str, Any] = self._http.request(
            "POST",
            f"/v1/evaluators/{path_segment(evaluator)}/alignment-runs",
            json={"project": project, "draft": dict(draft), "max_items": max_items},
        )
        return body

    def estimate(
        self,
        evaluator: str | int,
        *,
        project: str,
        draft: Mapping[str, Any],
        max_items: int = 500,
    ) -> dict[str, Any]:
        """What ``create`` with the same arguments would take, before running it: ``items``,
        ``judge_calls``, ``tokens``, ``cost`` (None for an unpriced model), ``seconds``."""
        body: dict[str, Any] = self._http.request(
            "POST",
            f"/v1/evaluators/{path_segment(evaluator)}/alignment-estimate",
            json={"project": project, "draft": dict(draft), "max_items": max_items},
        )
        return body

    def list(self, evaluator: str | int) -> list[dict[str, Any]]:
        return list(self._http.pages(f"/v1/evaluators/{path_segment(evaluator)}/alignment-runs"))

    def get(self, run: int | Mapping[str, Any]) -> dict[str, Any]:
        """The run with its comparison: ``comparison.current`` / ``comparison.draft`` metrics
        on the same items, ``comparison.better``, ``comparison.flips``."""
        body: dict[str, Any] = self._http.request("GET", f"/v1/alignment-runs/{_id(run)}")
        return body

    def wait(
        self, run: int | Mapping[str, Any], *, timeout: float = 600.0, poll: float = 1.0
    ) -> dict[str, Any]:
        """Poll until the run has completed or failed; raises ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.get(run)
            if body["status"] in FINISHED:
                return body
            if time.monotonic() > deadline:
                raise TimeoutError(f"alignment run {_id(run)} is still {body['status']}")
            time.sleep(poll)

    def items(self, run: int | Mapping[str, Any]) -> pd.DataFrame:
        """One row per labelled item: ``human_label``, ``current_label``, ``draft_label``,
        ``flip`` (fixed, broken, changed, new or None), tokens and latency."""
        return pd.DataFrame(list(self._http.pages(f"/v1/alignment-runs/{_id(run)}/items")))

    def save(self, run: int | Mapping[str, Any]) -> int:
        """Save the completed run's draft as the evaluator's next version; its number."""
        body = self._http.request("POST", f"/v1/alignment-runs/{_id(run)}/save")
        return int(body["version"])

    def resume(self, run: int | Mapping[str, Any]) -> bool:
        """Send a queued run, or one whose worker died, to a worker again (the server's
        sweeper does so by itself after a lease); False when it needs nothing."""
        body = self._http.request("POST", f"/v1/alignment-runs/{_id(run)}/resume")
        return bool(body["sent"])

    def golden_dataset(self, run: int | Mapping[str, Any], name: str) -> dict[str, Any]:
        """Copy the run's labelled items into the dataset ``name`` as golden examples."""
        body: dict[str, Any] = self._http.request(
            "POST", f"/v1/alignment-runs/{_id(run)}/golden-dataset", json={"name": name}
        )
        return body


def _id(run: int | Mapping[str, Any]) -> int:
    return int(run["id"]) if isinstance(run, Mapping) else int(run)
