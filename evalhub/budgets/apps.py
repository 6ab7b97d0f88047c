from django.apps import AppConfig


class BudgetsConfig(AppConfig):
    name = "evalhub.budgets"
    label = "budgets"
    verbose_name = "Spend budgets"
    default_auto_field = "django.db.models.BigAutoField"
