"""The ``evalhub`` command line: ``evalhub spans list|export`` and
``evalhub tasks list|create|run|logs``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from itertools import islice
from typing import Any

from evalhub_client.client import Client
from evalhub_client.errors import EvalHubError
from evalhub_client.tasks import DEFAULT_MAX_SPANS, Run, Task


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evalhub", description="EvalHub from the command line")
    parser.add_argument("--base-url", help="server URL (default: $EVALHUB_BASE_URL)")
    parser.add_argument("--api-key", help="API key (default: $EVALHUB_API_KEY)")
    commands = parser.add_subparsers(dest="resource", required=True)
    spans = commands.add_parser("spans", help="list or export spans")
    actions = spans.add_subparsers(dest="action", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--project", required=True, help="project name or id")
        sub.add_argument("--filter", help="filter expression, e.g. \"span_kind == 'LLM'\"")
        sub.add_argument("--start-time", help="inclusive lower bound (ISO 8601)")
        sub.add_argument("--end-time", help="exclusive upper bound (ISO 8601)")

    listing = actions.add_parser("list", help="print spans, newest first")
    common(listing)
    listing.add_argument("--limit", type=int, default=100, help="spans to print (default 100)")
    listing.add_argument(
        "--format", choices=("jsonl", "json", "csv"), default="jsonl", help="output format"
    )

    export = actions.add_parser("export", help="stream spans to a file")
    common(export)
    export.add_argument("--format", choices=("jsonl", "csv", "parquet"), default="parquet")
    export.add_argument("-o", "--output", required=True, help="file to write")
    export.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when stderr is a terminal)",
    )
    _tasks_parser(commands)
    return parser


def _tasks_parser(commands: Any) -> None:
    tasks = commands.add_parser("tasks", help="online evaluation tasks and their runs")
    actions = tasks.add_subparsers(dest="action", required=True)

    listing = actions.add_parser("list", help="print the tasks, newest first")
    listing.add_argument("--project", help="only this project's tasks (name or id)")
    listing.add_argument("--format", choices=("table", "json"), default="table")

    create = actions.add_parser("create", help="create a task")
    create.add_argument("--project", required=True, help="project name")
    create.add_argument("--name", required=True, help="task name")
    create.add_argument(
        "--evaluator",
        action="append",
        required=True,
        dest="evaluators",
        metavar="EVALUATOR",
        help="evaluator name or id (repeat for several)",
    )
    create.add_argument("--filter", help="which items to evaluate, e.g. \"span_kind == 'LLM'\"")
    create.add_argument("--sampling-rate", type=float, help="percent of matching items (100)")
    create.add_argument("--granularity", choices=("span", "trace", "session"))
    create.add_argument(
        "--no-continuous",
        dest="continuous",
        action="store_false",
        default=True,
        help="only backfills and manual runs, no evaluation of new data",
    )
    create.add_argument("--interval", type=int, help="seconds between continuous runs (30)")
    create.add_argument("--provider", help="LLM provider name or id")
    create.add_argument("--model", help="model for LLM evaluators")
    create.add_argument("--description")

    run = actions.add_parser("run", help="start a backfill run")
    run.add_argument("task", help="task id or name")
    run.add_argument("--project", help="the task's project, when its name is not unique")
    run.add_argument(
        "--since", required=True, help="spans that started this long ago (7d, 24h, 30m) or then"
    )
    run.add_argument("--until", help="…until this long ago or this time (default: now)")
    run.add_argument("--max-spans", type=int, default=DEFAULT_MAX_SPANS)
    run.add_argument("--wait", action="store_true", help="wait for the run to finish")
    run.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")

    logs = actions.add_parser("logs", help="a run's status, counts and log")
    logs.add_argument("run", type=int, help="run id")
    logs.add_argument("--level", choices=("info", "warning", "error"))


def _list(client: Client, args: argparse.Namespace) -> None:
    page_size = max(1, min(args.limit, 1000))
    result = client.spans.list(
        args.project,
        start_time=args.start_time,
        end_time=args.end_time,
        filter=args.filter,
        limit=page_size,
    )
    spans = list(islice(result, args.limit))
    if args.format == "jsonl":
        for span in spans:
            sys.stdout.write(json.dumps(span, ensure_ascii=False) + "\n")
    elif args.format == "json":
        sys.stdout.write(json.dumps(spans, ensure_ascii=False, indent=2) + "\n")
    else:
        from evalhub_client.frames import spans_frame

        spans_frame(spans).to_csv(sys.stdout, index=False)


def _export(client: Client, args: argparse.Namespace) -> None:
    path = client.spans.export_to_file(
        args.project,
        args.output,
        format=args.format,
        start_time=args.start_time,
        end_time=args.end_time,
        filter=args.filter,
        progress=args.progress,
    )
    print(f"wrote {path}", file=sys.stderr)


def _tasks_list(client: Client, args: argparse.Namespace) -> None:
    tasks = client.tasks.list(project=args.project)
    if args.format == "json":
        sys.stdout.write(json.dumps([t.raw for t in tasks], ensure_ascii=False, indent=2) + "\n")
        return
    rows = [["ID", "NAME", "PROJECT", "STATUS", "GRANULARITY", "SAMPLING", "MODE", "EVALUATORS"]]
    for task in tasks:
        rows.append(
            [
                str(task.id),
                task.name,
                task.project,
                task.status,
                task.granularity,
                f"{task.sampling_rate:g}%",
                f"every {task.interval_seconds}s" if task.continuous else "backfill only",
                ", ".join(task.evaluator_names),
            ]
        )
    _table(rows)


def _tasks_create(client: Client, args: argparse.Namespace) -> None:
    options = {
        "filter": args.filter,
        "sampling_rate": args.sampling_rate,
        "granularity": args.granularity,
        "interval_seconds": args.interval,
        "provider": args.provider,
        "model": args.model,
        "description": args.description,
    }
    task = client.tasks.create(
        args.name,
        args.project,
        args.evaluators,
        continuous=args.continuous,
        **{key: value for key, value in options.items() if value is not None},
    )
    print(f"created task #{task.id} {task.name} in project {task.project}")
    print(_task_line(task))


def _tasks_run(client: Client, args: argparse.Namespace) -> int:
    run = client.tasks.run_backfill(
        args.task, args.since, args.until, args.max_spans, project=args.project
    )
    window = f"{_time(run.data_start_time)} to {_time(run.data_end_time)}"
    print(f"run #{run.id} {run.status}: backfill of {run.task} over {window}")
    if not args.wait:
        return 0
    run = client.tasks.wait(run, timeout=args.timeout, progress=None)
    print(_run_summary(run))
    if run.status != "completed":
        print(f"error: run #{run.id} {run.status}: {run.error or 'see its log'}", file=sys.stderr)
        return 1
    return 0


def _tasks_logs(client: Client, args: argparse.Namespace) -> None:
    run = client.tasks.run(args.run, logs_limit=0)
    print(_run_summary(run))
    if run.data_start_time or run.data_end_time:
        print(f"window: {_time(run.data_start_time)} to {_time(run.data_end_time)}")
    for entry in client.tasks.logs(run, level=args.level):
        about = " ".join(
            part for part in (entry["evaluator"], entry["target_kind"], entry["target_key"]) if part
        )
        about = f"[{about}] " if about else ""
        print(f"{entry['time']}  {entry['level']:<7}  {about}{entry['message']}")


def _task_line(task: Task) -> str:
    mode = f"continuous every {task.interval_seconds}s" if task.continuous else "backfill only"
    where = f", filter {task.filter}" if task.filter else ""
    return (
        f"{task.granularity}s{where}, {task.sampling_rate:g}% sampled, {mode}; "
        f"evaluators: {', '.join(task.evaluator_names)}"
    )


def _run_summary(run: Run) -> str:
    counts = run.counts
    lines = [
        f"run #{run.id} ({run.kind}, {run.status}) of task {run.task} in project {run.project}",
        f"items: {counts.get('done', 0)}/{counts.get('total', 0)} done "
        f"({counts.get('matched', 0)} matched, {counts.get('sampled', 0)} sampled, "
        f"{counts.get('skipped', 0)} skipped)",
        f"evaluations: {counts.get('evaluated', 0)} ({counts.get('succeeded', 0)} succeeded, "
        f"{counts.get('errored', 0)} errored); tokens: {counts.get('prompt_tokens', 0)} prompt, "
        f"{counts.get('completion_tokens', 0)} completion; cost: {counts.get('cost', 0.0):g}",
    ]
    if run.error:
        lines.append(f"error: {run.error}")
    return "\n".join(lines)


def _time(value: Any) -> str:
    return value.isoformat() if value is not None else "-"


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        sys.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        sys.stdout.write("\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    code = 0
    try:
        with Client(base_url=args.base_url, api_key=args.api_key) as client:
            if args.resource == "spans" and args.action == "list":
                _list(client, args)
            elif args.resource == "spans":
                _export(client, args)
            elif args.action == "list":
                _tasks_list(client, args)
            elif args.action == "create":
                _tasks_create(client, args)
            elif args.action == "run":
                code = _tasks_run(client, args)
            else:
                _tasks_logs(client, args)
    except TimeoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except EvalHubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
