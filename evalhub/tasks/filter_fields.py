"""The online tasks' fields in the filter language: ``task_run = 42`` (the items run 42
evaluated: its spans, or every span of its traces or sessions) and ``task = 7`` (every item
a run of task 7 listed). Registered when the app is ready (``EvalhubConfig.ready``); the
language (``tracing.query.membership``) compiles them."""

from __future__ import annotations

from evalhub.tasks.models import Granularity, TaskRunItem
from tracing.query.fields import membership_register
from tracing.query.membership import MembershipField

_LEVELS = {
    "span": Granularity.SPAN.value,
    "trace": Granularity.TRACE.value,
    "session": Granularity.SESSION.value,
}

TASK_RUN = MembershipField(
    name="task_run",
    description="A task run's id: the spans, traces or sessions it evaluated (run → View traces)",
    model=TaskRunItem,
    value_path="run_id",
    level_path="target_kind",
    member_path="target_pk",
    levels=_LEVELS,
    aliases=("run_id",),
)
TASK = MembershipField(
    name="task",
    description="A task's id: the spans, traces or sessions its runs evaluated",
    model=TaskRunItem,
    value_path="run__task_id",
    level_path="target_kind",
    member_path="target_pk",
    levels=_LEVELS,
    aliases=("task_id",),
)


def filter_fields_register() -> None:
    membership_register(TASK_RUN)
    membership_register(TASK)
