"""Experiment pages (namespace ``experiments``)."""

from django.urls import path

from evalhub.experiments import views

app_name = "experiments"
urlpatterns = [
    path("datasets/<int:pk>/experiments/", views.dataset_experiments, name="dataset"),
    path("datasets/<int:pk>/experiments/new/", views.experiment_new, name="new"),
    path("datasets/<int:pk>/tasks/new/", views.dataset_task_form, name="task-new"),
    path(
        "datasets/<int:pk>/tasks/<int:dataset_task_id>/edit/",
        views.dataset_task_form,
        name="task-edit",
    ),
    path("datasets/<int:pk>/versions/diff/", views.version_diff_page, name="version-diff"),
    path(
        "datasets/<int:pk>/versions/<int:version_id>/download/",
        views.version_download_page,
        name="version-download",
    ),
    # The links the Phoenix client prints after run_experiment.
    path(
        "datasets/<str:global_id>/experiments",
        views.phoenix_link,
        {"page": "experiments"},
        name="phoenix-experiments",
    ),
    path(
        "datasets/<str:global_id>/compare",
        views.phoenix_link,
        {"page": "compare"},
        name="phoenix-compare",
    ),
    path("experiments/compare/", views.experiments_compare_page, name="compare"),
    path("experiments/<int:experiment_id>/", views.experiment_detail, name="detail"),
    path("experiments/<int:experiment_id>/evaluate/", views.experiment_evaluate, name="evaluate"),
]
