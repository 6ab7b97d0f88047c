"""LLM providers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from evalhub.models import ApiKey, Evaluator, EvaluatorVersion, Provider
from evalhub.services import api_key_hash, api_key_mark_used
from tracing.models import Project, Span


# --- the evaluator hub -------------------------------------------------------------------------


def provider_list() -> QuerySet[Provider]:
    return Provider.objects.order_by("-is_default", "name")


def provider_default() -> Provider | None:
    return Provider.objects.filter(is_default=True).first()
