"""Each run of a prompt experiment EvalHub runs is traced: the run and its model call as spans
in the experiment's project, linked from the run and open in the trace browser; an evaluator
(here a dataset task's) reads the trace's spans."""

from __future__ import annotations

import pytest
from django.urls import reverse

from evalhub.experiments.services import prompt_experiment_start
from tests.evalhub.experiments.factories import upper_reply
from tracing.models import Span, Trace

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_run_of_a_prompt_experiment_has_its_trace(
    dataset,
    prompt,
    provider,
    fake_openai,
    celery_eager,
    django_capture_on_commit_callbacks,
    admin_client,
):
    fake_openai.reply = upper_reply
    with django_capture_on_commit_callbacks(execute=True):
        experiment = prompt_experiment_start(
            dataset=dataset.dataset,
            version=dataset.version,
            prompt_version=prompt,
            provider=provider,
            variables={"question": "input.question"},
            concurrency=2,
        )
    runs = list(experiment.runs.all())
    assert len(runs) == 3 and all(run.trace_id for run in runs)
    assert len({run.trace_id for run in runs}) == 3
    traces = Trace.objects.filter(trace_id__in=[r.trace_id for r in runs])
    assert {t.project.name for t in traces} == {experiment.project_name}

    paris = next(r for r in runs if r.output == "Paris")
    spans = {s.name: s for s in Span.objects.filter(trace__trace_id=paris.trace_id)}
    assert set(spans) == {"experiment run", "llm"}
    assert spans["llm"].parent_id == spans["experiment run"].span_id
    assert spans["llm"].model_name == "gpt-4o-mini"
    assert spans["llm"].attributes["llm"]["token_count"]["prompt"] == 10
    assert spans["experiment run"].output_value == "Paris"
    assert '"capital of France"' in spans["experiment run"].input_value
    assert spans["experiment run"].metadata["experiment_id"] == experiment.pk

    # The example without the variable never reached the model: its trace says why.
    failed = next(r for r in runs if r.error)
    root = Span.objects.get(trace__trace_id=failed.trace_id)
    assert root.status_code == "ERROR" and "input.question is missing" in root.status_message

    # The trace opens in the trace browser, and the experiment page links to it.
    page = admin_client.get(
        reverse(
            "detail:trace",
            kwargs={"project": experiment.project_name, "trace_id": paris.trace_id},
        )
    )
    assert page.status_code == 200 and b"experiment run" in page.content
    detail = admin_client.get(reverse("experiments:detail", args=[experiment.pk]))
    assert paris.trace_id.encode() in detail.content
