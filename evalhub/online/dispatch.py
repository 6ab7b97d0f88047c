"""Handing runs to Celery. A message that cannot be sent is not lost: the run stays queued and
the sweeper dispatches it again."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def run_dispatch(run_id: int) -> None:
    from evalhub.tasks.jobs import run_execute

    try:
        run_execute.delay(run_id)
    except Exception:  # the broker is down: the sweeper retries
        logger.exception("could not dispatch run %s; the sweeper will", run_id)
