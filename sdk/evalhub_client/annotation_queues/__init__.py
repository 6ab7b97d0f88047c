"""Only ``annotation_queues.types``, so that the Arize SDK's import of ``AnnotationInput``
(``from arize.annotation_queues.types import AnnotationInput``) works with the package name
changed. EvalHub's labeling queues are served by its REST API (``/v1/annotation_queues``)."""
