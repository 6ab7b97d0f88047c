"""Settings → API keys and Settings → Users and roles."""

from django.urls import path

from evalhub.identity import views

app_name = "settings"
urlpatterns = [
    path("settings/api-keys/", views.api_keys, name="api-keys"),
    path(
        "settings/api-keys/<int:key_id>/revoke/",
        views.api_key_revoke_view,
        name="api-key-revoke",
    ),
    path("settings/users/", views.users, name="users"),
    path("settings/users/<int:user_id>/", views.user_edit, name="user"),
]
