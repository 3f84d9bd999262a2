"""Validation of submit requests: JSON in, validated messages or field errors out.

Pure and synchronous: every rule names the field it broke (``messages[3].to``), so a client
can fix its request without reading our logs. One bad message never rejects the others.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from smppgw.flow.submission import FieldError, SubmitRequest
from smppgw.smpp.text import ENCODINGS

MAX_MESSAGES_PER_REQUEST = 1000
MAX_CLIENT_ID_LENGTH = 128
MAX_TEXT_LENGTH = 255 * 153  # more cannot fit in 255 parts in any encoding
MAX_VALIDITY_MINUTES = 7 * 24 * 60
# A DLT template id is 19 digits today; the TLV is a C-Octet String, so any printable ASCII
# up to this length is taken.
MAX_TEMPLATE_ID_LENGTH = 64

_DESTINATION = re.compile(r"\+?[0-9]{1,20}")
_NUMERIC_SENDER = re.compile(r"\+?[0-9]{1,20}")
_ALPHANUMERIC_SENDER = re.compile(r"[A-Za-z0-9]{3,11}")
_TEMPLATE_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_TEMPLATE_ID_LENGTH}}}")
_TLV_KEY = re.compile(r"0[xX][0-9a-fA-F]{1,4}|[0-9]{1,5}")
# json.loads joins a high and a low surrogate escape into one character, so any surrogate left
# in a parsed string stands alone: it is not a Unicode character and cannot be UTF-8 encoded.
_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")
# A client-chosen name (an unknown field, a TLV tag) is echoed in errors up to this length.
MAX_SHOWN_NAME: Final = 64

MESSAGE_KEYS = frozenset(
    {"id", "to", "from", "text", "provider", "flash", "validity_minutes", "tlvs", "receipt",
     "encoding", "template_id"}
)

@dataclass(frozen=True, slots=True)
class Naming:
    """How one door names a message's fields in its errors: ``messages[3].to`` on
    ``POST /v1/messages``, ``communications[3].recipient`` on Wiraya's endpoint.

    ``fields`` maps our key (``to``) to its path inside the door's message (``recipient``,
    ``content.sender``); keys not in it keep our name.
    """

    collection: str
    fields: Mapping[str, str] = field(default_factory=dict)

    def prefix(self, index: int) -> str:
        return f"{self.collection}[{index}]"

    def path(self, index: int, key: str) -> str:
        return f"{self.prefix(index)}.{self.fields.get(key, key)}"

    def label(self, key: str) -> str:
        """The name quoted in an error's message: the last part of the path."""
        return self.fields.get(key, key).rpartition(".")[2]


MESSAGES: Final = Naming("messages")


class RequestError(Exception):
    """The request as a whole is unusable (HTTP 400); nothing of it is stored."""

    def __init__(self, error: FieldError, status: int = 400) -> None:
        self.error = error
        self.status = status
        super().__init__(error.message)


def parse_submit_body(
    body: object, *, sender_policy: Literal["error", "warn"] = "error"
) -> list[SubmitRequest | FieldError]:
    """Validate ``{"messages": [...]}``; one result per message, in request order.

    Raises RequestError when the envelope itself is wrong (not an object, no list, too many).
    """
    if not isinstance(body, Mapping):
        raise RequestError(FieldError(
            "invalid_request", "", 'the body must be a JSON object: {"messages": [...]}'))
    unknown = sorted(set(body) - {"messages"})
    if unknown:
        name = shown(unknown[0])
        raise RequestError(FieldError("unknown_field", name, f"unknown field '{name}'"))
    if "messages" not in body:
        raise RequestError(
            FieldError("missing_field", "messages", "'messages' is required: a list of messages")
        )
    messages = body["messages"]
    if not isinstance(messages, list):
        raise RequestError(
            FieldError("invalid_type", "messages", "'messages' must be a list of messages")
        )
    if not 1 <= len(messages) <= MAX_MESSAGES_PER_REQUEST:
        raise RequestError(
            FieldError(
                "invalid_request",
                "messages",
                f"'messages' must hold 1 to {MAX_MESSAGES_PER_REQUEST} messages, "
                f"got {len(messages)}",
            )
        )
    results: list[SubmitRequest | FieldError] = []
    seen_ids: set[str] = set()
    for index, item in enumerate(messages):
        result = parse_message(item, index, sender_policy=sender_policy)
        client_id = result.client_id if isinstance(result, SubmitRequest) else None
        if client_id is not None:
            if client_id in seen_ids:
                result = FieldError(
                    "duplicate_id",
                    f"messages[{index}].id",
                    f"id {client_id!r} appears twice in this request",
                    client_id=client_id,
                )
            else:
                seen_ids.add(client_id)
        results.append(result)
    return results


