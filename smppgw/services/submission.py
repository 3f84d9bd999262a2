"""Accepting messages: validated request → route → encode by the provider's profile → store.

The API (both endpoints) and ``smppgw send`` all come through ``SubmitService.submit``, so a
message is routed, encoded and made durable the same way whatever door it used. "Accepted"
is answered only after the store has committed and fsynced the message.

Nothing is accepted that could never be sent: each part's submit_sm is built as the
dispatcher will build it and encoded (``sendable``), so a field our encoder refuses, a TLV
outside its SMPP 3.4 length or a PDU larger than the provider takes (``max_pdu_octets``) is
refused here, naming the field and the rule, rather than failing or looping at send time.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from smppgw.api.schemas import ErrorCode, FieldError, SubmitRequest
from smppgw.config import Config, ProviderConfig
from smppgw.flow.routing import NoRouteError, RouteProvider, Router
from smppgw.services.dispatcher import build_submit_sm
from smppgw.smpp.codec import encode
from smppgw.smpp.constants import EsmClass, Tag
from smppgw.smpp.errors import EncodingError, PduEncodeError, SegmentationError
from smppgw.smpp.pdu import TLV_SPECS, tag_name
from smppgw.smpp.segment import ReferenceAllocator, encode_message, reference_bits
from smppgw.smpp.text import TextPolicy
from smppgw.store import NewMessage, NewSegment, Store
from smppgw.store.encoding import new_tracking_id


@dataclass(frozen=True, slots=True)
class SubmitAnswer:
    """The answer for one message, in the shape of DESIGN.md's local API."""

    client_id: str | None
    tracking_id: str | None
    accepted: bool
    segments: int = 0
    data_coding: int | None = None
    provider: str | None = None
    transient: bool = False
    error: FieldError | None = None
    duplicate: bool = False
    warnings: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        answer: dict[str, object] = {"id": self.client_id}
        if self.accepted:
            answer.update(
                tracking_id=self.tracking_id, accepted=True, segments=self.segments,
                data_coding=self.data_coding, provider=self.provider,
            )
            if self.duplicate:
                answer["duplicate"] = True
        else:
            answer.update(accepted=False, transient=self.transient)
            if self.tracking_id is not None:
                answer["tracking_id"] = self.tracking_id
            if self.error is not None:
                answer["error"] = self.error.as_json()
        if self.warnings:
            answer["warnings"] = list(self.warnings)
        return answer


@dataclass(slots=True)
class _ProviderCodec:
    config: ProviderConfig
    policy: TextPolicy


