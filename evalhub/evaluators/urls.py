"""Evaluator hub pages: evaluators, the template library, the playground, Settings → AI providers."""

from django.urls import path

import evalhub.core.converters  # noqa: F401  (registers the <name:…> path converter)
from evalhub.evaluators import views

app_name = "evaluators"
urlpatterns = [
    path("evaluators/", views.evaluators_list, name="list"),
    path("evaluators/new/", views.evaluator_new, name="new"),
    path("evaluators/templates/", views.templates_library, name="templates"),
    path("evaluators/test/", views.evaluator_test_on_span, name="test-on-span"),
    path(
        "evaluators/form/variables/",
        views.evaluator_form_variables,
        name="form-variables",
    ),
    path("evaluators/<name:ident>/", views.evaluator_detail, name="detail"),
    path("evaluators/<name:ident>/edit/", views.evaluator_edit, name="edit"),
    path("evaluators/<name:ident>/playground/", views.evaluator_playground, name="playground"),
    path("evaluators/<name:ident>/spans/", views.evaluator_spans, name="spans"),
    path("settings/providers/", views.providers, name="providers"),
    path("settings/providers/<int:provider_id>/", views.provider_edit, name="provider"),
    path("settings/providers/<int:provider_id>/test/", views.provider_test, name="provider-test"),
]
