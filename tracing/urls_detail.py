"""Trace browser detail pages: a trace (span tree, waterfall, span pane) and a session.

``project`` is the project's name, as in the list pages' links.
"""

from django.urls import path

from tracing import views_detail

app_name = "detail"
urlpatterns = [
    path(
        "projects/<str:project>/traces/<str:trace_id>/",
        views_detail.trace_detail,
        name="trace",
    ),
    path(
        "projects/<str:project>/traces/<str:trace_id>/spans/<str:span_id>/",
        views_detail.span_detail,
        name="span_pane",
    ),
    path(
        "projects/<str:project>/sessions/<str:session_id>/",
        views_detail.session_detail,
        name="session",
    ),
]
