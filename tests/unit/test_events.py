"""Events are plain values: the session's fast builder gives the dataclass's own value."""

from __future__ import annotations

import dataclasses

import pytest

from smppgw.smpp.events import ResponseReceived, response_received
from smppgw.smpp.pdu import SubmitSmResp


def test_response_received_builder_equals_the_constructor() -> None:
    pdu = SubmitSmResp(sequence_number=7, message_id="abc")
    built = response_received("tag", 7, 0, pdu)
    assert type(built) is ResponseReceived
    assert built == ResponseReceived("tag", 7, 0, pdu)
    assert hash(built) == hash(ResponseReceived("tag", 7, 0, pdu))
    assert repr(built) == repr(ResponseReceived("tag", 7, 0, pdu))
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.status = 1  # type: ignore[misc]
