"""Monitors, Settings → Notification channels and a project's Automations."""

from django.urls import path

import evalhub.core.converters  # noqa: F401  (registers the <name:…> path converter)
from evalhub.monitors import views

app_name = "monitors"
urlpatterns = [
    path("monitors/", views.monitor_list, name="list"),
    path("monitors/new/", views.monitor_new, name="new"),
    path("monitors/preview/", views.monitor_preview_view, name="preview"),
    path("monitors/<int:monitor_id>/", views.monitor_detail, name="detail"),
    path("monitors/<int:monitor_id>/edit/", views.monitor_edit, name="edit"),
    path("monitors/<int:monitor_id>/mute/", views.monitor_mute_view, name="mute"),
    path("monitors/<int:monitor_id>/delete/", views.monitor_delete_view, name="delete"),
    path("settings/channels/", views.channels, name="channels"),
    path("settings/channels/<int:channel_id>/", views.channel_edit, name="channel"),
    path("projects/<name:project>/automations/", views.automations, name="automations"),
    path(
        "projects/<name:project>/automations/<int:automation_id>/",
        views.automation_edit,
        name="automation",
    ),
]
