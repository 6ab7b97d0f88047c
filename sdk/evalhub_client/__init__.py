"""Python client for the EvalHub REST API.

>>> from evalhub_client import Client
>>> client = Client(base_url="http://127.0.0.1:8000", api_key="...")
>>> for span in client.spans.list(project="my-app", filter="span_kind = 'LLM'").spans:
...     print(span.span_id, span.name)
>>> client.tasks.wait(client.tasks.run_backfill("quality", start_time="7d", project="my-app"))
"""

from evalhub_client.channels import NotificationChannel, NotificationChannels
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
from evalhub_client.monitors import Automation, Automations, Monitor, Monitors, Preview
from evalhub_client.spans import SpanList, SpanListResponse, Spans
from evalhub_client.tasks import Run, RunItem, Task, Tasks
from evalhub_client.types import (
    AnnotateRecordInput,
    AnnotationInput,
    MetadataUpdateResult,
    Pagination,
    Span,
    SpanDeletePartialResponse,
    SpansLogResponse,
    SpansUpdateResult,
)

__all__ = [
    "AnnotateRecordInput",
    "AnnotationInput",
    "AuthenticationError",
    "Automation",
    "Automations",
    "Client",
    "EvalHubError",
    "MetadataUpdateResult",
    "Monitor",
    "Monitors",
    "NotFoundError",
    "NotificationChannel",
    "NotificationChannels",
    "Pagination",
    "Preview",
    "Run",
    "RunItem",
    "RunRejectedError",
    "ServerError",
    "Span",
    "SpanDeletePartialResponse",
    "SpanList",
    "SpanListResponse",
    "SpanLogError",
    "Spans",
    "SpansLogResponse",
    "SpansUpdateResult",
    "Task",
    "Tasks",
    "ValidationError",
]
