"""Wiraya's EnqueueCommunications schema translated to and from our own submit commands.

Apps written for Wiraya's REST API (shared/seeds/002) keep working: ``communications`` become
the same SubmitRequests ``POST /v1/messages`` produces, and answers go back in Wiraya's shape
(``results`` keyed by clientMessageId with trackingId, success, isTransientError).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from smppgw.api.schemas import (
    MAX_MESSAGES_PER_REQUEST,
    FieldError,
    RequestError,
    SubmitRequest,
    parse_message,
)

TEMPLATE_TYPES = frozenset({"SMSProject", "WhatsappProject"})


def parse_enqueue_body(
    body: object, *, sender_policy: Literal["error", "warn"] = "error"
) -> list[tuple[str, SubmitRequest | FieldError]]:
    """(clientMessageId, request or error) per communication, in request order."""
    if not isinstance(body, Mapping):
        raise RequestError(FieldError("invalid_request", "", "the body must be a JSON object"))
    communications = body.get("communications")
    if not isinstance(communications, list) or not communications:
        raise RequestError(
            FieldError(
                "missing_field", "communications", "'communications' must be a non-empty list"
            )
        )
    if len(communications) > MAX_MESSAGES_PER_REQUEST:
        raise RequestError(
            FieldError(
                "invalid_request", "communications",
                f"at most {MAX_MESSAGES_PER_REQUEST} communications per request",
            )
        )
    results: list[tuple[str, SubmitRequest | FieldError]] = []
    seen: set[str] = set()
    for index, item in enumerate(communications):
        prefix = f"communications[{index}]"
        client_id = item.get("clientMessageId") if isinstance(item, Mapping) else None
        if not isinstance(client_id, str) or not client_id:
            # Wiraya keys answers by clientMessageId; without one there is nothing to key by.
            raise RequestError(
                FieldError(
                    "missing_field", f"{prefix}.clientMessageId",
                    "'clientMessageId' is required and must be a non-empty string",
                )
            )
        if client_id in seen:
            raise RequestError(
                FieldError(
                    "duplicate_id", f"{prefix}.clientMessageId",
                    f"clientMessageId {client_id!r} appears twice in this request",
                )
            )
        seen.add(client_id)
        results.append((client_id, _translate(item, index, prefix, sender_policy)))
    return results


def _translate(
    item: Mapping[str, object], index: int, prefix: str, sender_policy: Literal["error", "warn"]
) -> SubmitRequest | FieldError:
    content = item.get("content")
    if not isinstance(content, Mapping):
        return FieldError("missing_field", f"{prefix}.content", "'content' must be an object")
    content_type = content.get("$type")
    if content_type in TEMPLATE_TYPES:
        return FieldError(
            "invalid_value", f"{prefix}.content.$type",
            f"{content_type} templates are not supported by this gateway; use SMSFromAlpha",
        )
    if content_type != "SMSFromAlpha":
        return FieldError(
            "invalid_value", f"{prefix}.content.$type", "'$type' must be 'SMSFromAlpha'"
        )
    sender = content.get("sender", "")
    if isinstance(sender, str) and len(sender) > 11:
        return FieldError(
            "invalid_sender", f"{prefix}.content.sender", "'sender' is at most 11 characters"
        )
    message = {
        "id": item.get("clientMessageId"),
        "to": item.get("recipient"),
        "from": sender,
        "text": content.get("text"),
    }
    result = parse_message(message, index, sender_policy=sender_policy)
    if isinstance(result, FieldError):
        # Point at Wiraya's field names, not ours.
        renamed = (
            result.field.replace(f"messages[{index}]", prefix)
            .replace(".to", ".recipient")
            .replace(".from", ".content.sender")
            .replace(".text", ".content.text")
        )
        return FieldError(result.code, renamed, result.message.replace("'to'", "'recipient'"))
    return result


def wiraya_result(tracking_id: str | None, success: bool, transient: bool,
                  error: FieldError | None = None) -> dict[str, object]:
    """One entry of Wiraya's ``results`` object."""
    entry: dict[str, object] = {
        "trackingId": tracking_id,
        "success": success,
        "isTransientError": transient,
    }
    if error is not None:
        entry["error"] = error.as_json()
    return entry
