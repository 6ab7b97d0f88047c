"""``manage.py retention``: show the limits, set a project's, or run a pass now.

manage.py retention                              # each project's limit
manage.py retention --project shop --days 30     # shop keeps 30 days (0: forever)
manage.py retention --project shop --default     # shop follows EVALHUB_RETENTION_DAYS
manage.py retention --run                        # delete what is older, now
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalhub.retention.selectors import retention_days, retention_days_default
from evalhub.retention.services import retention_policy_set, retention_sweep
from tracing.models import Project


def _shown(days: int) -> str:
    return "forever" if days == 0 else f"{days} days"


class Command(BaseCommand):
    help = "Show or set how long projects keep their traces; --run deletes what is older now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", help="A project's name.")
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--days", type=int, help="Keep this many days (0: forever).")
        group.add_argument("--default", action="store_true", help="Follow the default again.")
        parser.add_argument("--run", action="store_true", help="Run a retention pass now.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] is not None or options["default"]:
            if not options["project"]:
                raise CommandError("--days and --default need --project")
            project = Project.objects.filter(name=options["project"]).first()
            if project is None:
                raise CommandError(f"no project named {options['project']!r}")
            if options["days"] is not None and options["days"] < 0:
                raise CommandError("--days: 0 (keep forever) or more")
            retention_policy_set(project=project, days=options["days"])
        if options["run"]:
            for sweep in retention_sweep():
                self.stdout.write(
                    f"{sweep.project.name}: deleted {sweep.traces} traces, {sweep.spans} spans, "
                    f"{sweep.sessions} sessions, {sweep.annotations} annotations, "
                    f"{sweep.queue_items} labeling-queue items; kept "
                    f"{sweep.dataset_examples_kept} dataset examples (copies)"
                )
            return
        self.stdout.write(f"default: {_shown(retention_days_default())}")
        for project in Project.objects.order_by("name"):
            self.stdout.write(f"{project.name}: {_shown(retention_days(project=project))}")