def parse_message(
    item: object, index: int, *, sender_policy: Literal["error", "warn"] = "error",
    naming: Naming = MESSAGES,
) -> SubmitRequest | FieldError:
    """Validate one message; the first broken rule is returned as a FieldError, named as
    ``naming`` says and carrying the message's id when that id is valid."""
    result = _parse_message(item, index, sender_policy, naming)
    if isinstance(result, FieldError) and isinstance(item, Mapping):
        return replace(result, client_id=valid_client_id(item.get("id")))
    return result


def valid_client_id(value: object) -> str | None:
    """``value`` if it is a usable client id, else None (an answer then carries no id)."""
    if (
        isinstance(value, str)
        and 1 <= len(value) <= MAX_CLIENT_ID_LENGTH
        and not _LONE_SURROGATE.search(value)
    ):
        return value
    return None


# The fields whose value is text; each is checked for lone surrogates before anything else
# reads it, so no rule below can echo, encode or store one.
_TEXT_FIELDS: Final = ("id", "to", "from", "text", "provider", "encoding", "template_id")


def _parse_message(
    item: object, index: int, sender_policy: Literal["error", "warn"], naming: Naming,
) -> SubmitRequest | FieldError:
    prefix = naming.prefix(index)

    def path(key: str) -> str:
        return naming.path(index, key)

    def label(key: str) -> str:
        return naming.label(key)

    if not isinstance(item, Mapping):
        return FieldError("invalid_type", prefix, "each message must be a JSON object")
    unknown = sorted(set(item) - MESSAGE_KEYS)
    if unknown:
        name = shown(unknown[0])
        return FieldError(
            "unknown_field", f"{prefix}.{name}", f"unknown field '{name}'{_suggest(name)}"
        )
    for key in _TEXT_FIELDS:
        value = item.get(key)
        if isinstance(value, str):
            surrogate = lone_surrogate_error(value, path(key), label(key))
            if surrogate is not None:
                return surrogate

    client_id = item.get("id")
    if client_id is not None:
        if not isinstance(client_id, str):
            return FieldError("invalid_type", path("id"), f"'{label('id')}' must be a string")
        if not 1 <= len(client_id) <= MAX_CLIENT_ID_LENGTH:
            return FieldError(
                "invalid_value", path("id"),
                f"'{label('id')}' must be 1 to {MAX_CLIENT_ID_LENGTH} characters",
            )

    to = item.get("to")
    if to is None:
        return FieldError("missing_field", path("to"), f"'{label('to')}' is required")
    if not isinstance(to, str):
        return FieldError(
            "invalid_type", path("to"), f"'{label('to')}' must be a string of digits"
        )
    if not _DESTINATION.fullmatch(to):
        return FieldError(
            "invalid_destination", path("to"),
            f"'{label('to')}' must be 1 to 20 digits, optionally after a '+' "
            "(international format)",
        )

    warnings: list[str] = []
    sender = item.get("from", "")
    if not isinstance(sender, str):
        return FieldError("invalid_type", path("from"), f"'{label('from')}' must be a string")
    if sender and not _NUMERIC_SENDER.fullmatch(sender) and not _ALPHANUMERIC_SENDER.fullmatch(
        sender
    ):
        rule = (f"'{label('from')}' must be 3 to 11 letters and digits (A-Z a-z 0-9) "
                "or up to 20 digits")
        if sender_policy == "error" or len(sender.encode("latin-1", "replace")) > 20:
            return FieldError("invalid_sender", path("from"), rule)
        warnings.append(f"{path('from')}: {rule}")

    text = item.get("text")
    if text is None:
        return FieldError("missing_field", path("text"), f"'{label('text')}' is required")
    if not isinstance(text, str):
        return FieldError("invalid_type", path("text"), f"'{label('text')}' must be a string")
    if not text:
        return FieldError("invalid_value", path("text"), f"'{label('text')}' must not be empty")
    if len(text) > MAX_TEXT_LENGTH:
        return FieldError(
            "too_many_parts", path("text"),
            f"'{label('text')}' has {len(text)} characters; more than 255 parts would be needed",
        )

    provider = item.get("provider")
    if provider is not None and not isinstance(provider, str):
        return FieldError(
            "invalid_type", path("provider"), f"'{label('provider')}' must be a string"
        )

    flags: dict[str, bool] = {}
    for key, default in (("flash", False), ("receipt", True)):
        value = item.get(key, default)
        if not isinstance(value, bool):
            return FieldError(
                "invalid_type", path(key), f"'{label(key)}' must be true or false"
            )
        flags[key] = value

    validity = item.get("validity_minutes")
    rule = f"'{label('validity_minutes')}' must be an integer from 1 to {MAX_VALIDITY_MINUTES}"
    if validity is not None:
        if isinstance(validity, bool) or not isinstance(validity, int):
            return FieldError("invalid_type", path("validity_minutes"), rule)
        if not 1 <= validity <= MAX_VALIDITY_MINUTES:
            return FieldError("invalid_value", path("validity_minutes"), rule)

    encoding = item.get("encoding")
    if encoding is not None:
        rule = f"'{label('encoding')}' must be one of {', '.join(ENCODINGS)}"
        if not isinstance(encoding, str):
            return FieldError("invalid_type", path("encoding"), rule)
        if encoding not in ENCODINGS:
            return FieldError("invalid_value", path("encoding"), rule)

    template_id = item.get("template_id")
    if template_id is not None:
        rule = (f"'{label('template_id')}' must be the DLT template id: 1 to "
                f"{MAX_TEMPLATE_ID_LENGTH} printable ASCII characters without spaces")
        if not isinstance(template_id, str):
            return FieldError("invalid_type", path("template_id"), rule)
        if not _TEMPLATE_ID.fullmatch(template_id):
            return FieldError("invalid_value", path("template_id"), rule)

    tlvs = parse_tlvs(item.get("tlvs"), path("tlvs"))
    if isinstance(tlvs, FieldError):
        return tlvs

    return SubmitRequest(
        index=index,
        client_id=client_id,
        to=to.removeprefix("+"),
        sender=sender,
        text=text,
        provider=provider,
        flash=flags["flash"],
        validity_minutes=validity,
        tlvs=tlvs,
        template_id=template_id,
        receipt=flags["receipt"],
        encoding=encoding,
        warnings=tuple(warnings),
    )


