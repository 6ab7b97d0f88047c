"""Settings → Preferences (in the ``settings`` namespace, with ``evalhub.identity.urls``)."""

from django.urls import path

from evalhub.preferences import views

urlpatterns = [
    path("settings/preferences/", views.preferences, name="preferences"),
]
