"""Wiraya's EnqueueCommunications schema translated to and from our own submit commands.

Apps written for Wiraya's REST API (shared/seeds/002) keep working: ``communications`` become
the same SubmitRequests ``POST /v1/messages`` produces, and answers go back in Wiraya's shape
(``results`` keyed by clientMessageId with trackingId, success, isTransientError). Every error
names Wiraya's field (``communications[2].recipient``), never ours. Pure: the document comes
in already read from JSON, XML or a form (wiraya_formats.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, Literal

from smppgw.api.schemas import (
    MAX_MESSAGES_PER_REQUEST,
    Naming,
    RequestError,
    lone_surrogate_error,
    parse_message,
)
from smppgw.flow.submission import FieldError, SubmitRequest
from smppgw.services.submission import SubmitAnswer

__all__ = ["TEMPLATE_TYPES", "WIRAYA", "enqueue_results", "parse_enqueue_body"]

#: Where Wiraya keeps each of our message fields, under ``communications[i]``.
WIRAYA: Final = Naming("communications", {
    "id": "clientMessageId", "to": "recipient", "from": "content.sender",
    "text": "content.text", "template_id": "content.dltTemplateId",
})
#: Wiraya's template content types (seed 002): they need Wiraya's pre-approved projects.
TEMPLATE_TYPES: Final = frozenset({"SMSProject", "WhatsappProject", "VoiceProject"})
_TEXT_TYPE: Final = "SMSFromAlpha"
# Seed 002: "sender (string, max length 11)".
_MAX_SENDER: Final = 11


def parse_enqueue_body(
    body: object, *, sender_policy: Literal["error", "warn"] = "error"
) -> list[tuple[str, SubmitRequest | FieldError]]:
    """(clientMessageId, request or error) per communication, in request order.

    Raises RequestError when the request as a whole is unusable: no ``communications`` list,
    or a communication without a usable clientMessageId (Wiraya keys its answers by it, so
    such a communication could not be answered). Fields Wiraya does not define are ignored,
    as Wiraya's API ignores them.
    """
    if not isinstance(body, Mapping):
        raise RequestError(FieldError(
            "invalid_request", "", 'the body must be an object: {"communications": [...]}'))
    if "communications" not in body:
        raise RequestError(FieldError(
            "missing_field", "communications",
            "'communications' is required: a list of communications"))
    communications = body["communications"]
    if not isinstance(communications, list):
        raise RequestError(FieldError(
            "invalid_type", "communications", "'communications' must be a list"))
    if not 1 <= len(communications) <= MAX_MESSAGES_PER_REQUEST:
        raise RequestError(FieldError(
            "invalid_request", "communications",
            f"'communications' must hold 1 to {MAX_MESSAGES_PER_REQUEST} communications, "
            f"got {len(communications)}"))
    results: list[tuple[str, SubmitRequest | FieldError]] = []
    seen: set[str] = set()
    for index, item in enumerate(communications):
        communication, client_id = _communication(item, index)
        if client_id in seen:
            raise RequestError(FieldError(
                "duplicate_id", WIRAYA.path(index, "id"),
                f"clientMessageId {client_id!r} appears twice in this request"))
        seen.add(client_id)
        results.append((client_id, _translate(communication, index, sender_policy)))
    return results


def _communication(item: object, index: int) -> tuple[Mapping[str, object], str]:
    """The communication and its clientMessageId, or the RequestError that refuses them."""
    prefix = WIRAYA.prefix(index)
    if not isinstance(item, Mapping):
        raise RequestError(FieldError(
            "invalid_type", prefix, "each communication must be an object"))
    path = WIRAYA.path(index, "id")
    client_id = item.get("clientMessageId")
    if client_id is None:
        raise RequestError(FieldError(
            "missing_field", path,
            "'clientMessageId' is required: each answer is keyed by it"))
    if not isinstance(client_id, str):
        raise RequestError(FieldError("invalid_type", path, "'clientMessageId' must be a string"))
    if not client_id:
        raise RequestError(FieldError(
            "invalid_value", path, "'clientMessageId' must not be empty"))
    surrogate = lone_surrogate_error(client_id, path, "clientMessageId")
    if surrogate is not None:
        raise RequestError(surrogate)
    return item, client_id


def _translate(
    item: Mapping[str, object], index: int, sender_policy: Literal["error", "warn"],
) -> SubmitRequest | FieldError:
    prefix = WIRAYA.prefix(index)
    content = item.get("content")
    if content is None:
        return FieldError("missing_field", f"{prefix}.content",
                          "'content' is required: an object with '$type'")
    if not isinstance(content, Mapping):
        return FieldError("invalid_type", f"{prefix}.content", "'content' must be an object")

    type_path = f"{prefix}.content.$type"
    content_type = content.get("$type")
    if content_type is None:
        return FieldError("missing_field", type_path,
                          f"'$type' is required; this gateway sends '{_TEXT_TYPE}'")
    if not isinstance(content_type, str):
        return FieldError("invalid_type", type_path, "'$type' must be a string")
    if content_type in TEMPLATE_TYPES:
        return FieldError(
            "invalid_value", type_path,
            f"{content_type} templates are not supported by this gateway; use {_TEXT_TYPE}",
        )
    if content_type != _TEXT_TYPE:
        return FieldError(
            "invalid_value", type_path,
            f"'$type' must be '{_TEXT_TYPE}' (the templates {', '.join(sorted(TEMPLATE_TYPES))}"
            " are not supported)",
        )

    sender_path = WIRAYA.path(index, "from")
    sender = content.get("sender")
    if sender is None:
        return FieldError("missing_field", sender_path,
                          f"'sender' is required for {_TEXT_TYPE}")
    if not isinstance(sender, str):
        return FieldError("invalid_type", sender_path, "'sender' must be a string")
    if not sender:
        return FieldError("invalid_sender", sender_path, "'sender' must not be empty")
    if len(sender) > _MAX_SENDER:
        return FieldError("invalid_sender", sender_path,
                          f"'sender' is at most {_MAX_SENDER} characters")
    message = {
        "id": item["clientMessageId"],
        "to": item.get("recipient"),
        "from": sender,
        "text": content.get("text"),
    }
    # Ours, not Wiraya's: India's DLT template id of the text (Qikberry's TLV 0x1401).
    if content.get("dltTemplateId") is not None:
        message["template_id"] = content["dltTemplateId"]
    return parse_message(message, index, sender_policy=sender_policy, naming=WIRAYA)


def enqueue_results(
    pairs: Sequence[tuple[str, SubmitRequest | FieldError]], answers: Sequence[SubmitAnswer],
) -> dict[str, dict[str, object]]:
    """Wiraya's ``results`` object: per clientMessageId, in request order, ``trackingId``,
    ``success`` and ``isTransientError``, plus our ``error`` (in Wiraya's field names) when
    the communication was refused."""
    results: dict[str, dict[str, object]] = {}
    for index, ((client_id, _), answer) in enumerate(zip(pairs, answers, strict=True)):
        entry: dict[str, object] = {
            "trackingId": answer.tracking_id,
            "success": answer.accepted,
            "isTransientError": answer.transient,
        }
        if answer.error is not None:
            entry["error"] = _in_wiraya_names(answer.error, index).as_json()
        results[client_id] = entry
    return results


def _in_wiraya_names(error: FieldError, index: int) -> FieldError:
    """An error raised on the submit path (routing, encoding: ``messages[3].to``) renamed to
    the field Wiraya's client sent (``communications[3].recipient``)."""
    ours = f"messages[{index}]"
    if not error.field.startswith(ours):
        return error
    rest = error.field[len(ours):]
    if rest.startswith("."):
        key, dot, tail = rest[1:].partition(".")
        return FieldError(error.code, WIRAYA.path(index, key) + dot + tail, error.message)
    return FieldError(error.code, WIRAYA.prefix(index) + rest, error.message)
