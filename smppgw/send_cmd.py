"""`smppgw send`: submit one message through the daemon's local socket and, with --wait, follow
it to its final state. A thin client of ``POST /v1/messages``; it never touches the store.

Exit codes: 0 accepted (with --wait: delivered), 1 refused or not delivered, 2 the daemon
cannot be reached or answered an error, 3 --wait gave up before a final state.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final, TextIO

from smppgw.api.client import (
    EXIT_UNREACHABLE,
    ClientError,
    LocalClient,
    add_socket_arguments,
    error_line,
    socket_path,
)
from smppgw.argtypes import positive_seconds

__all__ = ["FINAL_STATES", "add_arguments", "run"]

EXIT_OK: Final = 0
EXIT_REFUSED: Final = 1  # refused at submit, or reached a final state other than delivered
EXIT_TIMEOUT: Final = 3
FINAL_STATES: Final = frozenset(
    {"delivered", "undeliverable", "expired", "rejected", "failed", "unknown", "cancelled"})
#: Longest single long-poll; the daemon allows 60 s.
POLL_WAIT: Final = 30.0
_LABEL_WIDTH: Final = 12


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``smppgw send`` on the parser the CLI made for it."""
    parser.add_argument("text", metavar="TEXT", help="the message text ('-' reads stdin)")
    parser.add_argument("--to", required=True, metavar="N",
                        help="destination in international format, digits (an optional +)")
    parser.add_argument("--from", dest="sender", metavar="S",
                        help="sender: 3-11 letters and digits, or up to 20 digits")
    parser.add_argument("--provider", metavar="P", help="send through this provider")
    parser.add_argument("--flash", action="store_true", help="flash SMS (message class 0)")
    parser.add_argument("--template-id", metavar="T",
                        help="India DLT template id (Qikberry: TLV 0x1401)")
    parser.add_argument("--id", dest="client_id", metavar="CLIENT_ID",
                        help="your id for the message; sending the same id again sends nothing")
    parser.add_argument("--wait", action="store_true",
                        help="wait for the final state; exit 0 only if delivered")
    parser.add_argument("--timeout", type=positive_seconds, default=120.0, metavar="S",
                        help="with --wait, give up after S seconds (default 120; exit 3)")
    add_socket_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Submit, print the answer, optionally wait. Returns the exit code (see module doc)."""
    text = sys.stdin.read().rstrip("\n") if args.text == "-" else args.text
    message: dict[str, object] = {"to": args.to, "text": text}
    if args.sender is not None:
        message["from"] = args.sender
    if args.provider is not None:
        message["provider"] = args.provider
    if args.flash:
        message["flash"] = True
    if args.template_id is not None:
        message["template_id"] = args.template_id
    if args.client_id is not None:
        message["id"] = args.client_id
    try:
        path = socket_path(args)
        return asyncio.run(_send(path, message, wait=args.wait, timeout=args.timeout))
    except ClientError as exc:
        print(f"smppgw send: {exc}", file=sys.stderr)
        return exc.exit_code


def _line(label: str, value: object, out: TextIO) -> None:
    print(f"{label:<{_LABEL_WIDTH}} {value}", file=out)


async def _send(
    path: Path, message: Mapping[str, object], *, wait: bool, timeout: float
) -> int:
    out = sys.stdout
    async with LocalClient(path) as client:
        status, body = await client.request("POST", "/v1/messages", json={"messages": [message]})
        if status != 200:
            print(f"smppgw send: refused (HTTP {status}): {error_line(body)}", file=sys.stderr)
            return EXIT_REFUSED if 400 <= status < 500 else EXIT_UNREACHABLE
        answer = _first_answer(body)
        warnings = answer.get("warnings")
        for warning in warnings if isinstance(warnings, list) else ():
            print(f"smppgw send: warning: {warning}", file=sys.stderr)
        if not answer.get("accepted"):
            transient = " (transient: retrying later may succeed)" if answer.get(
                "transient") else ""
            print(f"smppgw send: refused: {error_line(answer)}{transient}", file=sys.stderr)
            return EXIT_REFUSED
        tracking_id = str(answer.get("tracking_id"))
        _line("tracking_id", tracking_id, out)
        _line("provider", answer.get("provider"), out)
        _line("segments", answer.get("segments"), out)
        _line("data_coding", answer.get("data_coding"), out)
        if answer.get("duplicate"):
            _line("duplicate", "yes: this id was sent before, nothing was sent again", out)
        if not wait:
            return EXIT_OK
        return await _wait_final(client, tracking_id, timeout, out)


def _first_answer(body: object) -> dict[str, object]:
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
        raise ClientError("smppgw answered without a message result")
    return messages[0]


async def _get_message(client: LocalClient, tracking_id: str) -> dict[str, object]:
    status, body = await client.request("GET", f"/v1/messages/{tracking_id}")
    if status != 200 or not isinstance(body, dict):
        raise ClientError(f"cannot read message {tracking_id}: {error_line(body)}")
    return body


def _history_cursor(view: Mapping[str, object]) -> int:
    """The newest event cursor in the message's history: following the event log from there
    sees every later change of this message and nothing is missed in between."""
    history = view.get("history")
    cursors = [
        entry["cursor"] for entry in history or () if isinstance(entry, dict)
        and isinstance(entry.get("cursor"), int)
    ] if isinstance(history, list) else []
    return max(cursors, default=0)


async def _wait_final(
    client: LocalClient, tracking_id: str, timeout: float, out: TextIO
) -> int:
    """Follow the event log (long-poll) until this message is final or ``timeout`` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    view = await _get_message(client, tracking_id)
    cursor = _history_cursor(view)
    shown = view.get("state")
    _line("state", shown, out)
    while view.get("state") not in FINAL_STATES:
        remaining = deadline - loop.time()
        if remaining <= 0:
            print(f"smppgw send: still {view.get('state')} after {timeout:g} s", file=sys.stderr)
            return EXIT_TIMEOUT
        poll = min(POLL_WAIT, remaining)
        status, body = await client.request(
            "GET", "/v1/events",
            params={"after": str(cursor), "wait": f"{poll:.3f}", "limit": "1000"},
            timeout=poll + 10.0,
        )
        if status != 200 or not isinstance(body, dict) or not isinstance(
                body.get("cursor"), int):
            raise ClientError(f"cannot follow events: {error_line(body)}")
        cursor = body["cursor"]
        events = body.get("events")
        if isinstance(events, list) and any(
            isinstance(e, dict) and e.get("tracking_id") == tracking_id for e in events
        ):
            view = await _get_message(client, tracking_id)
            if view.get("state") != shown:
                shown = view.get("state")
                _line("state", shown, out)
    for detail in _outcome_details(view):
        _line("", detail, out)
    return EXIT_OK if view.get("state") == "delivered" else EXIT_REFUSED


def _outcome_details(view: Mapping[str, object]) -> list[str]:
    """Per part: the receipt's stat/err or the submit status, so a failure explains itself."""
    lines: list[str] = []
    segments = view.get("segments")
    for segment in segments if isinstance(segments, list) else ():
        if not isinstance(segment, dict):
            continue
        receipt = segment.get("receipt")
        bits = [f"part {segment.get('part_index')}: {segment.get('state')}"]
        if isinstance(receipt, dict):
            bits.append(f"stat={receipt.get('stat')} err={receipt.get('err')}")
        elif segment.get("submit_status"):
            bits.append(f"submit_status={segment.get('submit_status')}")
        if segment.get("last_error"):
            bits.append(f"error={segment.get('last_error')}")
        lines.append(" ".join(bits))
    if view.get("last_error") and view.get("state") != "delivered":
        lines.append(f"error: {view.get('last_error')}")
    return lines
