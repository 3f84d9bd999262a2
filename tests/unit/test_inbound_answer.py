"""What the inbound processor answers for each PDU from the SMSC, as a table.

SMPP 3.4 §4.6.2 (deliver_sm_resp), §4.7.2 (data_sm_resp): every deliver_sm and data_sm gets
exactly one response; §4.12: alert_notification has none, not even a generic_nack.
"""

from __future__ import annotations

import pytest

from smppgw.services.receiver import Handled, inbound_answer
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import AlertNotification, DataSm, DeliverSm, Pdu

S = CommandStatus

TABLE: list[tuple[Pdu, Handled, int | None]] = [
    (DeliverSm(), Handled.STORED, S.ESME_ROK),
    (DeliverSm(), Handled.UNCORRELATABLE, S.ESME_RX_P_APPN),  # never redelivered
    (DeliverSm(), Handled.NOT_STORED, S.ESME_RX_T_APPN),  # disk full: redeliver later
    (DeliverSm(), Handled.FAILED, S.ESME_RX_T_APPN),  # our fault: redeliver later
    (DataSm(), Handled.STORED, S.ESME_ROK),
    (DataSm(), Handled.NOT_STORED, S.ESME_RX_T_APPN),
    (DataSm(), Handled.FAILED, S.ESME_RX_T_APPN),
    *[(AlertNotification(), handled, None) for handled in Handled],
]


@pytest.mark.parametrize(("pdu", "handled", "status"), TABLE)
def test_answer_by_pdu_and_outcome(pdu: Pdu, handled: Handled, status: int | None) -> None:
    assert inbound_answer(pdu, handled) == status
