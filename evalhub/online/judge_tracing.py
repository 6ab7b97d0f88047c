"""Enable tracing: a task's judge calls as OpenInference LLM spans in a project of their own.

The project is ``"<project> · judge traces"``, created on demand. Each judge call is one trace
with one LLM span (the rendered prompt as ``llm.input_messages``, the answer as
``llm.output_messages`` with its tool call, token counts, latency, retries and errors), written
through the trace store's ingest service — never over the network — and its trace id is kept on
the evaluation's result.
"""

from __future__ import annotations

from tracing.models import Project

SUFFIX = " · judge traces"


def judge_project_name(project_name: str) -> str:
    """The project a task on ``project_name`` records its judge calls in."""
    limit = (Project._meta.get_field("name").max_length or 200) - len(SUFFIX)
    return project_name[:limit] + SUFFIX
