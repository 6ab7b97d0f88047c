"""A shadow with a real Celery worker process (and its beat), Redis, PostgreSQL and the fake
judge: the worker's continuous runs evaluate the candidate beside the active version and write
its results apart — the hooks are registered in the worker as in the web process."""

from __future__ import annotations

import pytest
from django.db import connection

from annotations.models import Annotation
from evalhub.shadow.models import ShadowResult
from evalhub.shadow.services import shadow_start
from tests import factories
from tests.evalhub.shadow.helpers import CANDIDATE, strict_reply
from tests.evalhub.tasks.factories import judge, make_task
from tests.evalhub.tasks.worker_process import Worker, broker_flush, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="a worker process needs PostgreSQL"
    ),
]


def test_a_worker_runs_the_shadow_beside_the_active_version(provider, fake_openai, tmp_path):
    fake_openai.reply = strict_reply()
    task = make_task(judge(provider_id=provider.pk), filter="span_kind = 'LLM'", interval_seconds=5)
    evaluator = task.task_evaluators.get().evaluator
    shadow = shadow_start(task=task, evaluator=evaluator, candidate={**CANDIDATE})
    spans = [factories.trace()[2] for _ in range(5)]
    broker_flush()
    process = Worker(tmp_path).start()
    try:
        wait_for(
            lambda: (
                ShadowResult.objects.filter(shadow=shadow).count() == 5
                and Annotation.objects.filter(name="correctness").count() == 5
            ),
            timeout=90,
            worker=process,
        )
    finally:
        process.stop()
        broker_flush()
    rows = ShadowResult.objects.filter(shadow=shadow)
    assert {(r.span_id, r.label) for r in rows} == {(s.span_id, "incorrect") for s in spans}
    results = Annotation.objects.filter(name="correctness")
    assert {(a.span.span_id, a.label, a.metadata["version"]) for a in results} == {
        (s.span_id, "correct", 1) for s in spans
    }
