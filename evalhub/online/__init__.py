"""Online evaluation tasks: a task attaches evaluators to a project; runs (continuous,
backfill, manual) list their items, evaluate them on threads and write the results as
annotations.

- ``services``: tasks (create, update, pause/resume, duplicate, delete), runs (backfill,
  manual, continuous planning, cancel), the test (dry) run.
- ``engine``: ``run_work`` — claims a run's lease and evaluates its pending items.
- ``planning``: which items a run evaluates (window, filter, quiet period, sample, cap).
- ``selectors``: what the pages and the API read.
- ``sampling``: deterministic per-item sampling.
"""
