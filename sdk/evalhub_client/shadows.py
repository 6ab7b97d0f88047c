"""Shadow versions: run a candidate version of a task's evaluator beside the active one, compare
the two on the same items, promote or discard the candidate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pandas as pd

from evalhub_client._http import Transport


class Shadows:
    """``client.shadows``. A ``shadow`` argument is a shadow's id or the dict the server sent."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def start(
        self,
        task: int,
        evaluator: str | int,
        *,
        candidate: Mapping[str, Any] | None = None,
        alignment_id: int | None = None,
    ) -> dict[str, Any]:
        """Run ``candidate`` (a definition, as a version's) — or the draft of alignment run
        ``alignment_id`` — beside ``evaluator``'s active version in task ``task``'s next runs."""
        body: dict[str, Any] = self._http.request(
            "POST",
            f"/v1/tasks/{int(task)}/shadows",
            json={
                "evaluator": str(evaluator),
                "candidate": dict(candidate) if candidate is not None else None,
                "alignment_id": alignment_id,
            },
        )
        return body

    def list(self, task: int) -> list[dict[str, Any]]:
        """The task's shadows, newest first."""
        body = self._http.request("GET", f"/v1/tasks/{int(task)}/shadows")
        return list(body["data"])

    def get(self, shadow: int | Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = self._http.request("GET", f"/v1/shadows/{_id(shadow)}")
        return body

    def comparison(
        self, shadow: int | Mapping[str, Any], *, bucket: Literal["hour", "day", "week"] = "hour"
    ) -> dict[str, Any]:
        """Both versions on the same items: ``between`` (their agreement), ``active`` and
        ``candidate`` (each against people: ``kappa``, ``kappa_ci``, ``pairs``, …), ``better``,
        ``flips`` and ``buckets`` (label counts and mean scores over time)."""
        body: dict[str, Any] = self._http.request(
            "GET", f"/v1/shadows/{_id(shadow)}/comparison", params={"bucket": bucket}
        )
        return body

    def items(self, shadow: int | Mapping[str, Any]) -> pd.DataFrame:
        """One row per item the candidate judged: ``human_label``, ``active_label``,
        ``candidate_label``, ``flip``, ``trace_id`` / ``span_id`` and the rest."""
        body = self._http.request(
            "GET", f"/v1/shadows/{_id(shadow)}/comparison", params={"items": "true"}
        )
        return pd.DataFrame(body.get("items") or [])

    def distribution(
        self, shadow: int | Mapping[str, Any], *, bucket: Literal["hour", "day", "week"] = "hour"
    ) -> pd.DataFrame:
        """Label counts over time, one row per bucket, side (active, candidate) and label."""
        rows = [
            {"start": row["start"], "side": side, "label": label, "count": count}
            for row in self.comparison(shadow, bucket=bucket)["buckets"]
            for side in ("active", "candidate")
            for label, count in row[side].items()
        ]
        frame = pd.DataFrame(rows, columns=["start", "side", "label", "count"])
        frame["start"] = pd.to_datetime(frame["start"], utc=True)
        return frame

    def promote(self, shadow: int | Mapping[str, Any]) -> int:
        """Make the candidate the evaluator's active version; the new version's number."""
        body = self._http.request("POST", f"/v1/shadows/{_id(shadow)}/promote")
        return int(body["version"])

    def discard(self, shadow: int | Mapping[str, Any]) -> int:
        """Stop the shadow and remove its results; how many were removed."""
        body = self._http.request("POST", f"/v1/shadows/{_id(shadow)}/discard")
        return int(body["removed"])


def _id(shadow: int | Mapping[str, Any]) -> int:
    return int(shadow["id"]) if isinstance(shadow, Mapping) else int(shadow)
