from django.apps import AppConfig


class QueuesConfig(AppConfig):
    name = "annotations.queues"
    label = "queues"
    verbose_name = "Labeling queues"
