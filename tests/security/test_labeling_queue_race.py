"""Issue 11, point 11: in an open labeling queue (no assignees) one completion finishes an item,
also when two people submit it at the same moment. Real concurrency: two threads, each with its
own database connection, released together by a barrier, 20 times."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection, connections

from annotations.models import Annotation
from annotations.queues.labelling import QueueItemAlreadyDone, queue_item_submit
from annotations.queues.models import ItemState, LabelingQueueReview
from annotations.queues.services import queue_create, queue_items_add
from annotations.rubrics.services import annotation_config_create
from tests import factories

RACES = 20


def _race(*calls: Callable[[], object]) -> list[object]:
    """Run ``calls`` at once, each in a thread with its own connection; their results or
    exceptions, in order."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[index] = call()
        except Exception as exc:  # the outcome under test
            outcomes[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row locks under concurrent connections: PostgreSQL (CI runs it)",
)
def test_two_people_submitting_one_open_queue_item_at_once_complete_it_once(
    transactional_db, django_user_model
):
    ann = django_user_model.objects.create_user(username="ann")
    bob = django_user_model.objects.create_user(username="bob")
    correctness = annotation_config_create(
        name="correctness",
        kind="CATEGORICAL",
        values=[{"label": "correct", "score": 1}, {"label": "incorrect", "score": 0}],
    )
    queue = queue_create(name="open", item_kind="TRACE", configs=[correctness])
    roots = [factories.trace()[0] for _ in range(RACES)]
    queue_items_add(queue=queue, trace_ids=[root.trace.trace_id for root in roots])
    items = list(queue.items.order_by("id"))

    refused = 0
    for item in items:
        outcomes = _race(
            lambda item=item: queue_item_submit(
                item=item, user=ann, answers={"correctness": "correct"}
            ),
            lambda item=item: queue_item_submit(
                item=item, user=bob, answers={"correctness": "incorrect"}
            ),
        )
        losers = [o for o in outcomes if isinstance(o, Exception)]
        assert len(losers) == 1, outcomes
        assert isinstance(losers[0], QueueItemAlreadyDone), losers[0]
        assert "your answers were not saved" in str(losers[0])
        refused += 1

        completions = LabelingQueueReview.objects.filter(item=item, state=ItemState.COMPLETED)
        assert completions.count() == 1
        winner = completions.get().user.username
        assert losers[0].by == winner
        # Only the winner's label is on the trace.
        labels = list(
            Annotation.objects.filter(trace=item.trace).values_list("identifier", "label")
        )
        assert labels == [(winner, "correct" if winner == "ann" else "incorrect")]
    assert refused == RACES
