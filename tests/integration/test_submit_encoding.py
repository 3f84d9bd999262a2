"""The providers' encoding rules on the accept path: SubmitService → Store, then the parts a
dispatcher would claim. No SMSC: what matters is what the store holds to send."""

from __future__ import annotations

from pathlib import Path

import pytest

from smppgw.config import Config, parse_config
from smppgw.flow.submission import SubmitRequest
from smppgw.services.submission import SubmitService
from smppgw.store import SegmentToSend, SqliteStore

pytestmark = pytest.mark.timeout(30)


def make_config(state_dir: Path, sock_dir: Path) -> Config:
    common = {"password": "pw", "tls": False}
    return parse_config(
        {
            "gateway": {"state_dir": str(state_dir), "submit_socket": str(sock_dir / "s.sock")},
            "provider": [
                {"name": "wavy", "profile": "wavy", "system_id": "acme", "routes": ["55"],
                 "hosts": ["127.0.0.1:2444"], **common},
                {"name": "qikberry", "profile": "qikberry", "system_id": "acme-in",
                 "routes": ["91"], "hosts": ["127.0.0.1:3634"], "template_id": "1107161",
                 "tlv_defaults": {"0x1400": "110", "0x1402": "170"}, **common},
            ],
        },
        base_dir=state_dir.parent,
        environ={},
    )  # fmt: skip


async def accept_and_claim(
    tmp_path: Path, sock_dir: Path, provider: str, to: str, text: str
) -> list[SegmentToSend]:
    config = make_config(tmp_path / "state", sock_dir)
    store = await SqliteStore.open(config.gateway.state_dir)
    try:
        service = SubmitService(config, store)
        (answer,) = await service.submit([SubmitRequest(0, "m-1", to, "Acme", text)])
        assert answer.accepted, answer
        return await store.claim_segments(provider, 100)
    finally:
        await store.close()


async def test_wavy_accented_text_is_stored_in_parts_of_67(tmp_path: Path, sock_dir: Path) -> None:
    # Seed 003: a text with a character outside Wavy's table is billed per 67 with UDH; 125
    # Latin-1 characters used to leave as one 125-octet part that Wavy re-split.
    parts = await accept_and_claim(tmp_path, sock_dir, "wavy", "5511999990000", "ã" * 125)
    assert [p.data_coding for p in parts] == [1, 1]
    assert [p.esm_class for p in parts] == [0x40, 0x40]
    assert [p.short_message[6:] for p in parts] == [b"\xe3" * 67, b"\xe3" * 58]
    assert [p.short_message[:5] for p in parts] == [parts[0].short_message[:5]] * 2


async def test_qikberry_latin1_text_goes_ucs2_with_the_template_default(
    tmp_path: Path, sock_dir: Path
) -> None:
    # Seed 004: Latin-1 (3) only when told so explicitly, so UCS-2; the provider's
    # template_id travels as TLV 0x1401 beside the other DLT defaults.
    (part,) = await accept_and_claim(tmp_path, sock_dir, "qikberry", "919812345678", "ação")
    assert (part.data_coding, part.short_message) == (8, "ação".encode("utf-16-be"))
    assert dict(part.tlvs)[0x1401] == b"1107161\x00"
    assert dict(part.tlvs)[0x1400] == b"110\x00"
