"""The ``evalhub`` command line: ``evalhub spans list`` and ``evalhub spans export``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from itertools import islice

from evalhub_client.client import Client
from evalhub_client.errors import EvalHubError


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
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with Client(base_url=args.base_url, api_key=args.api_key) as client:
            if args.action == "list":
                _list(client, args)
            else:
                _export(client, args)
    except EvalHubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
