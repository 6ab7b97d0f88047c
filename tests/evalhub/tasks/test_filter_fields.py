"""The online tasks' fields in the filter language: ``task_run`` and ``task`` select exactly
the items runs listed, at every level, through the one compiler."""

from __future__ import annotations

import pytest

from evalhub.tasks.engine import run_work
from evalhub.tasks.runs import run_manual_create
from tests import factories
from tests.evalhub.tasks.factories import code_check, make_task
from tracing.models import Span
from tracing.query import FIELDS, FilterError, compile_filter
from tracing.query.fields import membership_register
from tracing.query.membership import MembershipField

pytestmark = pytest.mark.django_db


def _ids(text: str) -> set[str]:
    return set(Span.objects.filter(compile_filter(text)).values_list("span_id", flat=True))


@pytest.fixture
def runs():
    """Three traces (two in session s/1); a span run over one LLM span, a trace run over the
    second trace, a session run over s/1, all of one task."""
    first = factories.trace(session_id="s/1")
    second = factories.trace(session_id="s/1")
    third = factories.trace()
    task = make_task(code_check())
    made = {}
    for granularity, keys in (
        ("span", [first[2].span_id]),
        ("trace", [second[0].trace.trace_id]),
        ("session", ["s/1"]),
    ):
        run = run_manual_create(project=task.project, granularity=granularity, keys=keys, task=task)
        run_work(run_id=run.pk, worker="test")
        made[granularity] = run
    return {"task": task, "runs": made, "traces": [first, second, third]}


def test_task_run_selects_the_items_of_the_run_at_every_level(runs):
    first, second, third = runs["traces"]
    span_run, trace_run, session_run = (runs["runs"][k] for k in ("span", "trace", "session"))
    assert _ids(f"task_run = {span_run.pk}") == {first[2].span_id}
    assert _ids(f"run_id = '{trace_run.pk}'") == {s.span_id for s in second}
    assert _ids(f"task_run = {session_run.pk}") == {s.span_id for s in first + second}
    assert _ids(f"task_run IN ({span_run.pk}, {trace_run.pk})") == {first[2].span_id} | {
        s.span_id for s in second
    }
    everything = {s.span_id for s in first + second + third}
    assert _ids(f"task_run != {session_run.pk}") == {s.span_id for s in third}
    assert _ids(f"NOT task_run = {span_run.pk}") == everything - {first[2].span_id}
    assert _ids(f"task_run NOT IN ({session_run.pk})") == {s.span_id for s in third}
    assert _ids("task_run IS NOT NULL") == {s.span_id for s in first + second}
    assert _ids("task_run IS NULL") == {s.span_id for s in third}
    assert _ids(f"task = {runs['task'].pk}") == {s.span_id for s in first + second}
    assert _ids(f"task_id = {runs['task'].pk + 1}") == set()
    assert _ids("task_run = 99999999999999999999") == set()
    assert _ids(f"task_run = {span_run.pk} AND span_kind = 'LLM'") == {first[2].span_id}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("task_run > 3", "> does not apply to task_run"),
        ("task_run = 'abc'", "task_run is a whole number, but 'abc' is not an id"),
        ("task_run = 1.5", "not an id"),
        ("task_run = true", "not an id"),
        ("task_run CONTAINS '1'", "CONTAINS does not apply to task_run"),
        ("task_runs = 1", "did you mean 'task_run'?"),
    ],
)
def test_bad_uses_are_filter_errors(text, message):
    with pytest.raises(FilterError) as excinfo:
        compile_filter(text)
    assert message in str(excinfo.value)


def test_the_fields_are_in_the_catalogue_and_names_cannot_be_taken_twice():
    assert FIELDS["task_run"].type == "integer" and "run" in FIELDS["task_run"].description
    assert FIELDS["run_id"].alias_of == "task_run"
    from evalhub.tasks.models import TaskRunItem

    with pytest.raises(ValueError, match="already a field"):
        membership_register(
            MembershipField(
                name="latency_ms",
                description="",
                model=TaskRunItem,
                value_path="run_id",
                level_path="target_kind",
                member_path="target_pk",
            )
        )
