"""`smppgw show ID_OR_TRACKING_ID`: one message as the daemon has it (state, parts, receipts,
history), found by its tracking id or by the id the application sent it with. A thin client of
``GET /v1/messages/{tracking_id}`` and ``GET /v1/messages?id=``; it never touches the store.

Exit codes: 0 shown, 1 no such message, 2 the daemon cannot be reached or answered an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final
from urllib.parse import quote

from smppgw.api.client import (
    EXIT_UNREACHABLE,
    ClientError,
    LocalClient,
    add_socket_arguments,
    error_line,
    socket_path,
)

__all__ = ["add_arguments", "find_message", "render_message", "run"]

EXIT_OK: Final = 0
EXIT_NOT_FOUND: Final = 1
_TRACKING_ID: Final = re.compile(r"[0-9a-f]{32}")
_LABEL_WIDTH: Final = 12
_FIELDS: Final = (
    ("tracking_id", "tracking_id"), ("id", "id"), ("provider", "provider"), ("to", "to"),
    ("from", "from"), ("state", "state"), ("parts", "parts"), ("attempts", "attempts"),
    ("data_coding", "data_coding"), ("created", "created"), ("updated", "updated"),
    ("valid_until", "valid_until"), ("last_error", "last_error"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``smppgw show`` on the parser the CLI made for it."""
    parser.add_argument("message", metavar="ID_OR_TRACKING_ID",
                        help="the tracking id smppgw answered, or your own id for the message")
    parser.add_argument("--json", action="store_true",
                        help="print the message view as the API answers it")
    add_socket_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        view = asyncio.run(find_message(socket_path(args), args.message))
    except ClientError as exc:
        print(f"smppgw show: {exc}", file=sys.stderr)
        return exc.exit_code
    if view is None:
        print(f"smppgw show: no message with tracking id or id {args.message!r}",
              file=sys.stderr)
        return EXIT_NOT_FOUND
    if args.json:
        print(json.dumps(view, indent=2, ensure_ascii=False))
    else:
        print(render_message(view), end="")
    return EXIT_OK


async def find_message(path: Path, wanted: str) -> dict[str, object] | None:
    """The view of the message ``wanted`` names: by tracking id first when it looks like one,
    else (or when unknown) by client id; None when neither finds it. Raises ClientError when
    the daemon cannot be reached or answers an error."""
    async with LocalClient(path, timeout=10.0) as client:
        if _TRACKING_ID.fullmatch(wanted):
            status, body = await client.request("GET", f"/v1/messages/{wanted}")
            if status == 200 and isinstance(body, dict):
                return body
            if status != 404:
                raise ClientError(f"smppgw at {path} answered HTTP {status}:"
                                  f" {error_line(body)}", EXIT_UNREACHABLE)
        status, body = await client.request("GET", f"/v1/messages?id={quote(wanted, safe='')}")
        messages = body.get("messages") if isinstance(body, dict) else None
        if status != 200 or not isinstance(messages, list):
            raise ClientError(f"smppgw at {path} answered HTTP {status}: {error_line(body)}",
                              EXIT_UNREACHABLE)
        first = messages[0] if messages else None
        return first if isinstance(first, dict) else None


def render_message(view: Mapping[str, object]) -> str:
    """The view as aligned lines: the message, one line per part, then its history."""
    lines = [f"{label:<{_LABEL_WIDTH}} {_text(view.get(key))}" for label, key in _FIELDS
             if view.get(key) is not None or key in ("state", "id")]
    segments = view.get("segments")
    for segment in segments if isinstance(segments, list) else ():
        if not isinstance(segment, dict):
            continue
        bits = [f"part {segment.get('part_index')}", str(segment.get("state"))]
        for key in ("smsc_message_id", "submit_status", "bind", "last_error"):
            if segment.get(key) is not None:
                bits.append(f"{key}={segment[key]}")
        receipt = segment.get("receipt")
        if isinstance(receipt, dict):
            bits.append(f"receipt stat={receipt.get('stat')} err={receipt.get('err')}"
                        f" at {receipt.get('at')}")
        lines.append(f"{'':<{_LABEL_WIDTH}} " + "  ".join(bits))
    history = view.get("history")
    if isinstance(history, list) and history:
        lines.append("history")
        for entry in history:
            if not isinstance(entry, dict):
                continue
            detail = entry.get("detail")
            shown = " ".join(f"{k}={_text(v)}" for k, v in detail.items()
                             if v is not None and k != "receipt") if isinstance(
                                 detail, dict) else ""
            state = entry.get("state")
            lines.append(f"  {entry.get('at')}  {entry.get('type')}"
                         + (f" {state}" if state else "") + (f"  {shown}" if shown else ""))
    return "\n".join(lines) + "\n"


def _text(value: object) -> str:
    return "-" if value is None else str(value)
