"""PDU values: the hand-written constructor of submit_sm and deliver_sm keeps the dataclass's
contract (same keyword-only parameters, order and defaults; a frozen value of the right class)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from smppgw.smpp.pdu import DeliverSm, Pdu, SubmitSm, Tlv


@pytest.mark.parametrize("cls", [SubmitSm, DeliverSm])
def test_the_written_out_constructor_matches_the_fields(cls: type[Pdu]) -> None:
    parameters = list(inspect.signature(cls).parameters.values())
    fields = dataclasses.fields(cls)
    assert [p.name for p in parameters] == [f.name for f in fields]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)
    assert [p.default for p in parameters] == [f.default for f in fields]


@pytest.mark.parametrize("cls", [SubmitSm, DeliverSm])
def test_a_built_value_is_frozen_of_its_class_and_complete(cls: type[Pdu]) -> None:
    values = {
        f.name: (f"v{n}" if f.type == "str" else b"\x00x" if f.type == "bytes" else n)
        for n, f in enumerate(dataclasses.fields(cls))
    }
    values["tlvs"] = (Tlv(0x1403, b"\x01"),)
    pdu = cls(**values)  # type: ignore[arg-type]
    assert type(pdu) is cls
    assert dataclasses.asdict(pdu) == {
        name: (dataclasses.asdict(Tlv(0x1403, b"\x01")),) if name == "tlvs" else value
        for name, value in values.items()
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        pdu.sequence_number = 9  # type: ignore[misc]
    assert cls() == cls() and hash(cls()) == hash(cls())
    assert dataclasses.replace(pdu, sequence_number=7).sequence_number == 7
    with pytest.raises(TypeError):
        cls(5)  # type: ignore[misc]  # keyword-only, as the dataclass had it
    with pytest.raises(TypeError):
        cls(no_such_field=1)  # type: ignore[call-arg]
