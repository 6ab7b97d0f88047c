"""Trace browser detail pages: a trace (span tree, waterfall, span pane) and a session.

``project`` is the project's name, as in the list pages' links.
"""

from django.urls import path

import evalhub.core.converters  # noqa: F401  (registers the <name:…> path converter)
from tracing.detail import views as views_detail

app_name = "detail"
urlpatterns = [
    path(
        "projects/<name:project>/traces/<name:trace_id>/",
        views_detail.trace_detail,
        name="trace",
    ),
    path(
        "projects/<name:project>/traces/<name:trace_id>/spans/<name:span_id>/",
        views_detail.span_detail,
        name="span_pane",
    ),
    path(
        "projects/<name:project>/sessions/<name:session_id>/",
        views_detail.session_detail,
        name="session",
    ),
]
