"""Annotation pages: datasets (included in the ``annotations`` namespace by annotations/urls.py)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
