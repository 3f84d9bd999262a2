"""Codec speed: smppgw against smpplib and aiosmpplib, measured in the same run.

Operations on the per-PDU hot path:
  (a) encode a submit_sm with a 160-character GSM text and 2 TLVs
  (b) decode a submit_sm_resp and read its message_id
  (c) decode a deliver_sm carrying a receipt and read its receipted_message_id and
      message_state TLVs (what the receipt path needs first)
  (d) parse a Wavy receipt already decoded: Appendix B text, receipt TLVs, vendor TLVs
      (smpplib has no receipt parser; aiosmpplib's reads the text only)
Each library works from the same input bytes/values; every decoded result is checked against
the expected field values first, so a library that silently drops work cannot look fast.
The libraries are timed in alternating batches, so a load change on a shared machine moves
every column alike. Prints µs per operation and the ratios, then ends with two lines:
``smppgw µs: encode E, decode_resp D, decode_receipt R`` and ``min speedup vs smpplib: N.Nx``
(over (a)-(c), the operations smpplib has).

Usage: python benchmarks/codec.py [--seconds 0.5]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

from smppgw.smpp import codec
from smppgw.smpp.constants import MessageState, Tag, VendorTag
from smppgw.smpp.pdu import DeliverSm, SubmitSm, SubmitSmResp, Tlv
from smppgw.smpp.receipt import ReceiptOutcome, parse_receipt

TEXT = ("Hello from smppgw! Your code is 482913. " * 4)[:160]
assert len(TEXT) == 160
RECEIPT_TEXT = (
    b"id:7f3c2a10-5b1e-4c1a-9d7e-0b9a6e1c2d3f sub:001 dlvrd:001 submit date:2411231200 "
    b"done date:2411231201 stat:DELIVRD err:000 text:Hello from smppgw"
)
RECEIPT_ID = "7f3c2a10-5b1e-4c1a-9d7e-0b9a6e1c2d3f"

Op = Callable[[], object]
Ops = dict[str, Op]

ENCODE = "encode submit_sm"
DECODE_RESP = "decode submit_sm_resp"
DECODE_RECEIPT = "decode deliver_sm receipt"
PARSE_RECEIPT = "parse receipt (wavy)"


def calibrate(fn: Op, seconds: float) -> int:
    """Calls per batch so that one batch takes about ``seconds`` (bounded by 2**24)."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed > seconds / 4 or calls >= 1 << 24:
            break
        calls *= 2
    return max(1, int(calls * seconds / max(elapsed, 1e-9)))


