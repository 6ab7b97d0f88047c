"""Online-task pages: trends (included in the ``tasks`` namespace by evalhub/urls_tasks.py)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
