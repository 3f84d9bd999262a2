"""Validation of submit requests: JSON in, validated messages or field errors out.

Pure and synchronous: every rule names the field it broke (``messages[3].to``), so a client
can fix its request without reading our logs. One bad message never rejects the others.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from smppgw.smpp.text import ENCODINGS, Encoding

MAX_MESSAGES_PER_REQUEST = 1000
MAX_CLIENT_ID_LENGTH = 128
MAX_TEXT_LENGTH = 255 * 153  # more cannot fit in 255 parts in any encoding
MAX_VALIDITY_MINUTES = 7 * 24 * 60

_DESTINATION = re.compile(r"\+?[0-9]{1,20}")
_NUMERIC_SENDER = re.compile(r"\+?[0-9]{1,20}")
_ALPHANUMERIC_SENDER = re.compile(r"[A-Za-z0-9]{3,11}")
_TLV_KEY = re.compile(r"0[xX][0-9a-fA-F]{1,4}|[0-9]{1,5}")

MESSAGE_KEYS = frozenset(
    {"id", "to", "from", "text", "provider", "flash", "validity_minutes", "tlvs", "receipt",
     "encoding"}
)

ErrorCode = Literal[
    "invalid_json",
    "invalid_request",
    "missing_field",
    "unknown_field",
    "invalid_type",
    "invalid_destination",
    "invalid_sender",
    "invalid_value",
    "invalid_tlv",
    "unknown_provider",
    "no_route",
    "encoding_error",
    "too_many_parts",
    "duplicate_id",
    "body_too_large",
]


@dataclass(frozen=True, slots=True)
class FieldError:
    """A permanent, client-side error in one message or the whole request."""

    code: ErrorCode
    field: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "message": self.message}


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """One message as the API accepted it, before routing and encoding."""

    index: int
    client_id: str | None
    to: str  # digits only, the leading + removed
    sender: str
    text: str
    provider: str | None = None
    flash: bool = False
    validity_minutes: int | None = None
    tlvs: tuple[tuple[int, bytes], ...] = ()
    receipt: bool = True
    encoding: Encoding | None = None
    warnings: tuple[str, ...] = ()

    @property
    def field_prefix(self) -> str:
        return f"messages[{self.index}]"


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
        raise RequestError(FieldError("invalid_request", "", "the body must be a JSON object"))
    unknown = sorted(set(body) - {"messages"})
    if unknown:
        raise RequestError(
            FieldError("unknown_field", unknown[0], f"unknown field {unknown[0]!r}")
        )
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise RequestError(
            FieldError("missing_field", "messages", "'messages' must be a list of messages")
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
                )
            else:
                seen_ids.add(client_id)
        results.append(result)
    return results


def parse_message(
    item: object, index: int, *, sender_policy: Literal["error", "warn"] = "error"
) -> SubmitRequest | FieldError:
    """Validate one message; the first broken rule is returned as a FieldError."""
    prefix = f"messages[{index}]"
    if not isinstance(item, Mapping):
        return FieldError("invalid_type", prefix, "each message must be a JSON object")
    unknown = sorted(set(item) - MESSAGE_KEYS)
    if unknown:
        suggestion = _suggest(unknown[0])
        return FieldError(
            "unknown_field", f"{prefix}.{unknown[0]}", f"unknown field {unknown[0]!r}{suggestion}"
        )

    client_id = item.get("id")
    if client_id is not None and (
        not isinstance(client_id, str) or not 1 <= len(client_id) <= MAX_CLIENT_ID_LENGTH
    ):
        return FieldError(
            "invalid_value", f"{prefix}.id",
            f"'id' must be a string of 1 to {MAX_CLIENT_ID_LENGTH} characters",
        )

    to = item.get("to")
    if to is None:
        return FieldError("missing_field", f"{prefix}.to", "'to' is required")
    if not isinstance(to, str) or not _DESTINATION.fullmatch(to):
        return FieldError(
            "invalid_destination", f"{prefix}.to",
            "'to' must be 1 to 20 digits, optionally after a '+' (international format)",
        )

    warnings: list[str] = []
    sender = item.get("from", "")
    if not isinstance(sender, str):
        return FieldError("invalid_type", f"{prefix}.from", "'from' must be a string")
    if sender and not _NUMERIC_SENDER.fullmatch(sender) and not _ALPHANUMERIC_SENDER.fullmatch(
        sender
    ):
        rule = "'from' must be 3 to 11 letters and digits (A-Z a-z 0-9) or up to 20 digits"
        if sender_policy == "error" or len(sender.encode("latin-1", "replace")) > 20:
            return FieldError("invalid_sender", f"{prefix}.from", rule)
        warnings.append(f"{prefix}.from: {rule}")

    text = item.get("text")
    if text is None:
        return FieldError("missing_field", f"{prefix}.text", "'text' is required")
    if not isinstance(text, str) or not text:
        return FieldError("invalid_value", f"{prefix}.text", "'text' must be a non-empty string")
    if len(text) > MAX_TEXT_LENGTH:
        return FieldError(
            "too_many_parts", f"{prefix}.text",
            f"'text' has {len(text)} characters; more than 255 parts would be needed",
        )

    provider = item.get("provider")
    if provider is not None and not isinstance(provider, str):
        return FieldError("invalid_type", f"{prefix}.provider", "'provider' must be a string")

    flags: dict[str, bool] = {}
    for key, default in (("flash", False), ("receipt", True)):
        value = item.get(key, default)
        if not isinstance(value, bool):
            return FieldError("invalid_type", f"{prefix}.{key}", f"'{key}' must be true or false")
        flags[key] = value

    validity = item.get("validity_minutes")
    if validity is not None and (
        isinstance(validity, bool)
        or not isinstance(validity, int)
        or not 1 <= validity <= MAX_VALIDITY_MINUTES
    ):
        return FieldError(
            "invalid_value", f"{prefix}.validity_minutes",
            f"'validity_minutes' must be an integer from 1 to {MAX_VALIDITY_MINUTES}",
        )

    encoding = item.get("encoding")
    if encoding is not None and encoding not in ENCODINGS:
        return FieldError(
            "invalid_value", f"{prefix}.encoding",
            f"'encoding' must be one of {', '.join(ENCODINGS)}",
        )

    tlvs = parse_tlvs(item.get("tlvs"), f"{prefix}.tlvs")
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
        receipt=flags["receipt"],
        encoding=encoding,
        warnings=tuple(warnings),
    )


def parse_tlvs(value: object, field: str) -> tuple[tuple[int, bytes], ...] | FieldError:
    """``{"0x1401": "text"}`` (a C-string, NUL added) or ``{"0x1401": {"hex": "00ff"}}``."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        return FieldError("invalid_tlv", field, "'tlvs' must be an object of tag → value")
    result: list[tuple[int, bytes]] = []
    for key, raw_value in value.items():
        path = f"{field}.{key}"
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


def _suggest(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(MESSAGE_KEYS), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
