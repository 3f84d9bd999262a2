"""Built-in provider profiles: every default shared/PROVIDERS.md fixes, so a user adds credentials.

A profile is plain data. ``config.py`` merges a provider's overrides over it; the protocol core
receives the parts it needs (text policy, session settings) as its own small value types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from smppgw.smpp.codec import DEFAULT_MAX_COMMAND_LENGTH

# The largest submit_sm (its command_length, header included) the built-in profiles send.
# Neither provider's document states one. Both take at most 140 octets of message per part
# and ask for UDH concatenation, so a real submit_sm is under 400 octets: 16 of header, the
# mandatory fields at their SMPP 3.4 maxima (about 190) and the message, plus a few TLVs
# (Qikberry's DLT ids). 4096 leaves room for any TLVs an application adds, and refuses at
# accept the messages an SMSC answers by dropping the bind (one of ~30 KB of TLVs did).
PROVIDER_MAX_PDU_OCTETS = 4096

ConcatMethod = Literal["udh8", "udh16", "sar", "payload"]
BindType = Literal["transceiver", "transmitter", "receiver"]
MessageIdFormat = Literal["uuid", "hex", "decimal"]
Ia5Alphabet = Literal["gsm7", "latin1"]

# Wavy bills per 160 characters a text made only of the characters of its table, and per 70
# (67 with UDH) a text holding any other one, whatever its data_coding (seed 003,
# "Acentos e caracteres especiais", lines 1252-1261). The table is printed as 12 columns
# of 8: column k holds ASCII 0x20+8k .. 0x27+8k (Space ( 0 8 @ H P X ` h p x across the
# first row), i.e. printable ASCII 0x20-0x7E with DEL's cell empty. The text extraction
# lost " ' | ~ from their cells and shows { } where [ ] stand; the layout puts every one of
# them in the table, so all of printable ASCII is in. Line breaks: a printable grid has no
# cell for the ASCII control block; LF and CR are in ASCII and in GSM 03.38's default
# alphabet alike, so they are counted in the table as well (a decision, the seed is silent).
WAVY_BILLING_CHARSET = "".join(chr(c) for c in range(0x20, 0x7F)) + "\n\r"


@dataclass(frozen=True, slots=True)
class DataCodingMap:
    """data_coding values a provider expects for each alphabet; None = not offered."""

    gsm7: int = 0x00
    latin1: int | None = None
    ucs2: int = 0x08
    flash_gsm7: int | None = 0x10
    flash_ucs2: int | None = 0x18


@dataclass(frozen=True, slots=True)
class ProviderProfile:
    """Defaults for one SMSC vendor. Durations in seconds, rates in messages per second."""

    name: str
    hosts: tuple[str, ...]  # "host:port"; DNS names are re-resolved at every reconnect
    tls: bool = True
    tls_min_version: Literal["1.0", "1.1", "1.2", "1.3"] = "1.2"
    system_type: str = ""
    bind_type: BindType = "transceiver"
    interface_version: int = 0x34
    binds: int = 1  # binds per provider, spread over the resolved addresses
    min_binds: int = 1
    binds_per_host: int | None = None  # when set, binds are counted per configured host
    window: int = 10
    rate_per_bind: float | None = None
    rate_per_host: float | None = None
    enquire_link_interval: float = 30.0
    enquire_link_range: tuple[float, float] = (5.0, 299.0)
    response_timeout: float = 10.0
    default_ton: int = 1
    default_npi: int = 1
    validity_minutes: int = 1440
    registered_delivery: int = 1
    data_coding: DataCodingMap = field(default_factory=DataCodingMap)
    gsm_extension: bool = True  # may GSM 03.38 escape sequences go out as GSM7?
    concat: ConcatMethod = "udh8"
    max_octets_per_part: int = 140
    # Whether a cancel sends cancel_sm for the parts the SMSC already took (SMPP 3.4 §4.9).
    # Off unless configured: not every SMSC supports it, and Wavy's and Qikberry's documents
    # do not mention it.
    cancel_sm: bool = False
    # The most parts (as billed) one message may have: a runaway text is refused at accept
    # with too_many_parts rather than billed as dozens of parts (Kannel's max-messages, 10).
    max_parts: int = 10
    # SMPP 3.4 sets no limit but message_payload's 64 KiB (§5.3.2.32): the codec's maximum.
    max_pdu_octets: int = DEFAULT_MAX_COMMAND_LENGTH
    # Characters billed at 160 per part; a text with any other one is billed and cut per 70
    # characters (67 with UDH) whatever its alphabet. None = billed as the parts go.
    billing_charset: str | None = None
    # How the SMSC reads data_coding 1 (IA5); None = unknown, either is accepted in config.
    ia5_alphabet: Ia5Alphabet | None = None
    submit_multi: bool = False
    message_id_format: MessageIdFormat = "hex"
    receipt_style: Literal["standard", "wavy", "qikberry"] = "standard"
    # TLV a per-message DLT template id travels in (Qikberry 0x1401); None = no such TLV.
    template_id_tag: int | None = None
    # Destination prefixes under India's DLT rules: a message to one needs a template id
    # (refused at accept without one), and check-config wants the account TLVs below.
    dlt_prefixes: tuple[str, ...] = ()
    # TLVs every message of the account needs, with what they are: check-config warns when
    # tlv_defaults lacks one (Qikberry's DLT entity and telemarketer ids).
    account_tlvs: tuple[tuple[int, str], ...] = ()


WAVY = ProviderProfile(
    name="wavy",
    # Always the DNS name: 4 ingress proxies behind round-robin DNS (PROVIDERS.md).
    hosts=("smpp-messaging.wavy.global:2444",),
    tls=True,
    tls_min_version="1.2",
    system_type="MovileSMSC",
    bind_type="transceiver",
    binds=4,
    min_binds=4,  # mandatory for HA and load balancing
    window=10,
    rate_per_bind=80.0,
    enquire_link_interval=30.0,
    enquire_link_range=(30.0, 59.0),
    default_ton=1,
    default_npi=1,
    validity_minutes=24 * 60,
    registered_delivery=1,
    data_coding=DataCodingMap(gsm7=0x00, latin1=0x01, ucs2=0x08, flash_gsm7=0x10, flash_ucs2=0x18),
    # Wavy's carriers do not support the GSM 03.38 extension table.
    gsm_extension=False,
    concat="udh8",
    max_pdu_octets=PROVIDER_MAX_PDU_OCTETS,
    billing_charset=WAVY_BILLING_CHARSET,
    ia5_alphabet="latin1",  # seed 003: "LATIN1 (data_coding = 1)"
    message_id_format="uuid",
    receipt_style="wavy",
)

QIKBERRY = ProviderProfile(
    name="qikberry",
    # Only one server is guaranteed at a time: connect to all of them.
    hosts=("smpp1.txtsms.me:3635", "smpp2.txtsms.me:3635"),
    tls=True,
    # The document allows TLS 1.0; like every profile, smppgw offers 1.2 or better unless the
    # provider table opts in to less (tls_min_version, which check-config warns about).
    tls_min_version="1.2",
    system_type="smpp",
    bind_type="transceiver",
    binds=6,
    min_binds=1,
    binds_per_host=3,
    window=10,
    rate_per_host=50.0,
    enquire_link_interval=60.0,
    # The server drops links idle for more than 5 minutes.
    enquire_link_range=(5.0, 299.0),
    default_ton=1,
    default_npi=1,
    registered_delivery=1,
    # Seed 004 ("Character Sets, Class, and Data Coding"): data_coding 3 for ISO-8859-1 "if
    # and only if told so explicitly", so Latin-1 text goes as UCS-2 until the account's
    # provider table sets data_coding.latin1 = 3; 1 is GSM 03.38 there, not recommended.
    data_coding=DataCodingMap(gsm7=0x00, latin1=None, ucs2=0x08, flash_gsm7=0x10, flash_ucs2=0x18),
    gsm_extension=True,
    concat="udh8",
    max_octets_per_part=140,
    max_pdu_octets=PROVIDER_MAX_PDU_OCTETS,
    ia5_alphabet="gsm7",
    submit_multi=False,
    message_id_format="hex",
    receipt_style="qikberry",
    # Seed 004, "Additional TLV": PE_ID 0x1400, Template_ID 0x1401, Telemarketer_ID 0x1402.
    template_id_tag=0x1401,
    dlt_prefixes=("91",),
    account_tlvs=(
        (0x1400, "PE_ID, the DLT entity id"),
        (0x1402, "Telemarketer_ID, the DLT telemarketer id"),
    ),
)

GENERIC = ProviderProfile(name="generic", hosts=())

BUILTIN_PROFILES: MappingProxyType[str, ProviderProfile] = MappingProxyType(
    {p.name: p for p in (WAVY, QIKBERRY, GENERIC)}
)
