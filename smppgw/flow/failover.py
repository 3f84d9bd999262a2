"""Provider health as failover reads it: since when a provider counts as down; and a queued
message as a request to encode again for the provider failover moves it to.

A provider is down while it has no bound session, and also while it refuses every submit for
good (an account-level permanent status such as Qikberry's 0x040B insufficient credits: the
binds are up, but nothing gets through). The router (routing.Router.failover_for) fails a
provider over once it has been down for its ``failover_after``; the daemon then moves its
queued messages too.

Pure: the pool reports bound counts, the dispatcher each submit decision, both with ``now``.
"""

from __future__ import annotations

from typing import Final, Protocol

from smppgw.config import ProviderConfig
from smppgw.flow.submission import SubmitRequest
from smppgw.smpp.text import Encoding

__all__ = ["REFUSALS_TO_COUNT_AS_DOWN", "ProviderHealth", "QueuedLike", "resubmission"]

#: Account-level refusals in a row, with no submit accepted in between, before a provider
#: counts as refusing (one could be a glitch of the SMSC; three in a row with no success is
#: the account).
REFUSALS_TO_COUNT_AS_DOWN: Final = 3


class ProviderHealth:
    """One provider: bound sessions and account-level refusals → ``down_since``.

    Starts down (nothing is bound before the first bind completes), since ``now``.
    """

    __slots__ = ("_refusals", "_refusing_since", "_unbound_since")

    def __init__(self, now: float) -> None:
        self._unbound_since: float | None = now
        self._refusing_since: float | None = None
        self._refusals = 0

    def __repr__(self) -> str:
        bound = "unbound" if self._unbound_since is not None else "bound"
        refusing = " refusing" if self.refusing else ""
        return f"<ProviderHealth {bound}{refusing}>"

    # --- inputs ------------------------------------------------------------------------

    def bound_changed(self, bound: int, now: float) -> None:
        """The pool's count of bound sessions changed (or was read) at ``now``."""
        if bound:
            self._unbound_since = None
        elif self._unbound_since is None:
            self._unbound_since = now

    def submit_answered(self, *, accepted: bool, refusing: bool, now: float) -> None:
        """One submit was answered: ``accepted`` (ESME_ROK) or, ``refusing``, with an
        account-level permanent status (outbound.SubmitDecision.refusing). Other answers
        say nothing about the account and change nothing."""
        if accepted:
            self._refusals = 0
            self._refusing_since = None
        elif refusing:
            self._refusals += 1
            if self._refusals == REFUSALS_TO_COUNT_AS_DOWN:
                self._refusing_since = now

    # --- observation -------------------------------------------------------------------

    @property
    def refusing(self) -> bool:
        """Every recent submit was refused for good: the alert metric
        ``smppgw_provider_refusing``."""
        return self._refusing_since is not None

    @property
    def down_since(self) -> float | None:
        """Since when the provider counts as down (the earlier cause), None while it works."""
        causes = [at for at in (self._unbound_since, self._refusing_since) if at is not None]
        return min(causes) if causes else None

    @property
    def down_reason(self) -> str | None:
        """Why it counts as down, for the history of the messages failover moves."""
        if self._unbound_since is not None:
            return "no bind bound"
        if self._refusing_since is not None:
            return "every submit refused for good"
        return None


class QueuedLike(Protocol):
    """A queued message as the store gives it (store.QueuedMessage has these fields)."""

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


def resubmission(message: QueuedLike, old: ProviderConfig) -> SubmitRequest:
    """``message``, queued for ``old``, as the request that encodes it for another provider:
    the text, number, flash and receipt request as accepted; the message's own TLVs without
    ``old``'s defaults (the new provider adds its own), a template id in ``old``'s template
    TLV as ``template_id``; and no sender when ``old`` put its
    system_id there itself (Wavy's rule, not the new provider's). UCS-2 is kept (a request
    may have forced it, and every text can be sent in it); any other encoding is chosen again
    by the new provider's profile."""
    defaults = set(old.tlv_defaults)
    sender = message.source
    if old.sender_as_system_id and sender == old.system_id:
        sender = ""
    forced: Encoding | None = "ucs2" if message.encoding == "ucs2" else None
    own = tuple(tlv for tlv in message.tlvs if tlv not in defaults)
    # A template id the message carried in ``old``'s template TLV goes back to being one,
    # for the new provider's profile to place (or, without a DLT TLV, to leave out).
    template_id = None
    tag = old.profile.template_id_tag
    for tlv_tag, raw in own:
        if tlv_tag == tag and raw.endswith(b"\0") and raw[:-1].isascii() \
                and raw[:-1].decode("ascii").isprintable():
            template_id = raw[:-1].decode("ascii")
            own = tuple(tlv for tlv in own if tlv[0] != tag)
            break
    return SubmitRequest(
        index=0, client_id=message.client_id, to=message.destination, sender=sender,
        text=message.text, flash=message.flash, tlvs=own, template_id=template_id,
        receipt=bool(message.registered_delivery & 1), encoding=forced,
    )
