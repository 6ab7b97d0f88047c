"""Retention: traces older than a project's limit (or ``EVALHUB_RETENTION_DAYS``) are deleted
by a beat task, a batch of traces at a time, with what went logged.

- ``models``: ``RetentionPolicy`` (a project's limit), ``RetentionSweep`` (what one pass
  removed).
- ``services``: ``retention_policy_set``, ``retention_apply`` (one project), ``retention_sweep``
  (every project).
- ``selectors``: ``retention_days`` (the limit that holds for a project).
- ``tasks``: ``retention_sweep`` on beat (``EVALHUB_RETENTION_SWEEP_SECONDS``).
"""
