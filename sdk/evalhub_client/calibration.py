"""Live calibration: how an evaluator's versions agree with people's labels, as DataFrames."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from evalhub_client._http import Transport, path_segment

METRIC_COLUMNS = (
    "evaluator",
    "version",
    "bucket_start",
    "pairs",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "kappa",
    "kappa_low",
    "kappa_high",
)
LABEL_COLUMNS = (
    "evaluator",
    "version",
    "bucket_start",
    "label",
    "support",
    "predicted",
    "precision",
    "precision_low",
    "precision_high",
    "recall",
    "recall_low",
    "recall_high",
)


def _frame(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(columns))
    frame["bucket_start"] = pd.to_datetime(frame["bucket_start"], utc=True)
    frame["version"] = frame["version"].astype("Int64")
    return frame


class Calibration:
    """``client.calibration``: agreement of evaluators with people over time."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def get(
        self,
        evaluator: str | int,
        *,
        project: str | None = None,
        bucket: str = "day",
        start: datetime | str | None = None,
        end: datetime | str | None = None,
    ) -> dict[str, Any]:
        """The server's answer: per version, the metrics over the range and per bucket
        (accuracy, Cohen's kappa, per-label precision and recall, the confusion matrix, 95 %
        intervals, pairs), and the same as flat ``rows`` / ``label_rows``."""
        params = {
            "project": project,
            "bucket": bucket,
            "start": start.isoformat() if isinstance(start, datetime) else start,
            "end": end.isoformat() if isinstance(end, datetime) else end,
        }
        body: dict[str, Any] = self._http.request(
            "GET",
            f"/v1/evaluators/{path_segment(evaluator)}/calibration",
            params={k: v for k, v in params.items() if v is not None},
        )
        return body

    def backfill_estimate(
        self,
        task_id: int,
        *,
        start_time: datetime | str,
        end_time: datetime | str | None = None,
        max_spans: int = 10_000,
    ) -> dict[str, Any]:
        """Before ``client.tasks.run_backfill``: the items the backfill would evaluate, judge
        calls, tokens, cost (None for an unpriced model) and ``seconds`` at the provider's
        limits."""
        body: dict[str, Any] = self._http.request(
            "POST",
            f"/v1/tasks/{int(task_id)}/backfill-estimate",
            json={
                "data_start_time": start_time.isoformat()
                if isinstance(start_time, datetime)
                else start_time,
                "data_end_time": end_time.isoformat()
                if isinstance(end_time, datetime)
                else end_time,
                "max_spans": max_spans,
            },
        )
        return body

    def metrics(self, evaluator: str | int, **kwargs: Any) -> pd.DataFrame:
        """One row per version and bucket (``bucket_start`` NaT: the version over the whole
        range) with ``pairs``, ``accuracy``, ``kappa`` and their 95 % bounds."""
        return _frame(self.get(evaluator, **kwargs)["rows"], METRIC_COLUMNS)

    def labels(self, evaluator: str | int, **kwargs: Any) -> pd.DataFrame:
        """One row per version, bucket and label: ``precision`` and ``recall`` with bounds."""
        return _frame(self.get(evaluator, **kwargs)["label_rows"], LABEL_COLUMNS)

    # --- calibration sampling and disagreement routing of a task --------------------------------

    def sampling(self, task_id: int) -> dict[str, Any]:
        """The task's calibration sampling: ``enabled``, ``queue_id``, ``rate_percent``,
        ``stratify`` and ``strata`` (label → [items judged, items sent])."""
        body: dict[str, Any] = self._http.request(
            "GET", f"/v1/tasks/{int(task_id)}/calibration-sampling"
        )
        return body

    def set_sampling(
        self,
        task_id: int,
        *,
        queue_id: int,
        rate_percent: float,
        stratify: bool = True,
        evaluator: str | None = None,
    ) -> dict[str, Any]:
        """Send ``rate_percent`` of the task's judged items (per judge label when
        ``stratify``) into the labeling queue ``queue_id`` from now on."""
        body: dict[str, Any] = self._http.request(
            "PUT",
            f"/v1/tasks/{int(task_id)}/calibration-sampling",
            json={
                "queue_id": queue_id,
                "rate_percent": rate_percent,
                "stratify": stratify,
                "evaluator": evaluator,
            },
        )
        return body

    def clear_sampling(self, task_id: int) -> None:
        self._http.request("DELETE", f"/v1/tasks/{int(task_id)}/calibration-sampling")

    def routing(self, task_id: int) -> dict[str, Any]:
        """The task's disagreement routing: ``enabled``, ``queue_id``, ``judge``, ``people``,
        ``routed`` (items added so far)."""
        body: dict[str, Any] = self._http.request(
            "GET", f"/v1/tasks/{int(task_id)}/disagreement-routing"
        )
        return body

    def set_routing(
        self,
        task_id: int,
        *,
        queue_id: int,
        judge: bool = True,
        people: bool = False,
        evaluator: str | None = None,
    ) -> dict[str, Any]:
        """As labels arrive, route the items where the judge and a person (``judge``) or two
        people (``people``) disagree into the review queue ``queue_id``."""
        body: dict[str, Any] = self._http.request(
            "PUT",
            f"/v1/tasks/{int(task_id)}/disagreement-routing",
            json={"queue_id": queue_id, "judge": judge, "people": people, "evaluator": evaluator},
        )
        return body

    def clear_routing(self, task_id: int) -> None:
        self._http.request("DELETE", f"/v1/tasks/{int(task_id)}/disagreement-routing")

    def route(
        self,
        evaluator: str | int,
        *,
        project: str,
        queue_id: int,
        judge: bool = True,
        people: bool = False,
    ) -> dict[str, Any]:
        """Route the disagreements already there, once: ``disagreements``, ``added``,
        ``already_queued``, ``other_kind``."""
        body: dict[str, Any] = self._http.request(
            "POST",
            f"/v1/evaluators/{path_segment(evaluator)}/disagreements/route",
            json={"project": project, "queue_id": queue_id, "judge": judge, "people": people},
        )
        return body
