"""A submit request → the message smppgw will store, or the field error that refuses it.

Routing (routing.py) picks the provider; this module encodes the text by that provider's
profile, adds its TLV defaults, and checks that every part's submit_sm encodes and fits
(``sendable``), so nothing is accepted that could never be sent. The same function re-encodes
a queued message for the provider failover moves it to. Pure: values in, values out; the
service (services/submission.py) stores what this returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from smppgw.config import ProviderConfig
from smppgw.flow.outbound import build_submit_sm
from smppgw.smpp.codec import encode
from smppgw.smpp.constants import EsmClass, Tag
from smppgw.smpp.errors import EncodingError, PduEncodeError, SegmentationError
from smppgw.smpp.pdu import TLV_SPECS, tag_name
from smppgw.smpp.segment import encode_message, reference_bits
from smppgw.smpp.text import Encoding, TextPolicy

__all__ = [
    "ErrorCode",
    "FieldError",
    "PreparedMessage",
    "PreparedPart",
    "ProviderCodec",
    "SubmitRequest",
    "prepare",
    "request_choices",
    "sendable",
]

ErrorCode = Literal[
    "invalid_json",
    "invalid_xml",
    "invalid_form",
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
    """A permanent, client-side error in one message or the whole request.

    ``client_id`` is the refused message's own id when it had a valid one, so the answer for
    that message can carry it; it is not part of the error's JSON.
    """

    code: ErrorCode
    field: str
    message: str
    client_id: str | None = None

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "message": self.message}


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """One message as a door (the API, ``smppgw send``) accepted it, before routing and
    encoding."""

    index: int
    client_id: str | None
    to: str  # digits only, the leading + removed
    sender: str
    text: str
    provider: str | None = None
    flash: bool = False
    validity_minutes: int | None = None
    tlvs: tuple[tuple[int, bytes], ...] = ()
    # India's DLT template id (printable ASCII): the profile's template TLV (Qikberry 0x1401)
    # for a provider that has one, ignored by the others.
    template_id: str | None = None
    receipt: bool = True
    encoding: Encoding | None = None
    warnings: tuple[str, ...] = ()
    #: Set by a retry: the tracking id of the message this request sends again.
    retry_of: str | None = None

    @property
    def field_prefix(self) -> str:
        return f"messages[{self.index}]"


@dataclass(frozen=True, slots=True)
class ProviderCodec:
    """What encoding for one provider needs: its config and its text policy."""

    config: ProviderConfig
    policy: TextPolicy

    @classmethod
    def of(cls, config: ProviderConfig) -> ProviderCodec:
        return cls(config, TextPolicy.from_profile(config.profile,
                                                   transliterate=config.transliterate))


@dataclass(frozen=True, slots=True)
class PreparedPart:
    """One part as stored: its short_message, and its own TLVs (SAR, message_payload)."""

    short_message: bytes
    esm_class: int
    data_coding: int
    tlvs: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class PreparedMessage:
    """A message encoded for ``provider``, ready for the store. ``tlvs`` are the message's:
    the provider's defaults under the request's own."""

    provider: str
    source: str
    destination: str
    text: str
    parts: tuple[PreparedPart, ...]
    data_coding: int
    encoding: Encoding
    flash: bool
    esm_class: int
    registered_delivery: int
    tlvs: tuple[tuple[int, bytes], ...]
    valid_until_wall: float


def prepare(
    request: SubmitRequest,
    codec: ProviderCodec,
    *,
    reference: Callable[[Literal[8, 16]], int],
    valid_until_wall: float,
) -> PreparedMessage | FieldError:
    """``request`` encoded for ``codec``'s provider, or why it cannot be sent there.

    ``reference(bits)`` gives the concatenation reference of a multi-part message (called
    only for one). Errors name the request's field (``messages[3].text``) and the rule.
    """
    prefix = request.field_prefix
    provider = codec.config
    profile = provider.profile
    try:
        bits = reference_bits(profile.concat)
        encoded = encode_message(
            request.text, codec.policy, flash=request.flash, force_encoding=request.encoding,
            reference=lambda: reference(bits),
        )
    except EncodingError as exc:
        return FieldError("encoding_error", f"{prefix}.text", str(exc))
    except SegmentationError as exc:
        return FieldError("too_many_parts", f"{prefix}.text", str(exc))
    except ValueError as exc:
        field_name = f"{prefix}.encoding" if request.encoding else f"{prefix}.text"
        return FieldError("invalid_value", field_name, str(exc))
    if encoded.billed_parts > profile.max_parts:
        return FieldError(
            "too_many_parts", f"{prefix}.text",
            f"the text needs {encoded.billed_parts} parts; provider {provider.name} takes at "
            f"most {profile.max_parts} per message (max_parts)")

    own_tlvs = _with_template_id(request, provider)
    if isinstance(own_tlvs, FieldError):
        return own_tlvs
    # The provider's TLV defaults (Qikberry DLT ids) go under the message's own TLVs.
    own = dict(own_tlvs)
    tlvs = tuple((tag, raw) for tag, raw in provider.tlv_defaults if tag not in own)
    tlvs += own_tlvs
    parts = []
    for part in encoded.parts:
        part_tlvs: list[tuple[int, bytes]] = []
        if part.sar is not None:
            ref, total, seq = part.sar
            part_tlvs += [
                (Tag.SAR_MSG_REF_NUM, ref.to_bytes(2, "big")),
                (Tag.SAR_TOTAL_SEGMENTS, bytes((total,))),
                (Tag.SAR_SEGMENT_SEQNUM, bytes((seq,))),
            ]
        if part.payload:
            part_tlvs.append((Tag.MESSAGE_PAYLOAD, part.body))
        parts.append(PreparedPart(
            short_message=part.short_message,
            esm_class=encoded.esm_class if part.udh else 0,
            data_coding=encoded.data_coding,
            tlvs=tuple(part_tlvs),
        ))
    sender = request.sender
    if not sender and provider.sender_as_system_id:
        sender = provider.system_id  # Wavy: MO replies need source_addr == system_id
    message = PreparedMessage(
        provider=provider.name,
        source=sender,
        destination=request.to,
        text=request.text,
        parts=tuple(parts),
        data_coding=encoded.data_coding,
        encoding=encoded.encoding,
        flash=encoded.flash,
        esm_class=encoded.esm_class
        if len(parts) > 1 and encoded.esm_class & EsmClass.UDHI else 0,
        registered_delivery=profile.registered_delivery if request.receipt else 0,
        tlvs=tlvs,
        valid_until_wall=valid_until_wall,
    )
    problem = sendable(message, provider, prefix, has_own_tlvs=bool(own_tlvs))
    return message if problem is None else problem


def _with_template_id(
    request: SubmitRequest, provider: ProviderConfig
) -> tuple[tuple[int, bytes], ...] | FieldError:
    """The request's own TLVs with its ``template_id`` as the profile's template TLV
    (Qikberry 0x1401, a C-Octet String: seed 004 "Additional TLV"), or why the message
    cannot go to ``provider``: an id given twice, or none at all for a destination under
    India's DLT rules, where Qikberry rejects a message without one (DLT-INV-TMID) after
    accepting it (the provider's ``template_id`` or ``tlv_defaults`` can give it too)."""
    profile = provider.profile
    tag = profile.template_id_tag
    if tag is None:
        return request.tlvs
    field = f"{request.field_prefix}.template_id"
    own = {t for t, _ in request.tlvs}
    if request.template_id is not None:
        if tag in own:
            return FieldError("invalid_value", field,
                              f"set template_id or tlvs.0x{tag:04x}, not both")
        return (*request.tlvs, (tag, request.template_id.encode("ascii") + b"\0"))
    dlt = next((p for p in profile.dlt_prefixes if request.to.startswith(p)), None)
    if dlt is not None and tag not in own and provider.default_tlv(tag) is None:
        return FieldError(
            "missing_field", field,
            f"provider {provider.name} needs a DLT template id for destinations starting "
            f"{dlt} (India's DLT rules: TLV 0x{tag:04X}, Qikberry's \"Additional TLV\"): "
            "set template_id on the message, or template_id (or tlv_defaults) in the "
            "provider's table")
    return request.tlvs


# Where a field of the submit_sm comes from in the request (the API's names).
_REQUEST_FIELD: Mapping[str, tuple[ErrorCode, str]] = {
    "source_addr": ("invalid_sender", "from"),
    "destination_addr": ("invalid_destination", "to"),
    "short_message": ("invalid_value", "text"),
    "tlvs": ("invalid_tlv", "tlvs"),
    "validity_period": ("invalid_value", "validity_minutes"),
}


def request_choices(request: SubmitRequest, source: str) -> dict[str, object]:
    """What the stored message keeps of ``request`` beyond its columns, so a retry can run it
    through the accept path again (store.NewMessage.request): the sender as given when the
    provider's rule replaced it (``source``: the sender it sends), the provider it named, a
    forced encoding, its validity, its own TLVs (without the provider's defaults), its DLT
    template id and ``receipt: false``. Usually empty."""
    choices: dict[str, object] = {}
    if request.sender != source:
        choices["from"] = request.sender
    if request.provider:
        choices["provider"] = request.provider
    if request.encoding is not None:
        choices["encoding"] = request.encoding
    if request.validity_minutes is not None:
        choices["validity_minutes"] = request.validity_minutes
    if request.tlvs:
        choices["tlvs"] = [[tag, raw.hex()] for tag, raw in request.tlvs]
    if request.template_id is not None:
        choices["template_id"] = request.template_id
    if not request.receipt:
        choices["receipt"] = False
    return choices


def sendable(
    message: PreparedMessage, provider: ProviderConfig, prefix: str, *, has_own_tlvs: bool,
) -> FieldError | None:
    """Why ``message`` could never be sent to ``provider``, or None: every TLV within its
    SMPP 3.4 §5.3.2 length, then each part's submit_sm built as the dispatcher builds it,
    encoded, and no larger than the provider's ``max_pdu_octets``. ``prefix`` names the
    message in the request (``messages[3]``); ``has_own_tlvs`` says the request carried TLVs,
    the likelier cause of a PDU too large."""
    for tag, raw in message.tlvs:
        spec = TLV_SPECS.get(tag)
        if spec is not None and not spec.min_length <= len(raw) <= spec.max_length:
            return FieldError(
                "invalid_tlv", f"{prefix}.tlvs.0x{tag:04x}",
                f"{tag_name(tag)} is {spec.min_length}..{spec.max_length} octets "
                f"(SMPP 3.4 §5.3.2), got {len(raw)}")
    profile = provider.profile
    count = len(message.parts)
    for index, part in enumerate(message.parts):
        pdu = build_submit_sm(
            profile, source=message.source, destination=message.destination,
            esm_class=part.esm_class, registered_delivery=message.registered_delivery,
            valid_until_wall=message.valid_until_wall, data_coding=part.data_coding,
            short_message=part.short_message, tlvs=message.tlvs + part.tlvs)
        try:
            octets = len(encode(pdu))
        except PduEncodeError as exc:
            code, name = _REQUEST_FIELD.get(exc.field, ("invalid_value", ""))
            return FieldError(
                code, f"{prefix}.{name}" if name else prefix,
                f"the submit_sm would not encode: {exc.field} {exc.rule} (SMPP 3.4 §4.4.1)")
        if octets > profile.max_pdu_octets:
            return FieldError(
                "invalid_tlv" if has_own_tlvs else "invalid_value",
                f"{prefix}.tlvs" if has_own_tlvs else f"{prefix}.text",
                f"part {index + 1} of {count} makes a {octets}-octet submit_sm; provider "
                f"{provider.name} takes at most {profile.max_pdu_octets} (max_pdu_octets)")
    return None