def parse_tlvs(value: object, field: str) -> tuple[tuple[int, bytes], ...] | FieldError:
    """``{"0x1401": "text"}`` (a C-string, NUL added) or ``{"0x1401": {"hex": "00ff"}}``."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        return FieldError("invalid_type", field, "'tlvs' must be an object of tag → value")
    result: list[tuple[int, bytes]] = []
    for key, raw_value in value.items():
        path = f"{field}.{shown(str(key))}"
        if not isinstance(key, str) or not _TLV_KEY.fullmatch(key):
            return FieldError(
                "invalid_tlv", path, "a TLV tag is hex like '0x1401' or decimal, 0 to 65535"
            )
        tag = int(key, 0) if key.lower().startswith("0x") else int(key)
        if tag > 0xFFFF:
            return FieldError("invalid_tlv", path, "a TLV tag is 0 to 65535")
        if isinstance(raw_value, str):
            try:
                raw = raw_value.encode("latin-1") + b"\0"
            except UnicodeEncodeError:
                return FieldError(
                    "invalid_tlv", path, "a text TLV value must be Latin-1; use {\"hex\": ...}"
                )
        elif (
            isinstance(raw_value, Mapping)
            and set(raw_value) == {"hex"}
            and isinstance(raw_value["hex"], str)
        ):
            try:
                raw = bytes.fromhex(raw_value["hex"])
            except ValueError:
                return FieldError("invalid_tlv", path, "'hex' must be an even number of hex digits")
        else:
            return FieldError(
                "invalid_tlv", path, "a TLV value is a string or {\"hex\": \"...\"}"
            )
        if len(raw) > 0xFFFF:
            return FieldError("invalid_tlv", path, "a TLV value is at most 65535 octets")
        result.append((tag, raw))
    return tuple(result)


def lone_surrogate_error(value: str, field: str, label: str) -> FieldError | None:
    """An ``invalid_value`` error when ``value`` holds a lone UTF-16 surrogate (``"\\ud800"``
    in JSON), which no SMS alphabet, store or answer can carry; else None."""
    match = _LONE_SURROGATE.search(value)
    if match is None:
        return None
    return FieldError(
        "invalid_value", field,
        f"'{label}' holds a lone UTF-16 surrogate (U+{ord(match.group()):04X} at character "
        f"{match.start()}), which is not Unicode text; send surrogates in pairs",
    )


def shown(name: str) -> str:
    """A client-chosen name as an error may echo it: lone surrogates written as ``\\udXXX``
    escapes (so the answer can always be encoded) and cut after MAX_SHOWN_NAME characters
    (so a megabyte of field name is not sent back twice)."""
    text = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= MAX_SHOWN_NAME else text[:MAX_SHOWN_NAME] + "…"


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, sorted(MESSAGE_KEYS), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
