from django.apps import AppConfig


class BudgetsConfig(AppConfig):
    name = "evalhub.budgets"
    label = "budgets"
    verbose_name = "Spend budgets"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from evalhub.budgets.guard import RunBudgets
        from evalhub.tasks.hooks import guard_register

        guard_register(RunBudgets)  # asked before every judge call of a task's run
