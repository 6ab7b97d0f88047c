from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "evalhub.tasks"
    label = "tasks"
    verbose_name = "Online tasks"
