"""`smppgw messages`: the daemon's messages, newest first, filtered by state, provider, number
and time, as a table (or the API's JSON). A thin client of ``GET /v1/messages``: it follows
``next`` until it has ``--limit`` messages, then says how to go on (``--after``).

Exit codes: 0 listed (also when none matched), 2 the daemon cannot be reached or answered an
error (argparse's 2 for a bad option value too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from smppgw.api.client import (
    EXIT_UNREACHABLE,
    ClientError,
    LocalClient,
    add_socket_arguments,
    error_line,
    socket_path,
)
from smppgw.api.queries import parse_instant
from smppgw.store import MESSAGE_STATES

__all__ = ["add_arguments", "render_table", "run", "time_argument"]

EXIT_OK: Final = 0
#: Messages asked of the daemon per request (its largest page).
_PAGE: Final = 200
_COLUMNS: Final = ("CREATED", "TRACKING_ID", "ID", "PROVIDER", "TO", "STATE", "PARTS",
                   "LAST_ERROR")
_RELATIVE: Final = re.compile(r"([0-9]{1,6})([smhd])")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def time_argument(text: str) -> str:
    """``--since``/``--until``: a time as the API takes it (ISO 8601 or unix seconds), or a
    span back from now (``30m``, ``2h``, ``7d``), sent as that instant in ISO 8601."""
    relative = _RELATIVE.fullmatch(text)
    if relative is not None:
        seconds = int(relative[1]) * _UNIT_SECONDS[relative[2]]
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds))
    if parse_instant(text) is None:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (ISO 8601 such as 2025-05-01 or 2025-05-01T12:00:00Z, "
            "unix seconds, or a span back from now: 30m, 2h, 7d)")
    return text


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of messages, 1 or more, "
                                         f"not {text!r}")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``smppgw messages`` on the parser the CLI made for it."""
    parser.add_argument("--state", choices=MESSAGE_STATES, help="only messages in this state")
    parser.add_argument("--provider", metavar="NAME", help="only messages of this provider")
    parser.add_argument("--to-prefix", metavar="DIGITS",
                        help="only messages to numbers starting with these digits")
    parser.add_argument("--since", type=time_argument, metavar="TIME",
                        help="only messages created at or after TIME (ISO 8601, unix "
                             "seconds, or back from now: 30m, 2h, 7d)")
    parser.add_argument("--until", type=time_argument, metavar="TIME",
                        help="only messages created before TIME")
    parser.add_argument("--limit", type=_positive, default=50, metavar="N",
                        help="show at most N messages (default 50)")
    parser.add_argument("--after", metavar="CURSOR",
                        help="start after this position (the cursor a previous list gave)")
    parser.add_argument("--json", action="store_true",
                        help='print {"messages": [VIEW...], "next": CURSOR} as the API does')
    add_socket_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        messages, cursor = asyncio.run(_collect(socket_path(args), _filters(args), args.limit,
                                                args.after))
    except ClientError as exc:
        print(f"smppgw messages: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps({"messages": messages, "next": cursor}, indent=2, ensure_ascii=False))
    else:
        print(render_table(messages), end="")
    if cursor is not None and not args.json:
        print(f"more: smppgw messages {shlex.join(_again(args))} --after {cursor}",
              file=sys.stderr)
    return EXIT_OK


def _filters(args: argparse.Namespace) -> dict[str, str]:
    filters = {"state": args.state, "provider": args.provider, "to_prefix": args.to_prefix,
               "since": args.since, "until": args.until}
    return {key: value for key, value in filters.items() if value is not None}


def _again(args: argparse.Namespace) -> list[str]:
    """The options of this command line without --after: what goes on from the cursor."""
    again: list[str] = []
    if args.socket is not None:
        again += ["--socket", str(args.socket)]
    elif args.config is not None:
        again += ["-c", str(args.config)]
    for option, key in (("--state", "state"), ("--provider", "provider"),
                        ("--to-prefix", "to_prefix"), ("--since", "since"),
                        ("--until", "until")):
        value = getattr(args, key)
        if value is not None:
            again += [option, value]
    return [*again, "--limit", str(args.limit)]


async def _collect(
    path: Path, filters: Mapping[str, str], limit: int, after: str | None,
) -> tuple[list[dict[str, object]], str | None]:
    """Up to ``limit`` messages, following ``next``; and where to go on (None at the end)."""
    messages: list[dict[str, object]] = []
    cursor = after
    async with LocalClient(path, timeout=30.0) as client:
        while True:
            params = {**filters, "limit": str(min(_PAGE, limit - len(messages)))}
            if cursor is not None:
                params["after"] = cursor
            status, body = await client.request("GET", "/v1/messages", params=params)
            page = body.get("messages") if isinstance(body, dict) else None
            if status != 200 or not isinstance(page, list) or not isinstance(body, dict):
                raise ClientError(f"smppgw at {path} answered HTTP {status}: "
                                  f"{error_line(body)}", EXIT_UNREACHABLE)
            messages += [m for m in page if isinstance(m, dict)]
            following = body.get("next")
            cursor = following if isinstance(following, str) else None
            if cursor is None or len(messages) >= limit:
                return messages, cursor


def render_table(messages: Sequence[Mapping[str, object]]) -> str:
    """One line per message under a header; ends with a newline."""
    if not messages:
        return "(no messages)\n"
    rows = [[_created(m.get("created")), *(_text(m.get(key)) for key in (
        "tracking_id", "id", "provider", "to", "state", "parts", "last_error"))]
        for m in messages]
    widths = [max(len(column), *(len(row[i]) for row in rows))
              for i, column in enumerate(_COLUMNS)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             .rstrip() for row in [list(_COLUMNS), *rows]]
    return "\n".join(lines) + "\n"


def _created(value: object) -> str:
    """ISO 8601 to the second: the milliseconds are in the view."""
    text = _text(value)
    return text[:19] + "Z" if len(text) > 20 and text.endswith("Z") else text


def _text(value: object) -> str:
    return "-" if value is None or value == "" else str(value)
