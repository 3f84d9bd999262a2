"""`smppgw status`: what the running daemon reports at ``GET /v1/status``, as aligned tables
for an operator (binds, queues, counts) or, with --json, the raw JSON for scripts.

Rendering is tolerant: keys it does not know are shown generically, missing ones as "-".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
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

__all__ = ["add_arguments", "format_duration", "render_status", "run"]

# The sections this command lays out itself; anything else in the answer is shown generically.
_BIND_COLUMNS: Final = ("PROVIDER", "BIND", "KIND", "HOST", "STATE", "IN-FLIGHT", "RATE",
                        "LAST ERROR")
# A bind's kind, as short as the bind PDUs' names allow.
_KINDS: Final = {"transceiver": "trx", "transmitter": "tx", "receiver": "rx"}
_QUEUE_COLUMNS: Final = ("PROVIDER", "QUEUED", "SENDING", "OLDEST")
_PROVIDER_COLUMNS: Final = ("PROVIDER", "PROFILE", "BINDS", "PAUSED")
_COUNT_SCALARS: Final = (
    ("last_cursor", "last event cursor"),
    ("unmatched_receipts", "unmatched receipts"),
    ("mo_messages", "MO messages"),
    ("mo_parts_pending", "MO parts pending"),
)
_UNMATCHED_COLUMNS: Final = ("PROVIDER", "PENDING", "STALE", "OLDEST")
_KNOWN: Final = frozenset({"providers", "binds", "queues", "counts", "unmatched_receipts"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``smppgw status`` on the parser the CLI made for it."""
    parser.add_argument("--json", action="store_true", help="print the raw JSON answer")
    add_socket_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """0 when the daemon answered, 2 when it cannot be reached or answered an error."""
    try:
        status = asyncio.run(_fetch(socket_path(args)))
    except ClientError as exc:
        print(f"smppgw status: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps(status, indent=2, ensure_ascii=False))
    else:
        print(render_status(status), end="")
    return 0


async def _fetch(path: Path) -> Mapping[str, object]:
    async with LocalClient(path, timeout=10.0) as client:
        code, body = await client.request("GET", "/v1/status")
    if code != 200 or not isinstance(body, dict):
        raise ClientError(f"smppgw at {path} answered HTTP {code}: {error_line(body)}",
                          EXIT_UNREACHABLE)
    return body


# --- rendering -----------------------------------------------------------------------------------


def format_duration(seconds: object) -> str:
    """``4.2s``, ``3m05s``, ``2h10m``, ``3d04h``; "-" for nothing or a non-number."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _text(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(columns), *(line(r) for r in rows)]


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _rate(bind: Mapping[str, object]) -> str:
    """The rate a bind sends at now, msg/s; the configured one after it while flow control
    holds it lower (``31.5/s (50)``)."""
    rate, effective = _number(bind.get("rate")), _number(bind.get("effective_rate"))
    if effective is not None and (rate is None or effective < rate):
        return f"{effective:g}/s ({_text(bind.get('rate'))})"
    if rate is not None:
        return f"{rate:g}/s"
    return _text(bind.get("rate"))


def _in_flight(bind: Mapping[str, object]) -> str:
    """Requests in flight / the window used now; the configured one after it while flow
    control holds it narrower (``3/5 (10)``)."""
    in_flight, window = bind.get("in_flight"), bind.get("window")
    if in_flight is None and window is None:
        return "-"
    configured, effective = _number(window), _number(bind.get("effective_window"))
    if configured is not None and effective is not None and effective < configured:
        return f"{_text(in_flight)}/{effective:g} ({configured:g})"
    return f"{_text(in_flight)}/{_text(window)}"


def _state(bind: Mapping[str, object]) -> str:
    """The bind's state; for one in backoff, when it tries again and why it is down."""
    state = _text(bind.get("state"))
    retry_in = _number(bind.get("retry_in"))
    if state == "backoff" and retry_in is not None:
        reason = bind.get("retry_reason")
        return f"backoff, retry in {format_duration(retry_in)}" + (
            f" ({reason})" if reason else "")
    return state


def _bind_rows(binds: object) -> list[list[str]]:
    rows: list[list[str]] = []
    for bind in binds if isinstance(binds, list) else ():
        if isinstance(bind, dict):
            kind = bind.get("kind")
            host = _text(bind.get("host"))
            if bind.get("transport") and host != "-":
                host = f"{bind['transport']}://{host}"
            rows.append([
                _text(bind.get("provider")), _text(bind.get("name")),
                _KINDS.get(kind, _text(kind)) if isinstance(kind, str) else "-", host,
                _state(bind), _in_flight(bind), _rate(bind),
                _text(bind.get("last_error")),
            ])
    return rows


def _provider_rows(providers: object) -> list[list[str]]:
    """BINDS is bound/configured; PAUSED says since when the operator paused it."""
    rows: list[list[str]] = []
    for provider in providers if isinstance(providers, list) else ():
        if isinstance(provider, dict):
            paused = (f"since {_text(provider.get('paused_since'))}"
                      if provider.get("paused") else "-")
            rows.append([
                _text(provider.get("name")), _text(provider.get("profile")),
                f"{_text(provider.get('binds_bound'))}/{_text(provider.get('binds_configured'))}",
                paused,
            ])
    return rows


def _queue_rows(queues: object) -> list[list[str]]:
    """``queues`` as {provider: {...}} (Store.queue_stats) or a list of objects."""
    items: list[tuple[object, Mapping[str, object]]] = []
    if isinstance(queues, dict):
        items = [(k, v) for k, v in queues.items() if isinstance(v, dict)]
    elif isinstance(queues, list):
        items = [(q.get("provider"), q) for q in queues if isinstance(q, dict)]
    return [
        [_text(provider), _text(q.get("queued")), _text(q.get("sending")),
         format_duration(q.get("oldest_queued_age")) if q.get("queued") else "-"]
        for provider, q in items
    ]


def _by_state(label: str, counts: object) -> str:
    if not isinstance(counts, dict) or not counts:
        return f"{label:<10}-"
    return f"{label:<10}" + "  ".join(f"{state} {n}" for state, n in counts.items())


def render_status(status: Mapping[str, object]) -> str:
    """The human view of a /v1/status answer; ends with a newline."""
    lines: list[str] = []
    header = [f"{k} {_text(v)}" for k, v in status.items()
              if k not in _KNOWN and not isinstance(v, dict | list)]
    if header:
        lines += ["  ".join(header), ""]

    provider_rows = _provider_rows(status.get("providers"))
    if provider_rows:
        lines += ["PROVIDERS", *_table(_PROVIDER_COLUMNS, provider_rows), ""]

    lines.append("BINDS")
    bind_rows = _bind_rows(status.get("binds"))
    lines += _table(_BIND_COLUMNS, bind_rows) if bind_rows else ["(none)"]

    lines += ["", "QUEUES"]
    queue_rows = _queue_rows(status.get("queues"))
    lines += _table(_QUEUE_COLUMNS, queue_rows) if queue_rows else ["(empty)"]

    unmatched = status.get("unmatched_receipts")
    if isinstance(unmatched, list) and unmatched:
        # Receipts no message of their account has matched; STALE ones for longer than
        # gateway.unmatched_receipt_after (they will not be matched by waiting).
        rows = [[_text(u.get("provider")), _text(u.get("pending")), _text(u.get("stale")),
                 format_duration(u.get("oldest_age"))]
                for u in unmatched if isinstance(u, dict)]
        lines += ["", "UNMATCHED RECEIPTS", *_table(_UNMATCHED_COLUMNS, rows)]

    counts = status.get("counts")
    if isinstance(counts, dict):
        lines += ["", "COUNTS", _by_state("messages", counts.get("messages")),
                  _by_state("segments", counts.get("segments"))]
        scalars = [f"{label} {_text(counts[key])}" for key, label in _COUNT_SCALARS
                   if key in counts]
        if scalars:
            lines.append("  ".join(scalars))

    for key, value in status.items():
        if key in _KNOWN:
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            columns = list(dict.fromkeys(k for v in value for k in v))
            rows = [[_text(v.get(c)) for c in columns] for v in value]
            lines += ["", key.upper(), *_table([c.upper() for c in columns], rows)]
        elif isinstance(value, dict):
            lines += ["", key.upper(), *(f"{k} {_text(v)}" for k, v in value.items())]
    return "\n".join(lines) + "\n"
