"""Online-task pages: trends (included in the ``tasks`` namespace by evalhub/urls_tasks.py)."""

from django.urls import URLPattern, path

from evalhub import views_trends

urlpatterns: list[URLPattern] = [
    path("projects/<str:project>/trends/", views_trends.project_trends, name="trends"),
]
