"""`smppgw cancel ID_OR_TRACKING_ID`: stop a message's parts not yet sent, and say where each
part stands. A thin client of ``DELETE /v1/messages/{tracking_id}`` (found by tracking id or
by the application's own id, as ``smppgw show`` finds it).

Exit codes: 0 cancelled (now or before), 1 no such message or nothing left to cancel, 2 the
daemon cannot be reached or answered an error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
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
from smppgw.show_cmd import find_message

__all__ = ["add_arguments", "parts_text", "run"]

EXIT_OK: Final = 0
EXIT_REFUSED: Final = 1
_WHERE: Final = (
    ("not_sent", "not sent", ""),
    ("in_flight", "in flight", "  (may have reached the SMSC; never sent again)"),
    ("sent", "sent", ""),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``smppgw cancel`` on the parser the CLI made for it."""
    parser.add_argument("message", metavar="ID_OR_TRACKING_ID",
                        help="the tracking id smppgw answered, or your own id for the message")
    add_socket_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        status, body = asyncio.run(_cancel(socket_path(args), args.message))
    except ClientError as exc:
        print(f"smppgw cancel: {exc}", file=sys.stderr)
        return exc.exit_code
    if status is None:
        print(f"smppgw cancel: no message with tracking id or id {args.message!r}",
              file=sys.stderr)
        return EXIT_REFUSED
    if status != 200 or not isinstance(body, dict):
        print(f"smppgw cancel: {error_line(body)}", file=sys.stderr)
        return EXIT_REFUSED if status in (404, 409) else EXIT_UNREACHABLE
    print(render_cancel(body), end="")
    return EXIT_OK


async def _cancel(path: Path, wanted: str) -> tuple[int | None, object]:
    """(HTTP status, body) of the DELETE; (None, None) when no message is found."""
    view = await find_message(path, wanted)
    if view is None:
        return None, None
    async with LocalClient(path, timeout=10.0) as client:
        return await client.request("DELETE", f"/v1/messages/{view['tracking_id']}")


def render_cancel(answer: Mapping[str, object]) -> str:
    """``cancelled TRACKING_ID``, then a line per kind of part: not sent, in flight, sent."""
    head = "already cancelled" if answer.get("already_cancelled") else "cancelled"
    client_id = answer.get("id")
    lines = [f"{head} {answer.get('tracking_id')}"
             + (f" (id {client_id})" if client_id is not None else "")]
    for key, label, note in _WHERE:
        parts = answer.get(key)
        if isinstance(parts, list) and parts:
            lines.append(f"  {label:<10} {parts_text(parts)}{note}")
    asked = answer.get("cancel_sm")
    if isinstance(asked, list) and asked:
        lines.append(f"  {'cancel_sm':<10} " + ", ".join(
            f"part {item.get('part')} {item.get('status')}" for item in asked
            if isinstance(item, dict)) + "  (ESME_ROK: the SMSC will not deliver it)")
    return "\n".join(lines) + "\n"


def parts_text(parts: list[object]) -> str:
    """``part 2`` or ``parts 0, 1`` (0-based, as the message view numbers them)."""
    return ("part " if len(parts) == 1 else "parts ") + ", ".join(str(p) for p in parts)
