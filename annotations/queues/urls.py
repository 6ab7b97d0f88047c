"""Annotation pages: queues (included in the ``annotations`` namespace by annotations/urls.py).

Annotators reach only ``queues``, ``queue``, ``queue-label`` and ``queue-item`` (``Need.QUEUE``
in ``evalhub.identity.policy``)."""

from django.urls import URLPattern, path

import evalhub.core.converters  # noqa: F401  (registers the <name:…> path converter)
from annotations.queues import views as views_queues

urlpatterns: list[URLPattern] = [
    path("queues/", views_queues.queues, name="queues"),
    path("queues/new/", views_queues.queue_new, name="queue-new"),
    path(
        "queues/add-selected/<name:project>/",
        views_queues.queue_add_selected,
        name="queue-add-selected",
    ),
    path("queues/<int:queue_id>/", views_queues.queue_detail, name="queue"),
    path("queues/<int:queue_id>/edit/", views_queues.queue_edit, name="queue-edit"),
    path("queues/<int:queue_id>/add/", views_queues.queue_add_filter, name="queue-add"),
    path("queues/<int:queue_id>/label/", views_queues.queue_label_next, name="queue-label"),
    path(
        "queues/<int:queue_id>/label/<int:item_id>/",
        views_queues.queue_item_label,
        name="queue-item",
    ),
]