def interleaved(fns: dict[str, Op], seconds: float, repeats: int = 5) -> dict[str, float]:
    """µs per call of each function: the median of ``repeats`` batches, the functions' batches
    taken in turn, so that load on a shared machine falls on all of them alike."""
    sizes = {name: calibrate(fn, seconds / repeats / len(fns)) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    gc.disable()
    try:
        for _ in range(repeats):
            for name, fn in fns.items():
                calls = sizes[name]
                start = time.perf_counter()
                for _ in range(calls):
                    fn()
                samples[name].append((time.perf_counter() - start) / calls * 1e6)
    finally:
        gc.enable()
    return {name: statistics.median(values) for name, values in samples.items()}


def build_inputs() -> tuple[SubmitSm, bytes, bytes, bytes]:
    """The submit_sm to encode; the octets of a submit_sm_resp, a receipt, a Wavy receipt."""
    submit = SubmitSm(
        sequence_number=7,
        source_addr_ton=5,
        source_addr="Acme",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="5511999999999",
        registered_delivery=1,
        short_message=TEXT.encode("ascii"),
        tlvs=(Tlv.of(Tag.USER_MESSAGE_REFERENCE, 12), Tlv.of(Tag.SOURCE_PORT, 9)),
    )
    resp = codec.encode(SubmitSmResp(sequence_number=7, message_id=RECEIPT_ID))
    receipt_fields = {
        "sequence_number": 9,
        "source_addr_ton": 1,
        "source_addr_npi": 1,
        "source_addr": "5511999999999",
        "destination_addr": "Acme",
        "esm_class": 0x04,
        "short_message": RECEIPT_TEXT,
    }
    receipt_tlvs = (Tlv.of(Tag.RECEIPTED_MESSAGE_ID, RECEIPT_ID), Tlv.of(Tag.MESSAGE_STATE, 2))
    receipt = codec.encode(DeliverSm(**receipt_fields, tlvs=receipt_tlvs))  # type: ignore[arg-type]
    # Wavy (PROVIDERS.md): both stages' status codes and words as vendor TLVs 0x1403-0x1406.
    wavy_tlvs = (
        *receipt_tlvs,
        Tlv(VendorTag.WAVY_SENT_STATUS_CODE, (2).to_bytes(2, "big")),
        Tlv(VendorTag.WAVY_SENT_STATUS, b"SENT_SUCCESS\0"),
        Tlv(VendorTag.WAVY_DELIVERED_STATUS_CODE, (4).to_bytes(2, "big")),
        Tlv(VendorTag.WAVY_DELIVERED_STATUS, b"DELIVERED_SUCCESS\0"),
    )
    wavy = codec.encode(DeliverSm(**receipt_fields, tlvs=wavy_tlvs))  # type: ignore[arg-type]
    return submit, resp, receipt, wavy


def smppgw_ops(submit: SubmitSm, resp: bytes, receipt: bytes, wavy: bytes) -> Ops:
    decode = codec.decode
    encode = codec.encode
    assert decode(encode(submit)) == submit

    def decode_resp() -> object:
        return decode(resp).message_id  # type: ignore[attr-defined]

    def decode_receipt() -> object:
        tlv = decode(receipt).tlv
        return tlv(Tag.RECEIPTED_MESSAGE_ID).value, tlv(Tag.MESSAGE_STATE).value  # type: ignore[union-attr]

    assert decode_resp() == RECEIPT_ID
    assert decode_receipt() == (RECEIPT_ID, MessageState.DELIVERED)
    wavy_pdu = decode(wavy)
    assert isinstance(wavy_pdu, DeliverSm)
    parsed = parse_receipt(wavy_pdu, "wavy")
    assert parsed.message_id == RECEIPT_ID and parsed.outcome is ReceiptOutcome.DELIVERED
    assert parsed.vendor["delivered_status"] == "DELIVERED_SUCCESS"
    return {
        ENCODE: lambda: encode(submit),
        DECODE_RESP: decode_resp,
        DECODE_RECEIPT: decode_receipt,
        PARSE_RECEIPT: lambda: parse_receipt(wavy_pdu, "wavy"),
    }


def smpplib_ops(submit_bytes: bytes, resp: bytes, receipt: bytes) -> Ops:
    import smpplib.command as command
    import smpplib.smpp as smpp

    class Client:  # smpplib takes sequence numbers from a client, even when parsing
        sequence = 7

        def next_sequence(self) -> int:
            return 0

    client = Client()

    def encode() -> bytes:
        pdu = command.SubmitSM(
            "submit_sm",
            client=client,
            sequence=7,
            source_addr_ton=5,
            source_addr="Acme",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="5511999999999",
            registered_delivery=1,
            short_message=TEXT.encode("ascii"),
            user_message_reference=12,
            source_port=9,
        )
        return pdu.generate()  # type: ignore[no-any-return]

    def decode_resp() -> object:
        return smpp.parse_pdu(resp, client=client).message_id

    def decode_receipt() -> object:
        pdu = smpp.parse_pdu(receipt, client=client)
        return pdu.receipted_message_id, pdu.message_state

    assert encode() == submit_bytes, "smpplib encodes different bytes"
    assert decode_resp() == RECEIPT_ID.encode()
    assert decode_receipt() == (RECEIPT_ID.encode(), MessageState.DELIVERED)
    return {ENCODE: encode, DECODE_RESP: decode_resp, DECODE_RECEIPT: decode_receipt}


def aiosmpplib_ops(submit_bytes: bytes, resp: bytes, receipt: bytes, wavy: bytes) -> Ops:
    from aiosmpplib import protocol, state

    def encode() -> bytes:
        pdu = protocol.SubmitSm(
            sequence_num=7,
            short_message=TEXT,
            source=state.PhoneNumber("Acme", ton=state.TON.ALPHANUMERIC, npi=state.NPI.UNKNOWN),
            destination=state.PhoneNumber(
                "5511999999999", ton=state.TON.INTERNATIONAL, npi=state.NPI.ISDN
            ),
            registered_delivery=1,
            optional_params=[
                state.OptionalParam(state.USER_MESSAGE_REFERENCE, 12),
                state.OptionalParam(state.SOURCE_PORT, 9),
            ],
        )
        return pdu.pdu()

    produced = encode()
    if produced != submit_bytes:
        raise AssertionError(f"aiosmpplib encodes different bytes: {produced.hex()}")

    def decode(data: bytes) -> object:
        header = protocol.SmppMessage.parse_header(data)
        cls = {
            state.SmppCommand.SUBMIT_SM_RESP: protocol.SubmitSmResp,
            state.SmppCommand.DELIVER_SM: protocol.DeliverSm,
        }[header.smpp_command]
        return cls.from_pdu(data, header, "gsm0338")

    def decode_resp() -> object:
        return decode(resp).message_id  # type: ignore[attr-defined]

    def decode_receipt() -> object:
        params = {p.tag: p.value for p in decode(receipt).optional_params}  # type: ignore[attr-defined]
        return params[state.RECEIPTED_MESSAGE_ID], params[state.MESSAGE_STATE]

    wavy_pdu = decode(wavy)

    def parse() -> object:
        wavy_pdu._parsed_receipt = None  # type: ignore[attr-defined]  # it caches the result
        return wavy_pdu.parse_receipt()  # type: ignore[attr-defined]

    assert decode_resp() == RECEIPT_ID
    assert decode_receipt()[0] == RECEIPT_ID
    assert parse()["id"] == RECEIPT_ID  # type: ignore[index]
    return {
        ENCODE: encode,
        DECODE_RESP: decode_resp,
        DECODE_RECEIPT: decode_receipt,
        PARSE_RECEIPT: parse,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="time per operation")
    args = parser.parse_args()

    submit, resp, receipt, wavy = build_inputs()
    submit_bytes = codec.encode(submit)
    libraries = {
        "smppgw": smppgw_ops(submit, resp, receipt, wavy),
        "smpplib": smpplib_ops(submit_bytes, resp, receipt),
        "aiosmpplib": aiosmpplib_ops(submit_bytes, resp, receipt, wavy),
    }
    results: dict[str, dict[str, float]] = {library: {} for library in libraries}
    for op in libraries["smppgw"]:
        fns = {library: ops[op] for library, ops in libraries.items() if op in ops}
        for library, micros in interleaved(fns, args.seconds).items():
            results[library][op] = micros

    def cell(library: str, op: str, width: int) -> str:
        value = results[library].get(op)
        return f"{'n/a':>{width}}" if value is None else f"{value:>{width}.2f}"

    def ratio(library: str, op: str, width: int) -> str:
        value = results[library].get(op)
        ours = results["smppgw"][op]
        return f"{'n/a':>{width}} " if value is None else f"{value / ours:>{width}.1f}x"

    print(
        f"{'operation':<28}{'smppgw µs':>12}{'smpplib µs':>12}{'aiosmpplib µs':>15}"
        f"{'vs smpplib':>12}{'vs aiosmpplib':>15}"
    )
    speedups = []
    for op in libraries["smppgw"]:
        ours = results["smppgw"][op]
        if op in results["smpplib"]:
            speedups.append(results["smpplib"][op] / ours)
        print(
            f"{op:<28}{ours:>12.2f}{cell('smpplib', op, 12)}{cell('aiosmpplib', op, 15)}"
            f"{ratio('smpplib', op, 11)}{ratio('aiosmpplib', op, 14)}"
        )
    ours_by_op = results["smppgw"]
    print(
        f"smppgw µs: encode {ours_by_op[ENCODE]:.2f}, decode_resp {ours_by_op[DECODE_RESP]:.2f}, "
        f"decode_receipt {ours_by_op[DECODE_RECEIPT]:.2f}"
    )
    print(f"min speedup vs smpplib: {min(speedups):.1f}x")


if __name__ == "__main__":
    main()
