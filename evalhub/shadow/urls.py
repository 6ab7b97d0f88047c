"""Shadow version pages (namespace ``shadow``)."""

from django.urls import path

from evalhub.shadow import views

app_name = "shadow"
urlpatterns = [
    path("tasks/<int:task_id>/shadows/", views.shadow_list_view, name="list"),
    path(
        "tasks/<int:task_id>/shadows/<int:shadow_id>/",
        views.shadow_compare_view,
        name="compare",
    ),
    path(
        "tasks/<int:task_id>/shadows/<int:shadow_id>/promote/",
        views.shadow_promote_view,
        name="promote",
    ),
    path(
        "tasks/<int:task_id>/shadows/<int:shadow_id>/discard/",
        views.shadow_discard_view,
        name="discard",
    ),
]
