"""``client.spans`` (``Spans``) and its list response (``SpanList``); ``spans.types`` holds
what the calls take and return, at the Arize SDK's import path."""

from evalhub_client.spans.client import SpanList, SpanListResponse, Spans

__all__ = ["SpanList", "SpanListResponse", "Spans"]
