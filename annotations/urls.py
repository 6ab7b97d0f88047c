"""Annotation pages, one URL namespace (``annotations``) put together from each area's list:
annotating and configs, labeling queues, datasets."""

from annotations.urls_annotate import urlpatterns as annotate_patterns
from annotations.urls_datasets import urlpatterns as dataset_patterns
from annotations.urls_queues import urlpatterns as queue_patterns

app_name = "annotations"
urlpatterns = [*annotate_patterns, *queue_patterns, *dataset_patterns]
