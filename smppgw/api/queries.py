"""Validation of the message list's query string: ``GET /v1/messages?state=&provider=&
to_prefix=&since=&until=&limit=&after=`` in, a store MessageQuery or the field error that
refuses it out. Pure: every rule names the parameter it broke.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

from smppgw.api.schemas import RequestError, shown
from smppgw.flow.submission import ErrorCode, FieldError
from smppgw.store import MESSAGE_STATES, MessageQuery
from smppgw.store.search import MAX_LIMIT, decode_cursor

__all__ = ["DEFAULT_LIMIT", "LIST_PARAMS", "parse_instant", "parse_list_query"]

#: Messages in a page when the query does not say.
DEFAULT_LIMIT: Final = 50
LIST_PARAMS: Final = ("state", "provider", "to_prefix", "since", "until", "limit", "after")

_PROVIDER: Final = re.compile(r"[a-z0-9_-]{1,64}")
_PREFIX: Final = re.compile(r"\+?[0-9]{1,20}")
_LIMIT: Final = re.compile(r"[0-9]{1,4}")
_UNIX_SECONDS: Final = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,6})?")


def parse_list_query(query: Mapping[str, Sequence[str]]) -> MessageQuery:
    """``query``: each parameter's values as given (``id`` is not one of these: it finds one
    message and is handled before). Raises RequestError (400) naming the parameter."""
    for key, values in query.items():
        if key not in LIST_PARAMS:
            name = shown(key)
            raise _error("unknown_field", name, f"unknown parameter '{name}'; use "
                         f"{', '.join(LIST_PARAMS)} (or id alone)")
        if len(values) > 1:
            raise _error("invalid_value", key, f"'{key}' is given more than once")
    value = {key: values[0] for key, values in query.items()}

    state = value.get("state")
    if state is not None and state not in MESSAGE_STATES:
        raise _error("invalid_value", "state",
                     f"'state' must be one of {', '.join(MESSAGE_STATES)}")
    provider = value.get("provider")
    if provider is not None and not _PROVIDER.fullmatch(provider):
        raise _error("invalid_value", "provider",
                     "'provider' is a provider name: 1 to 64 of a-z, 0-9, _ and -")
    to_prefix = value.get("to_prefix")
    if to_prefix is not None:
        if not _PREFIX.fullmatch(to_prefix):
            raise _error("invalid_value", "to_prefix",
                         "'to_prefix' is the first digits of a number: 1 to 20 digits, "
                         "optionally after a +")
        to_prefix = to_prefix.lstrip("+")
    since = _instant(value, "since")
    until = _instant(value, "until")
    if since is not None and until is not None and until <= since:
        raise _error("invalid_value", "until", "'until' must be later than 'since'")
    limit_text = value.get("limit", str(DEFAULT_LIMIT))
    if not _LIMIT.fullmatch(limit_text) or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise _error("invalid_value", "limit",
                     f"'limit' must be an integer from 1 to {MAX_LIMIT}")
    after = None
    if "after" in value:
        try:
            after = decode_cursor(value["after"])
        except ValueError:
            raise _error("invalid_value", "after",
                         "'after' takes the 'next' of the page before, as it was "
                         "answered") from None
    return MessageQuery(
        state=state, provider=provider, to_prefix=to_prefix,
        since_wall=since, until_wall=until, limit=int(limit_text), after=after)


def parse_instant(text: str) -> float | None:
    """Unix seconds from an ISO 8601 date or time (a time without an offset is UTC), or from
    unix seconds; None when ``text`` is neither."""
    if _UNIX_SECONDS.fullmatch(text):
        return float(text)
    if len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _instant(value: Mapping[str, str], key: str) -> float | None:
    text = value.get(key)
    if text is None:
        return None
    seconds = parse_instant(text)
    if seconds is None:
        raise _error("invalid_value", key,
                     f"'{key}' is a time: ISO 8601 (2025-05-01, 2025-05-01T12:00:00Z) or "
                     "unix seconds")
    return seconds


def _error(code: ErrorCode, field: str, message: str) -> RequestError:
    return RequestError(FieldError(code, field, message))
