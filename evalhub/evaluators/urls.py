"""Evaluator hub pages: evaluators, the template library, the playground, Settings → AI providers."""

from django.urls import path

import evalhub.core.converters  # noqa: F401  (registers the <name:…> path converter)
from evalhub.evaluators import views as views_hub

app_name = "evaluators"
urlpatterns = [
    path("evaluators/", views_hub.evaluators_list, name="list"),
    path("evaluators/new/", views_hub.evaluator_new, name="new"),
    path("evaluators/templates/", views_hub.templates_library, name="templates"),
    path("evaluators/test/", views_hub.evaluator_test_on_span, name="test-on-span"),
    path(
        "evaluators/form/variables/",
        views_hub.evaluator_form_variables,
        name="form-variables",
    ),
    path("evaluators/<name:ident>/", views_hub.evaluator_detail, name="detail"),
    path("evaluators/<name:ident>/edit/", views_hub.evaluator_edit, name="edit"),
    path("evaluators/<name:ident>/playground/", views_hub.evaluator_playground, name="playground"),
    path("evaluators/<name:ident>/spans/", views_hub.evaluator_spans, name="spans"),
    path("settings/providers/", views_hub.providers, name="providers"),
    path("settings/providers/<int:provider_id>/", views_hub.provider_edit, name="provider"),
    path(
        "settings/providers/<int:provider_id>/test/", views_hub.provider_test, name="provider-test"
    ),
]
