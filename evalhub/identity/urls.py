"""Settings → API keys and Settings → Users and roles (the ``settings`` namespace, which
``evalhub.urls`` shares with Settings → Preferences)."""

from django.urls import path

from evalhub.identity import views as views_settings

urlpatterns = [
    path("settings/api-keys/", views_settings.api_keys, name="api-keys"),
    path(
        "settings/api-keys/<int:key_id>/revoke/",
        views_settings.api_key_revoke_view,
        name="api-key-revoke",
    ),
    path("settings/users/", views_settings.users, name="users"),
    path("settings/users/<int:user_id>/", views_settings.user_edit, name="user"),
]
