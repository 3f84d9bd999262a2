"""Protocol error types of the core (STYLE.md §4).

The decoder decides whether an error is recoverable (answer generic_nack, keep the bind) or
fatal (the byte stream cannot be re-synchronised: close); the session acts on that. Every
remote error carries the SMPP status the session must put on the wire.
"""

from __future__ import annotations

from smppgw.errors import SmppgwError
from smppgw.smpp.constants import CommandStatus


class ProtocolError(SmppgwError):
    """Something broke the SMPP protocol, on our side or the peer's."""


class LocalProtocolError(ProtocolError):
    """We asked the core for something illegal (a programming error above the core)."""


class PduEncodeError(LocalProtocolError):
    """A PDU we asked to encode holds a value SMPP 3.4 forbids in ``field`` (a field name
    of the PDU class, or ``tlvs``): the value is at fault, not the state of anything, so
    sending the same PDU again fails the same way."""

    def __init__(self, pdu_name: str, field: str, rule: str) -> None:
        self.pdu_name = pdu_name
        self.field = field
        self.rule = rule
        super().__init__(f"{pdu_name}.{field}: {rule}")


class RemoteProtocolError(ProtocolError):
    """The peer sent something we cannot accept.

    ``status`` is the command_status to answer with (generic_nack or the response's status);
    ``sequence_number`` is the PDU's when it could be read, else None; ``fatal`` says the
    stream is lost and the connection must close.
    """

    fatal = False

    def __init__(
        self,
        detail: str,
        status: CommandStatus,
        sequence_number: int | None = None,
        command_id: int | None = None,
    ) -> None:
        self.detail = detail
        self.status = status
        self.sequence_number = sequence_number
        self.command_id = command_id
        super().__init__(f"{detail} ({status.name})")


class FrameError(RemoteProtocolError):
    """The framing is broken (bad command_length): no way to find the next PDU. Close."""

    fatal = True


class PduDecodeError(RemoteProtocolError):
    """One PDU is malformed but framed correctly; it was consumed, the next one parses."""


class EncodingError(SmppgwError, ValueError):
    """Text that cannot be represented in the requested encoding.

    Names the first offending character and its position (0-based, in code points) so an API
    answer can point at it.
    """

    def __init__(self, char: str, position: int, encoding: str) -> None:
        self.char = char
        self.position = position
        self.encoding = encoding
        super().__init__(
            f"character {char!r} (U+{ord(char):04X}) at position {position} "
            f"cannot be encoded as {encoding}"
        )


class SegmentationError(SmppgwError, ValueError):
    """A text that cannot be split within the rules (e.g. more than 255 parts)."""
