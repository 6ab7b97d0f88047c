"""Signals of the annotation store, for products that act on results as they are written.

``annotations_written(sender=Annotation, annotations=[...])``: sent inside the writing
transaction by ``annotations_upsert`` — the one place results are written (the online task
engine's results, people's labels, the API) — with the rows written. Receivers that do work
enqueue it with ``transaction.on_commit``.
"""

from django.dispatch import Signal

annotations_written = Signal()
