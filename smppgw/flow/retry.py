"""A finished message sent again: which states may be, and the request that does it.

A retry is the old message's request run through the accept path once more (routed, encoded
and checked again, so a changed route or profile applies), as a new message linked to the old
one. The request is rebuilt from what the store kept: the columns (text, number, flash) and the
request's own choices (store.NewMessage.request: a sender the provider replaced, a named
provider, a forced encoding, the validity, its own TLVs, ``receipt: false``). A message stored
before the choices were kept is rebuilt as failover rebuilds a queued one
(failover.resubmission) when its provider is still configured, else from its columns.

Pure: values in, a request out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

from smppgw.config import ProviderConfig
from smppgw.flow.failover import resubmission
from smppgw.flow.submission import FieldError, SubmitRequest
from smppgw.smpp.text import ENCODINGS

__all__ = ["RETRYABLE", "RetryLike", "refusal_field", "retry_request"]

#: The states a message is sent again from: the SMSC refused it, the handset never got it, or
#: it ran out of time (store.RETRYABLE_STATES). Not a rejected one (the network refuses it
#: again), a cancelled one (stopped on purpose) nor an unknown one (the SMSC took it: it may
#: well have arrived, and would arrive twice).
RETRYABLE: Final = frozenset({"failed", "undeliverable", "expired"})


class RetryLike(Protocol):
    """A stored message as the store's view gives it (store.MessageView has these)."""

    @property
    def tracking_id(self) -> str: ...
    @property
    def client_id(self) -> str | None: ...
    @property
    def source(self) -> str: ...
    @property
    def destination(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def flash(self) -> bool: ...
    @property
    def encoding(self) -> str: ...
    @property
    def registered_delivery(self) -> int: ...
    @property
    def tlvs(self) -> tuple[tuple[int, bytes], ...]: ...
    @property
    def created_wall(self) -> float: ...
    @property
    def valid_until_wall(self) -> float | None: ...
    @property
    def request(self) -> Mapping[str, object] | None: ...


def retry_request(
    message: RetryLike, old: ProviderConfig | None, provider: str | None = None,
) -> SubmitRequest:
    """The request that sends ``message`` again, carrying its client id (which moves to the
    new message) and ``retry_of``. ``old``: the config of the provider it went to (None when
    it is gone), for a message stored without its request's choices. ``provider`` names the
    provider to use instead of the route (or of the one the request named)."""
    choices = message.request
    if choices is None:
        span = None
        if message.valid_until_wall is not None:
            span = max(1, round((message.valid_until_wall - message.created_wall) / 60))
        if old is not None:
            rebuilt = resubmission(message, old)
        else:
            rebuilt = SubmitRequest(
                index=0, client_id=message.client_id, to=message.destination,
                sender=message.source, text=message.text, flash=message.flash,
                tlvs=message.tlvs, receipt=message.registered_delivery != 0)
        return SubmitRequest(
            index=0, client_id=rebuilt.client_id, to=rebuilt.to, sender=rebuilt.sender,
            text=rebuilt.text, provider=provider, flash=rebuilt.flash,
            validity_minutes=span, tlvs=rebuilt.tlvs, template_id=rebuilt.template_id,
            receipt=rebuilt.receipt, encoding=rebuilt.encoding, retry_of=message.tracking_id)
    tlvs = choices.get("tlvs", [])
    encoding = choices.get("encoding")
    validity = choices.get("validity_minutes")
    named = choices.get("provider")
    template_id = choices.get("template_id")
    return SubmitRequest(
        index=0, client_id=message.client_id, to=message.destination,
        sender=str(choices.get("from", message.source)), text=message.text,
        provider=provider or (named if isinstance(named, str) else None),
        flash=message.flash,
        validity_minutes=validity if isinstance(validity, int) else None,
        tlvs=tuple((int(tag), bytes.fromhex(raw)) for tag, raw in
                   (tlvs if isinstance(tlvs, list) else [])),
        template_id=template_id if isinstance(template_id, str) else None,
        receipt=choices.get("receipt", True) is not False,
        encoding=encoding if encoding in ENCODINGS else None,
        retry_of=message.tracking_id)


def refusal_field(error: FieldError) -> str:
    """A field error of the accept path named by the message's own field (``to``), not by its
    place in a request (``messages[0].to``): a retry has no request body of that shape."""
    prefix, dot, rest = error.field.partition(".")
    return rest if dot and prefix.startswith("messages[") else error.field
