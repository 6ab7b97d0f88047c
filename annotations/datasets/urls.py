"""Annotation pages: datasets (included in the ``annotations`` namespace by annotations/urls.py)."""

from django.urls import URLPattern, path

import evalhub.core.converters  # noqa: F401  (registers the <name:…> path converter)
from annotations.datasets import views as views_datasets

urlpatterns: list[URLPattern] = [
    path("datasets/", views_datasets.datasets, name="datasets"),
    path("datasets/options/", views_datasets.dataset_options, name="dataset-options"),
    path(
        "datasets/add/<name:project>/<name:tab>/",
        views_datasets.dataset_add,
        name="dataset-add",
    ),
    path("datasets/<int:pk>/", views_datasets.dataset_detail, name="dataset"),
    path("datasets/<int:pk>/edit/", views_datasets.dataset_edit, name="dataset-edit"),
    path("datasets/<int:pk>/delete/", views_datasets.dataset_remove, name="dataset-delete"),
    path("datasets/<int:pk>/download/", views_datasets.dataset_download, name="dataset-download"),
]
