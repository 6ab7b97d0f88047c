"""Online evaluation tasks: a task attaches evaluators to a project; runs (continuous,
backfill, manual) list their items, evaluate them on threads and write the results as
annotations.

- ``services``: tasks (create, update, pause/resume, duplicate, delete), runs (backfill,
  manual, continuous planning, cancel), the test (dry) run.
- ``engine``: ``run_work`` — claims a run's lease and evaluates its pending items.
- ``planning``: which items a run evaluates (window, filter, quiet period, sample, cap).
- ``selectors``: what the pages and the API read (tasks, runs, a run's items and log).
- ``sampling``: deterministic per-item sampling.
- ``dryrun``: the task form's previews, test run and skip forecast.
- ``judge_tracing``: Enable tracing — judge calls as LLM spans in "<project> · judge traces".
- ``filter_fields``: ``task_run`` and ``task`` in the filter language (registered when the app
  is ready).
- ``demo``: the demo project's evaluators and task.
"""
