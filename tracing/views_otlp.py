"""OTLP/HTTP trace ingest (``POST /v1/traces``)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def otlp_traces(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"detail": "not implemented yet"}, status=501)
