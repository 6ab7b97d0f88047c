"""Python client for the EvalHub REST API.

>>> from evalhub_client import Client
>>> client = Client(base_url="http://127.0.0.1:8000", api_key="...")
>>> client.spans.list("my-app", filter="span_kind == 'LLM'").to_df()
"""

from evalhub_client.client import Client
from evalhub_client.errors import (
    AuthenticationError,
    EvalHubError,
    NotFoundError,
    ServerError,
    SpanLogError,
    ValidationError,
)
from evalhub_client.spans import MetadataUpdateResult, SpanList, Spans

__all__ = [
    "AuthenticationError",
    "Client",
    "EvalHubError",
    "MetadataUpdateResult",
    "NotFoundError",
    "ServerError",
    "SpanList",
    "SpanLogError",
    "Spans",
    "ValidationError",
]
