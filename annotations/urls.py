"""Annotation pages, one URL namespace (``annotations``) put together from each area's list:
annotating and configs, labeling queues, datasets."""

from annotations.annotate.urls import urlpatterns as annotate_patterns
from annotations.datasets.urls import urlpatterns as dataset_patterns
from annotations.queues.urls import urlpatterns as queue_patterns

app_name = "annotations"
urlpatterns = [*annotate_patterns, *queue_patterns, *dataset_patterns]
