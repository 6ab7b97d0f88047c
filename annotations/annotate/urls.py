"""Annotation pages: annotate (included in the ``annotations`` namespace by annotations/urls.py).

Settings → Annotation configs, the annotate form posted from the trace and session pages, and a
project's Annotations tab with its agreement view. ``project`` is the project's name.
"""

from django.urls import URLPattern, path

import evalhub.core.converters  # noqa: F401  (registers the <name:…> path converter)
from annotations.annotate import views as views_annotate

urlpatterns: list[URLPattern] = [
    path("settings/annotation-configs/", views_annotate.configs, name="configs"),
    path("settings/annotation-configs/new/", views_annotate.config_new, name="config-new"),
    path(
        "settings/annotation-configs/<int:config_id>/",
        views_annotate.config_edit,
        name="config-edit",
    ),
    path(
        "settings/annotation-configs/<int:config_id>/delete/",
        views_annotate.config_delete,
        name="config-delete",
    ),
    path(
        "projects/<name:project>/annotate/<name:target>/<name:target_id>/",
        views_annotate.annotate,
        name="annotate",
    ),
    path(
        "projects/<name:project>/annotations/",
        views_annotate.project_annotations,
        name="project-annotations",
    ),
    path(
        "projects/<name:project>/annotations/agreement/",
        views_annotate.project_agreement,
        name="agreement",
    ),
]
