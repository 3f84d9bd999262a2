"""The message list's plan, the same for both backends: which index a query walks, what is
left to filter, where the next page starts, and the cursor that carries that position.

Pure: no SQL text, no I/O. The backends build their statements from a ``Plan``.

Theory of operation
-------------------
The list runs newest first, by (created_unix_ms, tracking_id), and pages by keyset: a page
starts strictly after the last position of the one before, so a message accepted meanwhile
neither shifts nor repeats the pages a reader already has. Every index the list walks ends in
(created_unix_ms, tracking_id), so one index walk yields positions in list order:

- ``undelivered`` (messages(undelivered_state, created, tracking_id), partial): a state an
  operator hunts for (failed, undeliverable, expired, rejected, cancelled). A message enters it
  once, when it ends so; the far more common moves (queued → submitted → delivered) never touch
  it, which keeps PostgreSQL's updates of a message HOT and SQLite's cheap.
- ``unsent`` (segments(created, tracking_id, provider, state) where queued or sending): state
  ``queued`` is the queue itself, however long the history.
- ``destination`` (messages(destination, created, tracking_id)): a number, or a block of
  numbers. A prefix range is not in list order, so this walk reads every message to the
  prefix (within since/until) and sorts them: the backend first counts them, index-only and
  at most SCAN_LIMIT + 1, and when there are more (a country code), walks by time instead
  and filters the prefix (``plan(query, dense_prefix=True)``). Both walks give the same list,
  so the pages of one query may take either.
- ``provider`` (messages(provider, created, tracking_id)), else ``created``.

A walk examines at most SCAN_LIMIT index entries per call and the other filters apply to what
it found, so a call costs the same on a store of a thousand messages or of ten million; when
the walk stops before the page is full, ``next`` is where it stopped and the page is short
(perhaps empty). Readers follow ``next`` until it is None.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Final, Literal, cast

from smppgw.store.models import UNDELIVERED_STATES, MessageQuery, PageKey

__all__ = [
    "MAX_LIMIT",
    "SCAN_LIMIT",
    "Plan",
    "Source",
    "decode_cursor",
    "encode_cursor",
    "next_key",
    "plan",
    "prefix_range",
]

#: Most messages in one page.
MAX_LIMIT: Final = 200
#: Index entries one call walks at most (an index-only walk: a few milliseconds).
SCAN_LIMIT: Final = 10_000

Source = Literal["undelivered", "unsent", "destination", "provider", "created"]

_CURSOR_PREFIX: Final = "m1."
_CURSOR_BODY: Final = re.compile(r"([0-9]{1,19})\.([0-9a-f]{32})")


@dataclass(frozen=True, slots=True)
class Plan:
    """How to run one MessageQuery: the walk (``source``, bounded by the creation range and
    the keyset position ``after``) and the filters left for the rows it yields."""

    source: Source
    drive: tuple[str, ...]       # the walk's key: (provider,), (lo, hi) of the destination,
                                 # (undelivered state,), or () for the others
    since_unix_ms: int | None
    until_unix_ms: int | None
    after: PageKey | None
    state: str | None            # left to filter (None when the walk implies it)
    provider: str | None         # left to filter
    to_range: tuple[str, str] | None   # left to filter: destination >= lo and < hi
    limit: int
    scan_limit: int


def plan(
    query: MessageQuery, scan_limit: int | None = None, *, dense_prefix: bool = False,
) -> Plan:
    """The walk and the filters for ``query`` (see the theory of operation); the walk
    examines at most ``scan_limit`` entries (SCAN_LIMIT). ``dense_prefix``: the backend found
    more than that many messages to ``to_prefix``, so the prefix is filtered, not walked."""
    state = query.state
    source: Source
    if state is not None and state in UNDELIVERED_STATES:
        source = "undelivered"
    elif state == "queued":
        source = "unsent"
    elif query.to_prefix and not dense_prefix:
        source = "destination"
    elif query.provider is not None:
        source = "provider"
    else:
        source = "created"
    to_range = prefix_range(query.to_prefix) if query.to_prefix else None
    walk_limit = SCAN_LIMIT if scan_limit is None else scan_limit
    drive: tuple[str, ...] = ()
    if source == "undelivered":
        drive = (cast(str, state),)
    elif source == "destination":
        drive = cast(tuple[str, str], to_range)
    elif source == "provider":
        drive = (cast(str, query.provider),)
    # 'undelivered' walks exactly that state; 'unsent' yields queued messages and those whose
    # last part is being answered (any state), so the state is checked again.
    left_state = None if source == "undelivered" else state
    left_provider = None if source == "provider" else query.provider
    left_range = None if source == "destination" else to_range
    if left_state is None and left_provider is None and left_range is None:
        # Every entry walked is in the list: a page and one more is all there is to read.
        walk_limit = min(walk_limit, query.limit + 1)
    return Plan(
        source=source, drive=drive, since_unix_ms=_ms(query.since_wall),
        until_unix_ms=_ms(query.until_wall), after=query.after, state=left_state,
        provider=left_provider, to_range=left_range, limit=query.limit,
        scan_limit=walk_limit,
    )


def prefix_range(prefix: str) -> tuple[str, str]:
    """(lo, hi): the strings that start with ``prefix`` are those ``lo <= s < hi`` in binary
    (code point) order, so an index on the column finds them. ``prefix`` is not empty."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def next_key(
    found: list[PageKey], limit: int, scanned: int, last_scanned: PageKey | None,
    scan_limit: int,
) -> PageKey | None:
    """Where the page after this one starts. ``found``: the matches of the walk in list order,
    up to ``limit + 1`` (one more than a page, to know whether another follows); ``scanned``:
    entries the walk examined; ``last_scanned``: the last of them."""
    if len(found) > limit:
        return found[limit - 1]
    if scanned >= scan_limit and last_scanned is not None:
        return last_scanned
    return None


def encode_cursor(key: PageKey) -> str:
    """An opaque text for ``key`` (URL-safe, no padding)."""
    raw = f"{_CURSOR_PREFIX}{key.created_unix_ms}.{key.tracking_id}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(text: str) -> PageKey:
    """The key ``encode_cursor`` made; ValueError for anything else."""
    if not 1 <= len(text) <= 96 or not text.isascii():
        raise ValueError("not a cursor")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise ValueError("not a cursor") from None
    if not raw.startswith(_CURSOR_PREFIX):
        raise ValueError("not a cursor")
    match = _CURSOR_BODY.fullmatch(raw[len(_CURSOR_PREFIX):])
    if match is None or int(match[1]) >= 2**63:
        raise ValueError("not a cursor")
    return PageKey(int(match[1]), match[2])


def _ms(wall: float | None) -> int | None:
    return None if wall is None else round(wall * 1000)
