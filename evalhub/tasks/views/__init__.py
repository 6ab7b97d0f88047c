"""Tasks pages: the tasks and runs lists, the task form (with its live previews and the test
run), a task's runs, a run's log, backfills, and "Evaluate with…" from the trace browser.

Views parse the request, call a service (``evalhub.tasks.services``, ``runs``, ``backfill``) or a selector
(``evalhub.tasks.selectors``, ``evalhub.tasks.dryrun``) and render. The form's previews are
partials of the form's template, refreshed by htmx; a run's progress is a partial that polls
every 2 s while the run is active and comes back without its trigger once it has finished.

One module per page family: ``lists``, ``form``, ``task``, ``run``, ``evaluate``; ``common``
holds their templates and lookups."""
