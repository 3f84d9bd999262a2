"""`smppgw provider pause NAME` / `smppgw provider resume NAME`: stop sending through a provider
and start again, without touching the config; the pause outlives reloads and restarts. A thin
client of ``POST /v1/providers/{name}/pause`` and ``/resume``.

Exit codes: 0 done, 1 no such provider, 2 the daemon cannot be reached or answered an error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
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

__all__ = ["add_arguments", "run"]

EXIT_OK: Final = 0
EXIT_REFUSED: Final = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the actions of ``smppgw provider`` on the parser the CLI made for it."""
    parser.add_argument("action", choices=("pause", "resume"),
                        help="pause: nothing of the provider is sent (its binds stay up for "
                             "receipts and MO); resume: it sends again")
    parser.add_argument("name", metavar="NAME", help="the provider's name in the config")
    add_socket_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        status, body = asyncio.run(_set(socket_path(args), args.name, args.action))
    except ClientError as exc:
        print(f"smppgw provider: {exc}", file=sys.stderr)
        return exc.exit_code
    if status != 200 or not isinstance(body, dict):
        print(f"smppgw provider: {error_line(body)}", file=sys.stderr)
        return EXIT_REFUSED if status == 404 else EXIT_UNREACHABLE
    if body.get("paused"):
        print(f"{body.get('provider')} paused since {body.get('since')}")
    else:
        print(f"{body.get('provider')} resumed")
    return EXIT_OK


async def _set(path: Path, name: str, action: str) -> tuple[int, object]:
    async with LocalClient(path, timeout=10.0) as client:
        return await client.request("POST", f"/v1/providers/{quote(name, safe='')}/{action}")
