"""Annotation pages: queues (included in the ``annotations`` namespace by annotations/urls.py)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
