"""`smppgw retry ID_OR_TRACKING_ID`: send a failed, undeliverable or expired message again as a
new message linked to it, and print its new tracking id. A thin client of
``POST /v1/messages/{tracking_id}/retry`` (found as ``smppgw show`` finds a message).

Exit codes: 0 retried (now or before), 1 no such message or refused (its state, no route, an
unknown provider), 2 the daemon cannot be reached or answered an error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
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

__all__ = ["add_arguments", "run"]

EXIT_OK: Final = 0
EXIT_REFUSED: Final = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``smppgw retry`` on the parser the CLI made for it."""
    parser.add_argument("message", metavar="ID_OR_TRACKING_ID",
                        help="the tracking id smppgw answered, or your own id for the message")
    parser.add_argument("--provider", metavar="NAME",
                        help="send it through this provider instead of its route")
    add_socket_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        status, body = asyncio.run(_retry(socket_path(args), args.message, args.provider))
    except ClientError as exc:
        print(f"smppgw retry: {exc}", file=sys.stderr)
        return exc.exit_code
    if status is None:
        print(f"smppgw retry: no message with tracking id or id {args.message!r}",
              file=sys.stderr)
        return EXIT_REFUSED
    if status != 200 or not isinstance(body, dict):
        print(f"smppgw retry: {error_line(body)}", file=sys.stderr)
        return EXIT_REFUSED if status in (400, 404, 409) else EXIT_UNREACHABLE
    parts = body.get("segments")
    head = "already retried" if body.get("duplicate") else "retried"
    print(f"{head} {body.get('retry_of')} as {body.get('tracking_id')}"
          f" (provider {body.get('provider')}, {parts} part{'' if parts == 1 else 's'})")
    return EXIT_OK


async def _retry(path: Path, wanted: str, provider: str | None) -> tuple[int | None, object]:
    """(HTTP status, body) of the retry; (None, None) when no message is found."""
    view = await find_message(path, wanted)
    if view is None:
        return None, None
    async with LocalClient(path, timeout=30.0) as client:
        return await client.request(
            "POST", f"/v1/messages/{view['tracking_id']}/retry",
            json={"provider": provider} if provider is not None else None)
