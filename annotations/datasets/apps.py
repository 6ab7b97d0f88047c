from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "annotations.datasets"
    label = "datasets"
    verbose_name = "Datasets"
