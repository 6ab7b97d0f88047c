"""Online-task pages: tasks_pages (included in the ``tasks`` namespace by evalhub/urls_tasks.py)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
