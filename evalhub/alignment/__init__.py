"""The alignment workspace: a draft of an evaluator's next version run over the items people
labelled, compared with the current version before it is saved (``services`` write,
``selectors`` read, ``tasks`` run the draft on Celery)."""
