from django.urls import path

from evalhub.budgets import views

app_name = "budgets"
urlpatterns = [
    path("settings/budgets/", views.budgets, name="list"),
    path("settings/budgets/<int:budget_id>/delete/", views.budget_remove, name="delete"),
]