@dataclass
class SubmitService:
    """Routes, encodes and durably accepts messages. One per daemon (no global state).

    ``down_since`` reports, per provider, since when (monotonic) it has had no bound bind;
    the router uses it for failover. ``on_accepted`` is told which providers got new work
    so their dispatchers wake at once instead of at their next poll.
    """

    config: Config
    store: Store
    down_since: Callable[[], Mapping[str, float]] = dict
    on_accepted: Callable[[set[str]], None] = lambda providers: None
    wall_clock: Callable[[], float] = time.time
    _codecs: dict[str, _ProviderCodec] = field(init=False, default_factory=dict)
    _router: Router = field(init=False)
    _references: ReferenceAllocator = field(init=False)

    def __post_init__(self) -> None:
        self.reload(self.config)
        # A random start per destination: after a restart, a new long message to the same
        # handset is unlikely to reuse the reference of one still being reassembled there.
        rng = secrets.SystemRandom()
        self._references = ReferenceAllocator(start=lambda destination: rng.randrange(65536))

    def reload(self, config: Config) -> None:
        self.config = config
        self._codecs = {
            p.name: _ProviderCodec(
                p, TextPolicy.from_profile(p.profile, transliterate=p.transliterate)
            )
            for p in config.providers
        }
        self._router = Router.build(
            (RouteProvider(p.name, p.routes, p.failover, p.failover_after)
             for p in config.providers),
            config.gateway.default_provider,
        )

    async def submit(self, requests: Sequence[SubmitRequest | FieldError]) -> list[SubmitAnswer]:
        """One answer per item, in order. FieldErrors pass through as permanent refusals."""
        answers: list[SubmitAnswer | None] = [None] * len(requests)
        batch: list[NewMessage] = []
        batch_index: list[int] = []
        now = asyncio.get_running_loop().time()
        down = self.down_since()
        for index, request in enumerate(requests):
            if isinstance(request, FieldError):
                answers[index] = SubmitAnswer(None, None, False, error=request)
                continue
            built = self._build(request, down, now)
            if isinstance(built, SubmitAnswer):
                answers[index] = built
            else:
                batch.append(built)
                batch_index.append(index)
        if batch:
            results = await self.store.accept_messages(batch)
            woken: set[str] = set()
            for index, message, result in zip(batch_index, batch, results, strict=True):
                request = requests[index]
                assert isinstance(request, SubmitRequest)
                if result.error is not None:
                    answers[index] = SubmitAnswer(
                        request.client_id, None, False, transient=True,
                        error=FieldError("invalid_request", request.field_prefix, result.error),
                    )
                    continue
                stored = dict(result.answer)
                answers[index] = SubmitAnswer(
                    request.client_id,
                    result.tracking_id,
                    bool(stored.get("accepted", True)),
                    segments=int(stored.get("segments", len(message.segments))),  # type: ignore[call-overload]
                    data_coding=stored.get("data_coding", message.data_coding),  # type: ignore[arg-type]
                    provider=str(stored.get("provider", message.provider)),
                    duplicate=result.duplicate,
                    warnings=request.warnings,
                )
                if not result.duplicate:
                    woken.add(message.provider)
            if woken:
                self.on_accepted(woken)
        return [a for a in answers if a is not None]

    def _build(
        self, request: SubmitRequest, down: Mapping[str, float], now: float
    ) -> NewMessage | SubmitAnswer:
        prefix = request.field_prefix
        try:
            provider_name = self._router.route(request.to, request.provider,
                                               down_since=down, now=now)
        except NoRouteError as exc:
            if request.provider:
                error = FieldError("unknown_provider", f"{prefix}.provider", exc.detail)
            else:
                error = FieldError("no_route", f"{prefix}.to", exc.detail)
            return self._refuse(request, error)
        codec = self._codecs[provider_name]
        profile = codec.config.profile
        try:
            bits = reference_bits(profile.concat)
            encoded = encode_message(
                request.text, codec.policy, flash=request.flash,
                force_encoding=request.encoding,
                reference=lambda: self._references.next(request.to, bits=bits),
            )
        except EncodingError as exc:
            return self._refuse(request, FieldError("encoding_error", f"{prefix}.text", str(exc)))
        except SegmentationError as exc:
            return self._refuse(request, FieldError("too_many_parts", f"{prefix}.text", str(exc)))
        except ValueError as exc:
            field_name = f"{prefix}.encoding" if request.encoding else f"{prefix}.text"
            return self._refuse(request, FieldError("invalid_value", field_name, str(exc)))

        # The provider's TLV defaults (Qikberry DLT ids) go under the message's own TLVs.
        own = dict(request.tlvs)
        tlvs = tuple((tag, raw) for tag, raw in codec.config.tlv_defaults if tag not in own)
        tlvs += request.tlvs
        segments = []
        for part in encoded.parts:
            part_tlvs: list[tuple[int, bytes]] = []
            if part.sar is not None:
                reference, total, seq = part.sar
                part_tlvs += [
                    (Tag.SAR_MSG_REF_NUM, reference.to_bytes(2, "big")),
                    (Tag.SAR_TOTAL_SEGMENTS, bytes((total,))),
                    (Tag.SAR_SEGMENT_SEQNUM, bytes((seq,))),
                ]
            if part.payload:
                part_tlvs.append((Tag.MESSAGE_PAYLOAD, part.body))
            segments.append(
                NewSegment(
                    short_message=part.short_message,
                    esm_class=encoded.esm_class if part.udh else 0,
                    data_coding=encoded.data_coding,
                    tlvs=tuple(part_tlvs),
                )
            )
        sender = request.sender
        if not sender and codec.config.sender_as_system_id:
            sender = codec.config.system_id  # Wavy: MO replies need source_addr == system_id
        validity = request.validity_minutes or profile.validity_minutes
        tracking_id = new_tracking_id(self.wall_clock())
        answer = {
            "tracking_id": tracking_id, "accepted": True, "segments": len(segments),
            "data_coding": encoded.data_coding, "provider": provider_name,
        }
        message = NewMessage(
            tracking_id=tracking_id,
            provider=provider_name,
            source=sender,
            destination=request.to,
            text=request.text,
            segments=tuple(segments),
            client_id=request.client_id,
            data_coding=encoded.data_coding,
            encoding=encoded.encoding,
            flash=encoded.flash,
            esm_class=encoded.esm_class if len(segments) > 1 and encoded.esm_class & EsmClass.UDHI
            else 0,
            registered_delivery=profile.registered_delivery if request.receipt else 0,
            tlvs=tlvs,
            valid_until_wall=self.wall_clock() + validity * 60,
            answer=answer,
        )
        problem = sendable(message, codec.config, prefix, has_own_tlvs=bool(request.tlvs))
        return message if problem is None else self._refuse(request, problem)

    @staticmethod
    def _refuse(request: SubmitRequest, error: FieldError) -> SubmitAnswer:
        return SubmitAnswer(request.client_id, None, False, error=error)


# Where a field of the submit_sm comes from in the request (the API's names).
_REQUEST_FIELD: Mapping[str, tuple[ErrorCode, str]] = {
    "source_addr": ("invalid_sender", "from"),
    "destination_addr": ("invalid_destination", "to"),
    "short_message": ("invalid_value", "text"),
    "tlvs": ("invalid_tlv", "tlvs"),
    "validity_period": ("invalid_value", "validity_minutes"),
}


def sendable(
    message: NewMessage, provider: ProviderConfig, prefix: str, *, has_own_tlvs: bool,
) -> FieldError | None:
    """Why ``message`` could never be sent to ``provider``, or None. Pure: every TLV within
    its SMPP 3.4 §5.3.2 length, then each part's submit_sm built as the dispatcher builds it,
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
    parts = len(message.segments)
    for index, segment in enumerate(message.segments):
        pdu = build_submit_sm(
            profile, source=message.source, destination=message.destination,
            esm_class=segment.esm_class,
            registered_delivery=message.registered_delivery,
            valid_until_wall=message.valid_until_wall, data_coding=segment.data_coding,
            short_message=segment.short_message, tlvs=message.tlvs + segment.tlvs)
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
                f"part {index + 1} of {parts} makes a {octets}-octet submit_sm; provider "
                f"{provider.name} takes at most {profile.max_pdu_octets} (max_pdu_octets)")
    return None
