"""Codec speed: smppgw against smpplib and aiosmpplib, measured in the same run.

Three operations on the per-PDU hot path:
  (a) encode a submit_sm with a 160-character GSM text and 2 TLVs
  (b) decode a submit_sm_resp
  (c) decode a deliver_sm carrying a receipt with receipted_message_id and message_state TLVs
Each library works from the same input bytes/values; every decoded result is checked against
the expected field values first, so a library that silently drops work cannot look fast.
Prints µs per operation, the ratios, and ends with ``min speedup vs smpplib: N.Nx``.

Usage: python benchmarks/codec.py [--seconds 0.4]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

from smppgw.smpp import codec
from smppgw.smpp.constants import Tag
from smppgw.smpp.pdu import DeliverSm, SubmitSm, SubmitSmResp, Tlv

TEXT = ("Hello from smppgw! Your code is 482913. " * 4)[:160]
assert len(TEXT) == 160
RECEIPT_TEXT = (
    b"id:7f3c2a10-5b1e-4c1a-9d7e-0b9a6e1c2d3f sub:001 dlvrd:001 submit date:2411231200 "
    b"done date:2411231201 stat:DELIVRD err:000 text:Hello from smppgw"
)
RECEIPT_ID = "7f3c2a10-5b1e-4c1a-9d7e-0b9a6e1c2d3f"


def best_of(fn: Callable[[], object], seconds: float, repeats: int = 5) -> float:
    """µs per call: the median of ``repeats`` timed batches, each about seconds/repeats long."""
    calls = 1
    while True:  # calibrate: double until one batch takes long enough (bounded by 2**24)
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed > seconds / repeats / 4 or calls >= 1 << 24:
            break
        calls *= 2
    per_batch = max(1, int(calls * (seconds / repeats) / max(elapsed, 1e-9)))
    samples = []
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(per_batch):
                fn()
            samples.append((time.perf_counter() - start) / per_batch * 1e6)
    finally:
        gc.enable()
    return statistics.median(samples)


def build_inputs() -> tuple[SubmitSm, bytes, bytes]:
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
    receipt = codec.encode(
        DeliverSm(
            sequence_number=9,
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr="5511999999999",
            destination_addr="Acme",
            esm_class=0x04,
            short_message=RECEIPT_TEXT,
            tlvs=(Tlv.of(Tag.RECEIPTED_MESSAGE_ID, RECEIPT_ID), Tlv.of(Tag.MESSAGE_STATE, 2)),
        )
    )
    return submit, resp, receipt


def smppgw_ops(submit: SubmitSm, resp: bytes, receipt: bytes) -> dict[str, Callable[[], object]]:
    decode = codec.decode
    encode = codec.encode
    assert decode(encode(submit)) == submit
    decoded_resp = decode(resp)
    assert isinstance(decoded_resp, SubmitSmResp) and decoded_resp.message_id == RECEIPT_ID
    decoded_receipt = decode(receipt)
    assert isinstance(decoded_receipt, DeliverSm)
    assert decoded_receipt.tlv(Tag.RECEIPTED_MESSAGE_ID).value == RECEIPT_ID  # type: ignore[union-attr]
    return {
        "encode submit_sm": lambda: encode(submit),
        "decode submit_sm_resp": lambda: decode(resp),
        "decode deliver_sm receipt": lambda: decode(receipt),
    }


Ops = dict[str, Callable[[], object]]


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

    assert encode() == submit_bytes, "smpplib encodes different bytes"
    parsed = smpp.parse_pdu(resp, client=client)
    assert parsed.message_id == RECEIPT_ID.encode()
    parsed = smpp.parse_pdu(receipt, client=client)
    assert parsed.receipted_message_id == RECEIPT_ID.encode()
    return {
        "encode submit_sm": encode,
        "decode submit_sm_resp": lambda: smpp.parse_pdu(resp, client=client),
        "decode deliver_sm receipt": lambda: smpp.parse_pdu(receipt, client=client),
    }


def aiosmpplib_ops(submit_bytes: bytes, resp: bytes, receipt: bytes) -> Ops:
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

    parsed = decode(resp)
    assert parsed.message_id == RECEIPT_ID  # type: ignore[attr-defined]
    parsed = decode(receipt)
    assert parsed.is_receipt()  # type: ignore[attr-defined]
    return {
        "encode submit_sm": encode,
        "decode submit_sm_resp": lambda: decode(resp),
        "decode deliver_sm receipt": lambda: decode(receipt),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    args = parser.parse_args()

    submit, resp, receipt = build_inputs()
    submit_bytes = codec.encode(submit)
    libraries = {
        "smppgw": smppgw_ops(submit, resp, receipt),
        "smpplib": smpplib_ops(submit_bytes, resp, receipt),
        "aiosmpplib": aiosmpplib_ops(submit_bytes, resp, receipt),
    }
    results: dict[str, dict[str, float]] = {}
    for library, ops in libraries.items():
        results[library] = {name: best_of(fn, args.seconds) for name, fn in ops.items()}

    operations = list(libraries["smppgw"])
    print(f"{'operation':<28}{'smppgw µs':>12}{'smpplib µs':>12}{'aiosmpplib µs':>15}"
          f"{'vs smpplib':>12}{'vs aiosmpplib':>15}")
    speedups = []
    for op in operations:
        ours = results["smppgw"][op]
        other = results["smpplib"][op]
        aio = results["aiosmpplib"][op]
        speedups.append(other / ours)
        print(f"{op:<28}{ours:>12.2f}{other:>12.2f}{aio:>15.2f}"
              f"{other / ours:>11.1f}x{aio / ours:>14.1f}x")
    print(f"min speedup vs smpplib: {min(speedups):.1f}x")


if __name__ == "__main__":
    main()
