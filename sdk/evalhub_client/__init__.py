"""Python client for the EvalHub REST API.

>>> from evalhub_client import Client
>>> client = Client(base_url="http://127.0.0.1:8000", api_key="...")
>>> client.spans.list("my-app", filter="span_kind == 'LLM'").to_df()
>>> client.tasks.wait(client.tasks.run_backfill("quality", start_time="7d", project="my-app"))
"""

from evalhub_client.client import Client
from evalhub_client.errors import (
    AuthenticationError,
    EvalHubError,
    NotFoundError,
    RunRejectedError,
    ServerError,
    SpanLogError,
    ValidationError,
)
from evalhub_client.spans import MetadataUpdateResult, SpanList, Spans
from evalhub_client.tasks import Run, RunItem, Task, Tasks

__all__ = [
    "AuthenticationError",
    "Client",
    "EvalHubError",
    "MetadataUpdateResult",
    "NotFoundError",
    "Run",
    "RunItem",
    "RunRejectedError",
    "ServerError",
    "SpanList",
    "SpanLogError",
    "Spans",
    "Task",
    "Tasks",
    "ValidationError",
]
