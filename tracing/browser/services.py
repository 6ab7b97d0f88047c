"""Writes of the trace browser: deleting the rows its table shows."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from django.db import transaction
from django.db.models import QuerySet

from tracing.browser.selection import ResultSize, result_units, unit_spans
from tracing.browser.tabs import Tab
from tracing.models import Project, Span
from tracing.store import services as store

# Units (traces, spans, sessions) deleted in one transaction by ``spans_delete_result``.
DELETE_BATCH_UNITS: Final[dict[str, int]] = {"spans": 2000, "traces": 400, "sessions": 50}


def spans_delete_result(
    *,
    project: Project,
    tab: Tab,
    spans: QuerySet[Span],
    as_of: datetime,
    batch_units: int | None = None,
) -> ResultSize:
    """Delete a tab's whole filtered result: every span of the matching traces, spans or
    sessions (``tracing.browser.selection.result_units``), as the table shows them.

    Only spans ingested at or before ``as_of`` count, for matching and for deleting: ``as_of``
    is when the confirmation page counted the result, so what it stated is what goes, and spans
    that arrive meanwhile stay (even in a trace or session being deleted, which is then
    recomputed from them). Whole units are deleted a batch at a time, each batch in its own
    transaction (so no transaction holds a huge delete), in unit-id order; a unit is never
    split across batches, so an interrupted run leaves whole units, and running it again with
    the same arguments deletes what is left. Must not be called inside a transaction.

    Returns how many units and spans were deleted.
    """
    size = batch_units or DELETE_BATCH_UNITS[tab]
    rows = deleted = 0
    last: int | None = None
    while True:
        batch = list(result_units(tab=tab, spans=spans, as_of=as_of, after=last)[:size])
        if not batch:
            break
        with transaction.atomic():
            deleted += store.spans_delete_rows(
                unit_spans(project=project, tab=tab, units=batch, as_of=as_of)
            )
        rows += len(batch)
        last = batch[-1]
    return ResultSize(rows=rows, spans=deleted)
