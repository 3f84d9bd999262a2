"""Configuration: TOML → frozen dataclasses, provider profiles merged, every problem reported.

Reads the config file, secret files and the environment only inside load_config/parse_config (at
start and on reload); what it returns is plain data. Credentials are Secret, masked everywhere.
"""

from __future__ import annotations

import dataclasses
import difflib
import hmac
import ipaddress
import json
import math
import os
import re
import stat
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, TypeVar, get_args
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from smppgw.errors import ConfigError, Problem
from smppgw.flow.accounts import account_groups, account_key, endpoint
from smppgw.profiles import (
    BUILTIN_PROFILES,
    GENERIC,
    BindType,
    ConcatMethod,
    DataCodingMap,
    MessageIdFormat,
    ProviderProfile,
)
from smppgw.smpp.constants import Npi, Tag, Ton
from smppgw.smpp.errors import LocalProtocolError, PduEncodeError
from smppgw.smpp.session import SessionConfig
from smppgw.smpp.text import CodedAlphabet, Encoding, data_coding_alphabet, message_class

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "BindTarget",
    "Config",
    "GatewayConfig",
    "HostPort",
    "ProviderConfig",
    "Secret",
    "StoreConfig",
    "WebhookConfig",
    "format_problem",
    "load_config",
    "parse_config",
    "parse_host_port",
    "parse_text_settings",
    "render_config",
]

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
SenderPolicy = Literal["error", "warn"]
TlsVersion = Literal["1.0", "1.1", "1.2", "1.3"]
ReceiptStyle = Literal["standard", "wavy", "qikberry"]
ReceiptIdBase = Literal["same", "hex", "decimal"]
WebhookEvent = Literal["receipt", "state", "mo"]
WebhookAuth = Literal["none", "basic", "bearer"]

DEFAULT_CONFIG_PATH: Final = Path("/etc/smppgw/smppgw.toml")
DEFAULT_STATE_DIR: Final = Path("/var/lib/smppgw")
DEFAULT_SUBMIT_SOCKET: Final = Path("/run/smppgw/submit.sock")
DEFAULT_SOCKET_MODE: Final = 0o660
DEFAULT_METRICS_LISTEN: Final = "127.0.0.1:9465"
DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
DEFAULT_FAILOVER_AFTER: Final = 60.0
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_BIND_TIMEOUT: Final = 10.0
DEFAULT_WEBHOOK_TIMEOUT: Final = 3.0  # Qikberry's rule for webhooks: 2xx within 3 s
DEFAULT_WEBHOOK_BATCH_SIZE: Final = 100
DEFAULT_WEBHOOK_MAX_DELAY: Final = 100_000.0  # Qikberry caps its retry delay at 100,000 s
DEFAULT_KEEP_DAYS: Final = 30.0
# A receipt normally finds its message at once, or within milliseconds when it overtook its
# submit_sm_resp; one still unmatched after minutes will not be matched by waiting.
DEFAULT_UNMATCHED_RECEIPT_AFTER: Final = 300.0

_LOG_LEVELS: Final[tuple[LogLevel, ...]] = get_args(LogLevel)
_SENDER_POLICIES: Final[tuple[SenderPolicy, ...]] = get_args(SenderPolicy)
_TLS_VERSIONS: Final[tuple[TlsVersion, ...]] = get_args(TlsVersion)
_RECEIPT_STYLES: Final[tuple[ReceiptStyle, ...]] = get_args(ReceiptStyle)
_RECEIPT_ID_BASES: Final[tuple[ReceiptIdBase, ...]] = get_args(ReceiptIdBase)
_WEBHOOK_EVENTS: Final[tuple[WebhookEvent, ...]] = get_args(WebhookEvent)
_WEBHOOK_AUTHS: Final[tuple[WebhookAuth, ...]] = get_args(WebhookAuth)
_BIND_TYPES: Final[tuple[BindType, ...]] = get_args(BindType)
_CONCAT_METHODS: Final[tuple[ConcatMethod, ...]] = get_args(ConcatMethod)
_MESSAGE_ID_FORMATS: Final[tuple[MessageIdFormat, ...]] = get_args(MessageIdFormat)

_TOP_KEYS: Final = ("gateway", "store", "provider", "webhook")
_STORE_KEYS: Final = ("url", "password_file", "password_env", "keep_days")
_STORE_SCHEMES: Final = ("postgresql", "postgres")
# libpq sslmode values that encrypt the connection.
_SSL_MODES: Final = ("require", "verify-ca", "verify-full")
_GATEWAY_KEYS: Final = (
    "state_dir",
    "submit_socket",
    "socket_mode",
    "metrics_listen",
    "log_level",
    "default_provider",
    "api_listen",
    "api_token_file",
    "api_token_env",
    "max_body_bytes",
    "sender_policy",
    "unmatched_receipt_after",
)
_PROVIDER_KEYS: Final = (
    "name",
    "profile",
    "system_id",
    "password",
    "password_file",
    "password_env",
    "routes",
    "failover",
    "failover_after",
    "tlv_defaults",
    "template_id",
    "sender_as_system_id",
    "hosts",
    "tls",
    "tls_verify",
    "tls_min_version",
    "ca_file",
    "client_cert",
    "client_key",
    "tls_pin_sha256",
    "system_type",
    "bind_type",
    "interface_version",
    "binds",
    "binds_per_host",
    "transmitters",
    "receivers",
    "transmitters_per_host",
    "receivers_per_host",
    "window",
    "rate_per_bind",
    "rate_per_host",
    "enquire_link_interval",
    "response_timeout",
    "connect_timeout",
    "bind_timeout",
    "default_ton",
    "default_npi",
    "validity_minutes",
    "registered_delivery",
    "data_coding",
    "gsm_extension",
    "transliterate",
    "concat",
    "max_octets_per_part",
    "max_parts",
    "max_pdu_octets",
    "submit_multi",
    "cancel_sm",
    "message_id_format",
    "receipt_id_base",
    "receipt_style",
)
_TLS_ONLY_KEYS: Final = (
    "tls_verify",
    "tls_min_version",
    "ca_file",
    "client_cert",
    "client_key",
    "tls_pin_sha256",
)
_DATA_CODING_KEYS: Final = ("gsm7", "latin1", "ucs2", "flash_gsm7", "flash_ucs2")
# The alphabet each data_coding key labels, and what to write instead of a wrong value.
_DATA_CODING_ALPHABET: Final[dict[str, Encoding]] = {
    "gsm7": "gsm7",
    "latin1": "latin1",
    "ucs2": "ucs2",
    "flash_gsm7": "gsm7",
    "flash_ucs2": "ucs2",
}
_ALPHABET_NAMES: Final[dict[CodedAlphabet, str]] = {
    "gsm7": "GSM 7-bit",
    "latin1": "Latin-1",
    "ucs2": "UCS-2",
    "ia5": "IA5",
    "binary": "8-bit binary data",
}
_WEBHOOK_KEYS: Final = (
    "url",
    "events",
    "auth",
    "username",
    "password_file",
    "password_env",
    "token_file",
    "token_env",
    "hmac_secret_file",
    "hmac_secret_env",
    "timeout",
    "batch_size",
    "max_delay",
    "tls_verify",
    "tls_min_version",
    "ca_file",
    "client_cert",
    "client_key",
    "headers",
)
# Headers smppgw sets on a webhook POST itself: ``headers`` may not replace them (the body's
# framing, the signature, and Authorization while ``auth`` sets it).
_WEBHOOK_OWN_HEADERS: Final = frozenset({
    "content-type", "content-length", "content-encoding", "transfer-encoding", "host",
    "connection", "user-agent", "x-smppgw-signature", "x-smppgw-timestamp",
})
# RFC 9110 §5.1 field names (tokens) and §5.5 values (visible ASCII, spaces and tabs inside).
_HEADER_NAME_RE: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
_HEADER_VALUE_RE: Final = re.compile(r"[\x21-\x7e]([\x20-\x7e\t]{0,4094}[\x21-\x7e])?")

# Built-in profiles whose provider documents say nothing of cancel_sm (PROVIDERS.md, seeds).
_WITHOUT_CANCEL_SM: Final = frozenset({"wavy", "qikberry"})

_NAME_RE: Final = re.compile(r"[a-z0-9_-]+")
_ROUTE_RE: Final = re.compile(r"[0-9]{1,20}")
_ENV_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PORT_RE: Final = re.compile(r"[0-9]{1,5}")
_OCTAL_MODE_RE: Final = re.compile(r"(?:0o|0)?([0-7]{3,4})")
_TAG_HEX_RE: Final = re.compile(r"0[xX][0-9a-fA-F]{1,4}")
_TAG_DEC_RE: Final = re.compile(r"[0-9]{1,5}")
_PIN_RE: Final = re.compile(r"[0-9a-f]{64}")
_LABEL: Final = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME_RE: Final = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*\.?")

# SMPP 3.4 §4.1.1: C-Octet Strings of at most 16 / 9 / 13 octets including the NUL.
_MAX_SYSTEM_ID: Final = 15
_MAX_PASSWORD: Final = 8
_MAX_SYSTEM_TYPE: Final = 12
# max_pdu_octets bounds: a submit_sm with empty fields is 33 octets; past 1 MiB no SMSC
# reads it (SMPP 3.4's own largest field, message_payload, is 64 KiB).
MIN_PDU_OCTETS: Final = 64
MAX_PDU_OCTETS: Final = 1 << 20
# sockaddr_un.sun_path is 108 bytes on Linux, NUL included.
_MAX_UNIX_SOCKET_PATH: Final = 107
# Set per message by the segmenter (SMPP 3.4 §5.3.2.22-24, §5.3.2.32); a default would corrupt
# concatenation.
_PER_MESSAGE_TAGS: Final = frozenset(
    {Tag.SAR_MSG_REF_NUM, Tag.SAR_TOTAL_SEGMENTS, Tag.SAR_SEGMENT_SEQNUM, Tag.MESSAGE_PAYLOAD}
)


class Secret:
    """A credential that must never be printed: repr, str and format all give "***".

    Call :meth:`reveal` only where the value goes on the wire (bind_transceiver, an HTTP header).
    ``source`` says where it came from ("env WAVY_PASSWORD", "file /run/..."); that is safe to
    show.
    """

    __slots__ = ("_source", "_value")

    def __init__(self, value: str, source: str = "") -> None:
        self._value = value
        self._source = source

    @property
    def source(self) -> str:
        return self._source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, format_spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # Constant time, so equality checks (e.g. a config reload diff) leak no timing.
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class HostPort:
    """A TCP endpoint. ``host`` is a DNS name or an IP literal without brackets."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class BindTarget:
    """One configured bind: where it connects, over what, as which kind of bind, and its
    stable index within the provider.

    The index names the bind in logs and metrics (``wavy#2``); DNS names are resolved by the
    pool at every connect, as Wavy's round-robin ingress requires. ``kind`` is the bind PDU
    it sends (a receiver never gets a submit, a transmitter never a deliver_sm); ``tls`` is
    its host's transport (``tls://``/``tcp://`` in ``hosts``, else the provider's ``tls``).
    """

    host: str
    port: int
    index: int
    kind: BindType
    tls: bool

    def __str__(self) -> str:
        return str(HostPort(self.host, self.port))

    @property
    def can_submit(self) -> bool:
        """A transmitter or transceiver: the pool may send submits on it."""
        return self.kind != "receiver"

    @property
    def can_receive(self) -> bool:
        """A receiver or transceiver: the SMSC may deliver receipts and MO on it."""
        return self.kind != "transmitter"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The ``[gateway]`` table. Paths are absolute; relative ones were resolved against the
    directory of the config file."""

    state_dir: Path = DEFAULT_STATE_DIR
    submit_socket: Path = DEFAULT_SUBMIT_SOCKET
    socket_mode: int = DEFAULT_SOCKET_MODE
    metrics_listen: HostPort | None = HostPort("127.0.0.1", 9465)  # None = no metrics listener
    log_level: LogLevel = "info"
    default_provider: str | None = None  # where messages that match no route go
    api_listen: HostPort | None = None  # optional TCP listener for the submit API
    api_token: Secret | None = None  # bearer token; always set when api_listen is
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    sender_policy: SenderPolicy = "error"  # Wiraya's 3-11 alphanumeric sender rule
    # Seconds a receipt may stay unmatched before it is warned about (log, metric, status).
    unmatched_receipt_after: float = DEFAULT_UNMATCHED_RECEIPT_AFTER


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """The ``[store]`` table: where the durable queue lives and how long finished work stays.

    ``url`` None is the embedded SQLite store in ``gateway.state_dir``; a postgresql:// URL
    (never with a password in it) selects PostgreSQL, with ``password`` from a file or the
    environment when the server asks for one. Messages in a final state, their parts and
    events are deleted ``keep_days`` after their last change.
    """

    url: str | None = None
    password: Secret | None = None
    keep_days: float = DEFAULT_KEEP_DAYS

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]:
        return "sqlite" if self.url is None else "postgresql"


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One ``[[provider]]``: its built-in profile with every override applied, plus the settings
    that belong to this account rather than to the vendor (credentials, routes, TLS files).

    ``profile`` is the merged view the protocol core builds its policies from; ``profile.name``
    stays the built-in profile's name ("wavy"), ``name`` is this provider's own.
    """

    name: str
    profile: ProviderProfile
    system_id: str
    password: Secret
    bind_targets: tuple[BindTarget, ...]
    # The SMSC account this table logs in to (flow.accounts): receipts are correlated per
    # account, so two tables on one account share them. "system_id@host:port,...".
    account: str
    # How the binds were asked for, resolved: (key, count) pairs such as ("binds", 4) or
    # ("transmitters", 2), ("receivers", 2); render_config writes them back.
    bind_counts: tuple[tuple[str, int], ...] = ()
    routes: tuple[str, ...] = ()
    failover: str | None = None
    failover_after: float = DEFAULT_FAILOVER_AFTER  # seconds without a bound bind
    tlv_defaults: tuple[tuple[int, bytes], ...] = ()  # (tag, raw value), in config order
    sender_as_system_id: bool = False  # Wavy: MO replies need source_addr == system_id
    tls_verify: bool = True
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    tls_pin_sha256: bytes | None = None  # SHA-256 of the server's DER certificate
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    bind_timeout: float = DEFAULT_BIND_TIMEOUT
    transliterate: bool = False
    receipt_id_base: ReceiptIdBase = "same"

    def session_config(self, bind_type: BindType) -> SessionConfig:
        """What this provider's binds of ``bind_type`` run their session with. Raises
        LocalProtocolError for a value no bind could use; parse_config reports that as a
        problem, so a loaded config never does."""
        profile = self.profile
        return SessionConfig(
            system_id=self.system_id,
            password=self.password.reveal(),
            system_type=profile.system_type,
            bind_type=bind_type,
            interface_version=profile.interface_version,
            addr_ton=0,
            addr_npi=0,
            window=profile.window,
            response_timeout=profile.response_timeout,
            enquire_link_interval=profile.enquire_link_interval,
            bind_timeout=self.bind_timeout,
        )

    @property
    def can_submit(self) -> bool:
        """Some bind can send submits (not a table of receivers only)."""
        return any(target.can_submit for target in self.bind_targets)

    def default_tlv(self, tag: int) -> bytes | None:
        """The raw value tlv_defaults gives ``tag`` (``template_id`` lands there), else None."""
        for default_tag, raw in self.tlv_defaults:
            if default_tag == tag:
                return raw
        return None


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """One ``[[webhook]]``: where events are pushed, which ones, and how the POST is signed."""

    url: str
    events: tuple[WebhookEvent, ...] = _WEBHOOK_EVENTS
    auth: WebhookAuth = "none"
    username: str | None = None
    password: Secret | None = None  # auth = "basic"
    token: Secret | None = None  # auth = "bearer"
    hmac_secret: Secret | None = None
    timeout: float = DEFAULT_WEBHOOK_TIMEOUT
    batch_size: int = DEFAULT_WEBHOOK_BATCH_SIZE
    max_delay: float = DEFAULT_WEBHOOK_MAX_DELAY
    # https:// only. The receiver's certificate is verified against ``ca_file`` (a private
    # or self-signed one, as Wiraya's callbacks permit) or the system store; ``tls_verify``
    # False (warned) takes any. ``client_cert``/``client_key``: for receivers that ask for one.
    tls_verify: bool = True
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    tls_min_version: TlsVersion = "1.2"
    #: Extra headers on every POST, in order (an API key the receiver wants, a tenant);
    #: never logged, masked by check-config.
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    """A configuration that passed every check; ``warnings`` are what check-config reports."""

    gateway: GatewayConfig
    providers: tuple[ProviderConfig, ...]
    webhooks: tuple[WebhookConfig, ...] = ()
    warnings: tuple[Problem, ...] = ()
    store: StoreConfig = StoreConfig()

    def provider(self, name: str) -> ProviderConfig:
        """The provider called ``name``; KeyError if there is none."""
        for provider in self.providers:
            if provider.name == name:
                return provider
        raise KeyError(name)


# --------------------------------------------------------------------------- entry points


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and check ``path``. Raises ConfigError with every problem found; an unreadable file
    or invalid TOML is a single problem with an empty key path (see :func:`format_problem`)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem("", f"cannot read: {exc.strerror or exc}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([Problem("", "invalid TOML: the file is not UTF-8 text")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message carries "(at line L, column C)" and never the offending value.
        raise ConfigError([Problem("", f"invalid TOML: {exc}")]) from None
    return parse_config(data, base_dir=path.absolute().parent, environ=environ)


def parse_config(
    data: Mapping[str, object],
    *,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Check already-parsed TOML. Relative paths resolve against ``base_dir``; secret files
    against ``$CREDENTIALS_DIRECTORY`` first (systemd ``LoadCredential=``). ``environ`` defaults
    to the process environment. Raises ConfigError listing every problem, in file order."""
    ctx = _Context(base_dir=base_dir, environ=os.environ if environ is None else environ)
    top = _Table(data, "", _TOP_KEYS, ctx)
    gateway_table = top.table("gateway", _GATEWAY_KEYS)
    gateway_data = gateway_table if gateway_table is not None else _Table({}, "gateway", (), ctx)
    gateway = _parse_gateway(gateway_data, ctx)
    store_table = top.table("store", _STORE_KEYS)
    store = _parse_store(store_table, ctx) if store_table is not None else StoreConfig()

    providers = [
        _parse_provider(table, ctx) for table in top.array_of_tables("provider", _PROVIDER_KEYS)
    ]
    if not providers and not any(p.path.startswith("provider") for p in ctx.errors):
        ctx.error("provider", "missing required key: at least one [[provider]] table is needed")
    webhooks = [
        _parse_webhook(table, ctx) for table in top.array_of_tables("webhook", _WEBHOOK_KEYS)
    ]
    providers = _check_accounts(providers, ctx)
    _check_providers(providers, gateway, ctx)
    if ctx.errors:
        raise ConfigError(ctx.errors)
    return Config(
        gateway=gateway,
        providers=tuple(p.config for p in providers),
        webhooks=tuple(webhooks),
        warnings=tuple(ctx.warnings),
        store=store,
    )


def parse_text_settings(
    data: Mapping[str, object], prefix: str
) -> tuple[ProviderProfile, bool]:
    """How one ``[[provider]]`` table encodes text, checked exactly as check-config does:
    its profile with ``data_coding``, ``gsm_extension``, ``concat``, ``max_octets_per_part``
    and ``max_parts`` applied (named after the table's ``name`` when set), and its
    ``transliterate``. For `smppgw encode`, which needs no credentials or hosts: other keys
    are only checked to be known. Raises ConfigError with every problem, paths under
    ``prefix`` (e.g. "provider[0]")."""
    ctx = _Context(base_dir=Path.cwd(), environ={})
    table = _Table(data, prefix, _PROVIDER_KEYS, ctx)
    name = table.string("name", nonempty=True)
    base, _ = _parse_profile_name(table)
    profile = _with_text_settings(table, base)
    transliterate = _default(table.boolean("transliterate"), False)
    if ctx.errors:
        raise ConfigError(ctx.errors)
    if name is not None:
        profile = dataclasses.replace(profile, name=name)
    return profile, transliterate


def format_problem(file: Path | str, problem: Problem) -> str:
    """One line for an operator: ``FILE: key.path: rule`` (or ``FILE: rule`` for the file)."""
    if problem.path:
        return f"{file}: {problem.path}: {problem.rule}"
    return f"{file}: {problem.rule}"


def parse_host_port(text: str) -> HostPort:
    """Parse "host:port" or "[v6]:port"; ValueError says what is wrong (safe to show)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise ValueError(f'expected "[address]:port", got {_quote(text)}')
        host, port_text = text[1:end], text[end + 2 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{_quote(host)} in brackets is not an IPv6 address") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError(f'expected "host:port", got {_quote(text)}')
        if ":" in host:
            raise ValueError(
                f'IPv6 addresses go in brackets, e.g. "[::1]:2775"; got {_quote(text)}'
            )
        if not host:
            raise ValueError(f"missing host before the port in {_quote(text)}")
        if not _HOSTNAME_RE.fullmatch(host):
            raise ValueError(f"{_quote(host)} is not a host name or IPv4 address")
    if not _PORT_RE.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"port must be a number from 1 to 65535, got {_quote(port_text)}")
    return HostPort(host, int(port_text))


# --------------------------------------------------------------------------- reading tables


class _Context:
    """What every table reader shares: where problems go, and where files are looked up."""

    def __init__(self, *, base_dir: Path, environ: Mapping[str, str]) -> None:
        self.base_dir = base_dir
        self.environ = environ
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []

    def error(self, path: str, rule: str) -> None:
        self.errors.append(Problem(path, rule))

    def warn(self, path: str, rule: str) -> None:
        self.warnings.append(Problem(path, rule))

    def resolve(self, text: str) -> Path:
        path = Path(text)
        return path if path.is_absolute() else self.base_dir / path

    def resolve_credential(self, text: str) -> Path:
        # systemd's LoadCredential= puts files in $CREDENTIALS_DIRECTORY and the unit cannot
        # know that path in advance, so a bare credential name must resolve there.
        path = Path(text)
        if path.is_absolute():
            return path
        credentials = self.environ.get("CREDENTIALS_DIRECTORY")
        return (Path(credentials) if credentials else self.base_dir) / path


_S = TypeVar("_S", bound=str)


class _Table:
    """One TOML table under a key path. Every wrong value becomes a Problem and the getter
    returns None, so reading continues and the operator sees all problems in one run.

    Getters never echo a value in a type error, so a misplaced secret cannot leak.
    """

    def __init__(
        self,
        data: Mapping[str, object],
        prefix: str,
        keys: Sequence[str],
        ctx: _Context,
    ) -> None:
        self.data = data
        self.prefix = prefix
        self.ctx = ctx
        for key in data:
            if key not in keys:
                ctx.error(self.path(key), _unknown_rule(key, keys))

    def path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def _wrong_type(self, key: str, expected: str) -> None:
        got = _type_name(self.data[key])
        self.ctx.error(self.path(key), f"expected {expected}, got {got}")

    def string(self, key: str, *, required: bool = False, nonempty: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.ctx.error(self.path(key), "missing required key")
            return None
        if not isinstance(value, str):
            self._wrong_type(key, "a string")
            return None
        if nonempty and not value:
            self.ctx.error(self.path(key), "must not be empty")
            return None
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self._wrong_type(key, "a boolean (true or false)")
            return None
        return value

    def integer(
        self, key: str, *, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self._wrong_type(key, "an integer")
            return None
        if not _in_range(value, minimum, maximum):
            self.ctx.error(self.path(key), _range_rule(minimum, maximum))
            return None
        return value

    def number(
        self,
        key: str,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        positive: bool = False,
    ) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._wrong_type(key, "a number")
            return None
        number = float(value)
        if not math.isfinite(number):
            self.ctx.error(self.path(key), "must be a finite number")
            return None
        if positive and number <= 0:
            self.ctx.error(self.path(key), "must be greater than 0")
            return None
        if not _in_range(number, minimum, maximum):
            self.ctx.error(self.path(key), _range_rule(minimum, maximum))
            return None
        return number

    def choice(self, key: str, choices: tuple[_S, ...]) -> _S | None:
        value = self.string(key)
        if value is None:
            return None
        for candidate in choices:
            if candidate == value:
                return candidate
        self.ctx.error(self.path(key), _choice_rule(value, choices))
        return None

    def array(self, key: str) -> list[object] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            self._wrong_type(key, "an array")
            return None
        return value

    def string_items(self, key: str) -> Iterator[tuple[str, str]]:
        """(path, value) for each string of an array; other items are reported and skipped."""
        items = self.array(key)
        for index, item in enumerate(items or ()):
            path = f"{self.path(key)}[{index}]"
            if isinstance(item, str):
                yield path, item
            else:
                self.ctx.error(path, f"expected a string, got {_type_name(item)}")

    def table(self, key: str, keys: Sequence[str]) -> _Table | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self._wrong_type(key, "a table")
            return None
        return _Table(value, self.path(key), keys, self.ctx)

    def array_of_tables(self, key: str, keys: Sequence[str]) -> list[_Table]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self._wrong_type(key, f"an array of tables ([[{key}]])")
            return []
        tables = []
        for index, item in enumerate(value):
            path = f"{self.path(key)}[{index}]"
            if isinstance(item, dict):
                tables.append(_Table(item, path, keys, self.ctx))
            else:
                self.ctx.error(path, f"expected a table, got {_type_name(item)}")
        return tables

    def secret(
        self, name: str, *, missing_rule: str | None, allow_inline: bool = False
    ) -> Secret | None:
        """Read ``name`` from ``<name>_file``, ``<name>_env`` or (when allowed) ``<name>``.

        Exactly one source may be set. ``missing_rule`` None means the secret is optional.
        """
        sources = [f"{name}_file", f"{name}_env"] + ([name] if allow_inline else [])
        given = [key for key in sources if key in self.data]
        if len(given) > 1:
            self.ctx.error(self.path(given[1]), f"set only one of {', '.join(given)}")
            return None
        if not given:
            if missing_rule is not None:
                # Point at a key the operator can actually write.
                self.ctx.error(self.path(name if allow_inline else sources[0]), missing_rule)
            return None
        key = given[0]
        if key.endswith("_file"):
            return self._secret_from_file(key)
        if key.endswith("_env"):
            return self._secret_from_env(key)
        value = self.data[key]
        if not isinstance(value, str):
            self._wrong_type(key, "a string")
            return None
        self.ctx.warn(
            self.path(key),
            f"{key} is written in the config file; prefer {key}_file (systemd LoadCredential=) "
            f"or {key}_env",
        )
        return Secret(value, "config file")

    def _secret_from_file(self, key: str) -> Secret | None:
        text = self.string(key, nonempty=True)
        if text is None:
            return None
        path = self.ctx.resolve_credential(text)
        try:
            raw = path.read_bytes()
            mode = path.stat().st_mode
        except OSError as exc:
            self.ctx.error(self.path(key), f"cannot read {path}: {exc.strerror or 'error'}")
            return None
        try:
            value = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            # Never echo the codec's message: it quotes the offending byte of the secret.
            self.ctx.error(self.path(key), f"{path} is not UTF-8 text")
            return None
        if not value:
            self.ctx.error(self.path(key), f"{path} is empty")
            return None
        if mode & stat.S_IROTH:
            self.ctx.warn(
                self.path(key),
                f"{path} is readable by every local user (mode {stat.S_IMODE(mode):04o}); "
                "chmod 0600 it or use systemd LoadCredential=",
            )
        return Secret(value, f"file {path}")

    def _secret_from_env(self, key: str) -> Secret | None:
        variable = self.string(key, nonempty=True)
        if variable is None:
            return None
        if not _ENV_NAME_RE.fullmatch(variable):
            self.ctx.error(
                self.path(key), f"{_quote(variable)} is not an environment variable name"
            )
            return None
        value = self.ctx.environ.get(variable)
        if value is None:
            self.ctx.error(self.path(key), f"environment variable {variable} is not set")
            return None
        if not value:
            self.ctx.error(self.path(key), f"environment variable {variable} is empty")
            return None
        return Secret(value, f"env {variable}")

    def host_port(self, key: str) -> HostPort | None:
        text = self.string(key)
        if text is None:
            return None
        try:
            return parse_host_port(text)
        except ValueError as exc:
            self.ctx.error(self.path(key), str(exc))
            return None


# --------------------------------------------------------------------------- [gateway]


def _parse_gateway(table: _Table, ctx: _Context) -> GatewayConfig:
    state_dir = table.string("state_dir", nonempty=True)
    submit_socket_text = table.string("submit_socket", nonempty=True)
    submit_socket = ctx.resolve(submit_socket_text) if submit_socket_text else DEFAULT_SUBMIT_SOCKET
    if len(os.fsencode(submit_socket)) > _MAX_UNIX_SOCKET_PATH:
        ctx.error(
            table.path("submit_socket"),
            f"longer than {_MAX_UNIX_SOCKET_PATH} bytes, the limit of a unix socket path",
        )

    socket_mode = _parse_socket_mode(table)

    metrics_listen: HostPort | None = HostPort("127.0.0.1", 9465)
    if table.data.get("metrics_listen") == "":
        metrics_listen = None
    elif "metrics_listen" in table:
        metrics_listen = table.host_port("metrics_listen")

    api_listen = None if table.data.get("api_listen") == "" else table.host_port("api_listen")
    api_token = None
    if api_listen is not None:
        api_token = table.secret(
            "api_token",
            missing_rule="missing required key: api_listen needs a bearer token "
            "(set api_token_file or api_token_env)",
        )
        if not _is_loopback(api_listen.host):
            ctx.warn(
                table.path("api_listen"),
                "listens beyond loopback without TLS: the token and message text cross the "
                "network in clear; put a TLS proxy in front",
            )
    else:
        for key in ("api_token_file", "api_token_env"):
            if key in table:
                ctx.warn(table.path(key), "ignored because api_listen is not set")

    return GatewayConfig(
        state_dir=ctx.resolve(state_dir) if state_dir else DEFAULT_STATE_DIR,
        submit_socket=submit_socket,
        socket_mode=socket_mode,
        metrics_listen=metrics_listen,
        log_level=table.choice("log_level", _LOG_LEVELS) or "info",
        default_provider=table.string("default_provider", nonempty=True),
        api_listen=api_listen,
        api_token=api_token,
        max_body_bytes=_default(
            table.integer("max_body_bytes", minimum=1024), DEFAULT_MAX_BODY_BYTES
        ),
        sender_policy=table.choice("sender_policy", _SENDER_POLICIES) or "error",
        unmatched_receipt_after=_default(
            table.number("unmatched_receipt_after", positive=True),
            DEFAULT_UNMATCHED_RECEIPT_AFTER),
    )


def _parse_socket_mode(table: _Table) -> int:
    value = table.data.get("socket_mode")
    if value is None:
        return DEFAULT_SOCKET_MODE
    path = table.path("socket_mode")
    if isinstance(value, int) and not isinstance(value, bool):
        # 660 would silently mean 0o1224; only a string says "octal" unambiguously.
        table.ctx.error(path, 'must be an octal string such as "0660", not an integer')
        return DEFAULT_SOCKET_MODE
    text = table.string("socket_mode")
    if text is None:
        return DEFAULT_SOCKET_MODE
    match = _OCTAL_MODE_RE.fullmatch(text)
    if match is None:
        table.ctx.error(path, f'must be an octal string such as "0660", got {_quote(text)}')
        return DEFAULT_SOCKET_MODE
    mode = int(match.group(1), 8)
    if mode & 0o002:
        table.ctx.warn(path, "the submit socket is world-writable: any local user can send SMS")
    return mode


# --------------------------------------------------------------------------- [store]


def _parse_store(table: _Table, ctx: _Context) -> StoreConfig:
    url = table.string("url", nonempty=True)
    if url is not None and not _check_store_url(table, url):
        url = None
    password = table.secret("password", missing_rule=None)
    if password is not None and url is None and "url" not in table:
        ctx.error(table.path("password_file" if "password_file" in table else "password_env"),
                  "only used with url (the embedded SQLite store has no password)")
    keep_days = table.number("keep_days", positive=True)
    return StoreConfig(url=url, password=password,
                       keep_days=_default(keep_days, DEFAULT_KEEP_DAYS))


def _check_store_url(table: _Table, url: str) -> bool:
    """A postgresql:// URL without a password. The URL is never quoted in a rule: a mistaken
    one may carry a password."""
    path = table.path("url")
    try:
        parts = urlsplit(url)
        bad_port = parts.port == 0   # out of range or not a number: ValueError
    except ValueError:
        bad_port = True
    if bad_port:
        table.ctx.error(path, "is not a valid URL: postgresql://USER@HOST:PORT/DATABASE with"
                              " a port from 1 to 65535")
        return False
    if parts.scheme not in _STORE_SCHEMES:
        table.ctx.error(path, "must be a postgresql:// URL (leave url out for the embedded"
                              " SQLite store in gateway.state_dir)")
        return False
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if parts.password is not None or "password" in query:
        table.ctx.error(path, "must not carry a password (it would show in logs and in"
                              " check-config); use password_file or password_env")
        return False
    host = query.get("host") or parts.hostname or ""
    if (host and not host.startswith("/") and not _is_loopback(host)
            and query.get("sslmode") not in _SSL_MODES):
        table.ctx.warn(path, "reaches PostgreSQL over the network without TLS; add"
                             " sslmode=verify-full (or require)")
    return True


# --------------------------------------------------------------------------- [[provider]]


@dataclass(frozen=True, slots=True)
class _ParsedProvider:
    """A provider plus the key paths cross-checks need to point at."""

    config: ProviderConfig
    path: str
    route_paths: tuple[str, ...]
    bind_key: str  # the key that set the bind count, for the account's bind minimum
    hosts: tuple[_Host, ...] = ()
    bind_problem_at: int = 0  # index in the problem list where that key's problems go


def _parse_provider(table: _Table, ctx: _Context) -> _ParsedProvider:
    problems_before = len(ctx.errors)
    name = table.string("name", required=True) or ""
    if name and not _NAME_RE.fullmatch(name):
        ctx.error(table.path("name"), f"must match [a-z0-9_-]+, got {_quote(name)}")

    base, profile_known = _parse_profile_name(table)

    system_id = table.string("system_id", required=True, nonempty=True) or ""
    _check_c_octet(table, "system_id", system_id, _MAX_SYSTEM_ID)
    password = table.secret(
        "password",
        missing_rule="missing required key: set password_file, password_env or password",
        allow_inline=True,
    )
    if password is not None:
        _check_password(table, password)
    system_type = _default(table.string("system_type"), base.system_type)
    _check_c_octet(table, "system_type", system_type, _MAX_SYSTEM_TYPE)

    tls = _default(table.boolean("tls"), base.tls)
    hosts = _parse_hosts(table, base, tls, profile_known=profile_known)
    tls_min_version = _parse_tls_min_version(table, base)
    tls_settings = _parse_tls(table, tls, hosts)
    bind_type = table.choice("bind_type", _BIND_TYPES) or base.bind_type
    binds = _parse_binds(table, base, hosts, bind_type)
    bind_problem_at = len(ctx.errors)  # where the account's bind minimum reports, in order
    enquire_link_interval = _parse_enquire_link_interval(table, base)

    profile = dataclasses.replace(
        _with_text_settings(table, base),
        hosts=tuple(h.text for h in hosts),
        tls=tls,
        tls_min_version=tls_min_version,
        system_type=system_type,
        bind_type=bind_type,
        interface_version=_parse_interface_version(table, base),
        binds=binds.total,
        binds_per_host=binds.per_host,
        window=_default(table.integer("window", minimum=1), base.window),
        rate_per_bind=_parse_rate(table, "rate_per_bind", base.rate_per_bind),
        rate_per_host=_parse_rate(table, "rate_per_host", base.rate_per_host),
        enquire_link_interval=enquire_link_interval,
        response_timeout=_default(
            table.number("response_timeout", positive=True), base.response_timeout
        ),
        default_ton=_parse_enum_int(table, "default_ton", Ton, "§5.2.5", base.default_ton),
        default_npi=_parse_enum_int(table, "default_npi", Npi, "§5.2.6", base.default_npi),
        validity_minutes=_default(
            table.integer("validity_minutes", minimum=0), base.validity_minutes
        ),
        registered_delivery=_default(
            table.integer("registered_delivery", minimum=0, maximum=0x1F),
            base.registered_delivery,
        ),
        max_pdu_octets=_default(
            table.integer("max_pdu_octets", minimum=MIN_PDU_OCTETS, maximum=MAX_PDU_OCTETS),
            base.max_pdu_octets,
        ),

        submit_multi=_default(table.boolean("submit_multi"), base.submit_multi),
        cancel_sm=_default(table.boolean("cancel_sm"), base.cancel_sm),
        message_id_format=table.choice("message_id_format", _MESSAGE_ID_FORMATS)
        or base.message_id_format,
        receipt_style=table.choice("receipt_style", _RECEIPT_STYLES) or base.receipt_style,
    )

    if profile.cancel_sm and base.name in _WITHOUT_CANCEL_SM:
        ctx.warn(table.path("cancel_sm"),
                 f"{base.name}'s SMPP document does not mention cancel_sm: enable it only once "
                 "they confirmed it works (a refused cancel_sm leaves the parts sent)")

    routes, route_paths = _parse_routes(table)
    failover = table.string("failover", nonempty=True)
    failover_after = _default(table.number("failover_after", positive=True), DEFAULT_FAILOVER_AFTER)
    if failover is None and "failover_after" in table:
        ctx.warn(table.path("failover_after"), "ignored because failover is not set")

    config = ProviderConfig(
        name=name,
        profile=profile,
        system_id=system_id,
        password=password or Secret(""),
        bind_targets=binds.targets,
        # Until the cross-checks know every table: this table's own system_id and servers.
        account=account_key(system_id, (endpoint(h.host, h.port) for h in hosts)),
        bind_counts=binds.counts,
        routes=routes,
        failover=failover,
        failover_after=failover_after,
        tlv_defaults=_with_template_id(table, base, _parse_tlv_defaults(table)),
        sender_as_system_id=_default(table.boolean("sender_as_system_id"), False),
        tls_verify=tls_settings.verify,
        ca_file=tls_settings.ca_file,
        client_cert=tls_settings.client_cert,
        client_key=tls_settings.client_key,
        tls_pin_sha256=tls_settings.pin_sha256,
        connect_timeout=_default(
            table.number("connect_timeout", positive=True), DEFAULT_CONNECT_TIMEOUT
        ),
        bind_timeout=_default(table.number("bind_timeout", positive=True), DEFAULT_BIND_TIMEOUT),
        transliterate=_default(table.boolean("transliterate"), False),
        receipt_id_base=table.choice("receipt_id_base", _RECEIPT_ID_BASES) or "same",
    )
    if len(ctx.errors) == problems_before:
        # Whatever the rules above missed that the session itself refuses would make every
        # bind fail locally, silently: the same check here, before a daemon runs with it.
        kinds = dict.fromkeys(t.kind for t in binds.targets) or {bind_type: None}
        try:
            for kind in kinds:
                config.session_config(kind)
        except PduEncodeError as exc:  # a field of the bind PDU: the key of the same name
            ctx.error(table.path(exc.field), f"{exc.rule}: every bind would fail")
        except LocalProtocolError as exc:
            ctx.error(table.prefix, f"no bind could be built: {exc}")
    return _ParsedProvider(config=config, path=table.prefix, route_paths=route_paths,
                           bind_key=binds.key, hosts=tuple(hosts),
                           bind_problem_at=bind_problem_at)


def _check_password(table: _Table, password: Secret) -> None:
    """A password every bind would carry and the SMSC refuse (or that would not even encode)
    is an error, not a warning: the provider would sit in backoff forever. Named by the key
    it came from; the rule never quotes it."""
    key = next((k for k in ("password", "password_file", "password_env") if k in table),
               "password")
    try:
        raw = password.reveal().encode("latin-1")
    except UnicodeEncodeError:
        rule = "is not Latin-1 text, which an SMPP C-Octet String must be"
    else:
        if 0 in raw:
            rule = "holds a NUL octet, which ends an SMPP C-Octet String (§3.1)"
        elif len(raw) > _MAX_PASSWORD:
            rule = f"{len(raw)} octets, more than the {_MAX_PASSWORD} SMPP 3.4 §4.1.1 allows"
        else:
            return
    table.ctx.error(table.path(key), f"{rule}: every bind would fail")
def _parse_profile_name(table: _Table) -> tuple[ProviderProfile, bool]:
    """The built-in profile the table names (generic when none), and whether it is known."""
    profile_name = table.string("profile")
    if profile_name is None:
        return GENERIC, True
    if profile_name in BUILTIN_PROFILES:
        return BUILTIN_PROFILES[profile_name], True
    table.ctx.error(table.path("profile"), _choice_rule(profile_name, tuple(BUILTIN_PROFILES)))
    return GENERIC, False


def _with_text_settings(table: _Table, base: ProviderProfile) -> ProviderProfile:
    """``base`` with the keys that decide how text is encoded and cut (shared with encode)."""
    return dataclasses.replace(
        base,
        data_coding=_parse_data_coding(table, base),
        gsm_extension=_default(table.boolean("gsm_extension"), base.gsm_extension),
        concat=table.choice("concat", _CONCAT_METHODS) or base.concat,
        max_octets_per_part=_default(
            table.integer("max_octets_per_part", minimum=16, maximum=254),
            base.max_octets_per_part,
        ),
        # 255: the most parts a concatenated message can have (3GPP TS 23.040 §9.2.3.24.1).
        max_parts=_default(table.integer("max_parts", minimum=1, maximum=255), base.max_parts),
    )


def _check_c_octet(table: _Table, key: str, value: str, limit: int) -> None:
    if not value.isascii():
        table.ctx.error(table.path(key), "must be ASCII (an SMPP C-Octet String)")
    elif len(value) > limit:
        table.ctx.error(
            table.path(key),
            f"longer than {limit} characters, the SMPP 3.4 §4.1.1 limit (got {len(value)})",
        )


@dataclass(frozen=True, slots=True)
class _Host:
    """One entry of ``hosts``: the endpoint, its transport (a ``tls://``/``tcp://`` scheme,
    else the provider's ``tls``), whether a scheme said so, and its key path."""

    host: str
    port: int
    tls: bool
    explicit: bool
    path: str

    @property
    def text(self) -> str:
        """As written back by render_config: with the scheme when one was given."""
        address = str(HostPort(self.host, self.port))
        if not self.explicit:
            return address
        return f"{'tls' if self.tls else 'tcp'}://{address}"


_HOST_SCHEMES: Final = {"tls": True, "tcp": False}


def _parse_hosts(
    table: _Table, base: ProviderProfile, tls: bool, *, profile_known: bool
) -> list[_Host]:
    path = table.path("hosts")
    hosts: list[_Host] = []
    if "hosts" in table:
        seen: dict[HostPort, str] = {}
        for item_path, text in table.string_items("hosts"):
            scheme, sep, rest = text.partition("://")
            explicit = bool(sep)
            if explicit and scheme not in _HOST_SCHEMES:
                table.ctx.error(item_path, f"unknown transport {_quote(scheme + '://')}: write "
                                           '"tls://host:port", "tcp://host:port" or '
                                           '"host:port" (follows tls)')
                continue
            try:
                address = parse_host_port(rest if explicit else text)
            except ValueError as exc:
                table.ctx.error(item_path, str(exc))
                continue
            if address in seen:
                table.ctx.error(item_path, f"duplicate host (also {seen[address]})")
                continue
            seen[address] = item_path
            hosts.append(_Host(address.host, address.port,
                               _HOST_SCHEMES[scheme] if explicit else tls, explicit, item_path))
        if isinstance(table.data["hosts"], list) and not table.data["hosts"]:
            table.ctx.error(path, "must list at least one host")
    else:
        hosts = [
            _Host(h.host, h.port, tls, False, path)
            for h in (parse_host_port(text) for text in base.hosts)
        ]
        if not hosts and profile_known:  # an unknown profile is reported already
            table.ctx.error(
                path, f'missing required key: profile "{base.name}" has no default hosts'
            )
    if base.name == "wavy":
        for host in hosts:
            if _is_ip(host.host) and not _is_loopback(host.host):
                # A local TLS proxy (tools/haproxy) on 127.0.0.1 is Wavy's own suggestion.
                table.ctx.warn(
                    host.path,
                    "Wavy asks for its DNS name, never IPs: its 4 ingress proxies sit behind "
                    "round-robin DNS with health checks",
                )
    return hosts


@dataclass(frozen=True, slots=True)
class _TlsSettings:
    verify: bool
    ca_file: Path | None
    client_cert: Path | None
    client_key: Path | None
    pin_sha256: bytes | None


def _parse_tls_min_version(table: _Table, base: ProviderProfile) -> TlsVersion:
    """The lowest TLS version offered: 1.2 unless the table asks for less, which is said,
    since OpenSSL only speaks 1.0/1.1 at security level 0 (net/tls.py apply_min_version)."""
    version = table.choice("tls_min_version", _TLS_VERSIONS) or base.tls_min_version
    if version in ("1.0", "1.1") and "tls_min_version" in table:
        table.ctx.warn(
            table.path("tls_min_version"),
            f"TLS {version} lowers OpenSSL's security level to 0 for this provider (SHA-1 "
            "and MD5 handshake signatures, short keys accepted); set it only for an SMSC "
            "that cannot speak TLS 1.2",
        )
    return version


def _parse_tls(table: _Table, tls: bool, hosts: Sequence[_Host]) -> _TlsSettings:
    ctx = table.ctx
    verify = _default(table.boolean("tls_verify"), True)
    ca_file = _existing_file(table, "ca_file", credential=False)
    client_cert = _existing_file(table, "client_cert", credential=False)
    client_key = _existing_file(table, "client_key", credential=True)
    if "client_key" in table and "client_cert" not in table:
        ctx.error(table.path("client_key"), "needs client_cert")
    pin = None
    pin_text = table.string("tls_pin_sha256")
    if pin_text is not None:
        normalised = pin_text.replace(":", "").lower()
        if _PIN_RE.fullmatch(normalised):
            pin = bytes.fromhex(normalised)
        else:
            ctx.error(
                table.path("tls_pin_sha256"),
                "must be 64 hex digits (colons allowed): the SHA-256 of the server's DER "
                "certificate",
            )
    plain = "plain SMPP: the password and every message cross the network unencrypted; " \
            "use it only inside a VPN or behind a local TLS proxy"
    if any(not h.tls and not h.explicit and not _is_loopback(h.host) for h in hosts):
        ctx.warn(table.path("tls"), plain)
    for host in hosts:
        if not host.tls and host.explicit and not _is_loopback(host.host):
            ctx.warn(host.path, plain)
    if not any(h.tls for h in hosts) and (hosts or not tls):
        why = "no host uses TLS" if any(h.explicit for h in hosts) else "tls = false"
        for key in _TLS_ONLY_KEYS:
            if key in table:
                ctx.warn(table.path(key), f"ignored because {why}")
        return _TlsSettings(verify, ca_file, client_cert, client_key, pin)
    if ca_file is not None and not verify:
        # The context could not use it (net/tls.py refuses the pair): every bind would fail.
        ctx.error(table.path("ca_file"), "is not used while tls_verify = false; remove one "
                                         "of them")
    if not verify:
        rule = (
            "certificate verification is off: anyone on the path can pose as the SMSC and "
            "read the password"
        )
        if pin is not None:
            rule = "certificate verification is off; only tls_pin_sha256 identifies the SMSC"
        ctx.warn(table.path("tls_verify"), rule)
    _check_tls_files(table, ca_file if verify else None, client_cert, client_key)
    return _TlsSettings(verify, ca_file, client_cert, client_key, pin)


def _check_tls_files(
    table: _Table, ca_file: Path | None, client_cert: Path | None, client_key: Path | None,
) -> None:
    """Each TLS file as every connect will read it: a problem names its key. Only files
    that exist and are readable are looked into (_existing_file reported the others)."""
    # Imported here, not at the top: the flow layer imports this module for its plain data
    # and must not load ssl; only parsing a config reads certificates.
    from smppgw.net.tls import tls_file_problems

    def readable(path: Path | None) -> Path | None:
        return path if path is not None and path.is_file() and os.access(path, os.R_OK) \
            else None

    for key, problem in tls_file_problems(
        ca_file=readable(ca_file), client_cert=readable(client_cert),
        client_key=readable(client_key) if client_cert is not None else None,
    ):
        table.ctx.error(table.path(key), problem)


def _existing_file(table: _Table, key: str, *, credential: bool) -> Path | None:
    text = table.string(key, nonempty=True)
    if text is None:
        return None
    ctx = table.ctx
    path = ctx.resolve_credential(text) if credential else ctx.resolve(text)
    if not path.is_file():
        ctx.error(table.path(key), f"no such file: {path}")
    elif not os.access(path, os.R_OK):
        ctx.error(table.path(key), f"cannot read {path}: permission denied")
    return path


@dataclass(frozen=True, slots=True)
class _Binds:
    """The binds one table asks for: their targets, their total, the per-host count of the
    ``binds_per_host`` form (else None), the key that set the count, and the resolved
    (key, count) pairs."""

    targets: tuple[BindTarget, ...]
    total: int
    per_host: int | None
    key: str
    counts: tuple[tuple[str, int], ...]


# Separate transmitter and receiver binds: the kind, its total key and its per-host key.
_SPLIT_BINDS: Final[tuple[tuple[BindType, str, str], ...]] = (
    ("transmitter", "transmitters", "transmitters_per_host"),
    ("receiver", "receivers", "receivers_per_host"),
)


def _parse_binds(
    table: _Table, base: ProviderProfile, hosts: Sequence[_Host], bind_type: BindType
) -> _Binds:
    """The bind targets: ``binds``/``binds_per_host`` binds of ``bind_type`` (transceivers
    unless set), or ``transmitters``/``receivers`` (each a total spread over the hosts, or
    ``*_per_host``).

    An explicit count replaces a profile's per-host count (Qikberry's 3 per server), since
    the operator asked for a total; the two forms of one count are ambiguous and refused, as
    are ``binds`` next to transmitters/receivers. The profile's bind minimum (Wavy's 4) is
    checked per account, with transmitters and receivers counted (_check_accounts).
    """
    ctx = table.ctx
    split_keys = [key for _, total, per_host in _SPLIT_BINDS for key in (total, per_host)
                  if key in table]
    if split_keys:
        problems_before = len(ctx.errors)
        for key in ("binds", "binds_per_host", "bind_type"):
            if key in table:
                ctx.error(table.path(key), f"set {key} or {split_keys[0]}, not both: "
                                           "transmitters and receivers are binds of their "
                                           "own kind")
        targets: list[BindTarget] = []
        counts: list[tuple[str, int]] = []
        for kind, total_key, per_host_key in _SPLIT_BINDS:
            total = table.integer(total_key, minimum=0)
            per_host = table.integer(per_host_key, minimum=0)
            if total_key in table and per_host_key in table:
                ctx.error(table.path(per_host_key), f"set {total_key} or {per_host_key}, "
                                                    "not both")
            elif per_host is not None:
                counts.append((per_host_key, per_host))
                targets += _per_host_targets(hosts, per_host, kind, len(targets))
            elif total is not None:
                counts.append((total_key, total))
                targets += _spread_targets(table, total_key, hosts, total, kind, len(targets))
        if not targets and hosts and len(ctx.errors) == problems_before:
            ctx.error(table.path(split_keys[0]), "must give at least one bind")
        return _Binds(tuple(targets), len(targets), None, split_keys[0], tuple(counts))

    binds = table.integer("binds", minimum=1)
    per_host = table.integer("binds_per_host", minimum=1)
    key = "binds"
    if "binds" in table and "binds_per_host" in table:
        ctx.error(table.path("binds_per_host"), "set binds or binds_per_host, not both")
    if "binds_per_host" in table:
        key = "binds_per_host"
        per_host = per_host or base.binds_per_host or 1
    elif "binds" in table:
        per_host = None
    else:
        per_host = base.binds_per_host
    if per_host is not None:
        return _Binds(_per_host_targets(hosts, per_host, bind_type, 0), per_host * len(hosts),
                      per_host, key, (("binds_per_host", per_host),))
    total = binds or base.binds
    return _Binds(_spread_targets(table, "binds", hosts, total, bind_type, 0), total, None,
                  key, (("binds", total),))


def _per_host_targets(
    hosts: Sequence[_Host], per_host: int, kind: BindType, first: int
) -> tuple[BindTarget, ...]:
    """``per_host`` binds of ``kind`` on every host, host after host, indexed from ``first``."""
    return tuple(
        BindTarget(host.host, host.port, first + index * per_host + slot, kind, host.tls)
        for index, host in enumerate(hosts)
        for slot in range(per_host)
    )


def _spread_targets(
    table: _Table, key: str, hosts: Sequence[_Host], total: int, kind: BindType, first: int
) -> tuple[BindTarget, ...]:
    """``total`` binds of ``kind`` round robin over the hosts, indexed from ``first``; a
    host left without one is warned about."""
    if not hosts:
        return ()
    if 0 < total < len(hosts):
        unused = ", ".join(str(HostPort(h.host, h.port)) for h in hosts[total:])
        table.ctx.warn(
            table.path(key),
            f"fewer binds ({total}) than hosts ({len(hosts)}): {unused} get no bind",
        )
    return tuple(
        BindTarget(hosts[i % len(hosts)].host, hosts[i % len(hosts)].port, first + i, kind,
                   hosts[i % len(hosts)].tls)
        for i in range(total)
    )


def _parse_enquire_link_interval(table: _Table, base: ProviderProfile) -> float:
    value = table.number("enquire_link_interval", positive=True)
    if value is None:
        return base.enquire_link_interval
    low, high = base.enquire_link_range
    if not low <= value <= high:
        table.ctx.error(
            table.path("enquire_link_interval"),
            f'must be between {_fmt(low)} and {_fmt(high)} seconds for profile "{base.name}" '
            f"(got {_fmt(value)})",
        )
        return base.enquire_link_interval
    return value


def _parse_interface_version(table: _Table, base: ProviderProfile) -> int:
    value = table.integer("interface_version")
    if value is None:
        return base.interface_version
    if value not in (0x33, 0x34):
        table.ctx.error(
            table.path("interface_version"),
            f"must be 0x34 (SMPP 3.4) or 0x33 (SMPP 3.3), got 0x{value:02X}",
        )
        return base.interface_version
    return value


def _parse_rate(table: _Table, key: str, default: float | None) -> float | None:
    value = table.number(key, minimum=0)
    if value is None:
        return default
    return value or None  # 0 lifts the profile's limit


def _parse_enum_int(
    table: _Table, key: str, enum: type[Ton] | type[Npi], section: str, default: int
) -> int:
    value = table.integer(key)
    if value is None:
        return default
    allowed = sorted(member.value for member in enum)
    if value not in allowed:
        table.ctx.error(
            table.path(key),
            f"must be one of {', '.join(map(str, allowed))} (SMPP 3.4 {section}), got {value}",
        )
        return default
    return value


def _parse_data_coding(table: _Table, profile: ProviderProfile) -> DataCodingMap:
    base = profile.data_coding
    sub = table.table("data_coding", _DATA_CODING_KEYS)
    if sub is None:
        return base
    values: dict[str, int | None] = {}
    for key in _DATA_CODING_KEYS:
        value = sub.data.get(key)
        if value is None:
            continue
        optional = key not in ("gsm7", "ucs2")
        if value is False and optional:
            values[key] = None  # this provider does not offer it
        elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFF:
            rule = _data_coding_rule(key, value, profile)
            if rule is None:
                values[key] = value
            else:
                sub.ctx.error(sub.path(key), rule)
        elif isinstance(value, int) and not isinstance(value, bool):
            sub.ctx.error(sub.path(key), "must be between 0 and 255")
        else:
            expected = "an integer 0-255 or false (not offered)" if optional else "an integer"
            sub.ctx.error(sub.path(key), f"expected {expected}, got {_type_name(value)}")
    return DataCodingMap(
        gsm7=_default(values.get("gsm7"), base.gsm7),
        latin1=values.get("latin1", base.latin1),
        ucs2=_default(values.get("ucs2"), base.ucs2),
        flash_gsm7=values.get("flash_gsm7", base.flash_gsm7),
        flash_ucs2=values.get("flash_ucs2", base.flash_ucs2),
    )


def _data_coding_rule(key: str, value: int, profile: ProviderProfile) -> str | None:
    """Why ``value`` cannot stand for ``key``'s alphabet, None when it can.

    A value labelling another alphabet (latin1 = 8) makes handsets show the wrong
    characters: SMPP 3.4 §5.2.19 and the GSM 03.38 coding groups (3GPP TS 23.038 §4) say
    what each value labels. IA5 (1) is GSM7 or Latin-1 depending on the SMSC: the profile
    says which when its document does (Wavy: Latin-1; Qikberry: GSM 03.38). A flash value
    must also set message class 0, or flash messages would go out as normal ones.
    """
    want = _DATA_CODING_ALPHABET[key]
    coded = data_coding_alphabet(value)
    ia5 = profile.ia5_alphabet
    fits = coded == want or (coded == "ia5" and want != "ucs2" and ia5 in (None, want))
    flash = key.startswith("flash_")
    if flash:
        choices = "0x10 or 0xF0" if want == "gsm7" else "0x18"
    else:
        choices = {
            "gsm7": "0" if ia5 == "latin1" else "0 or 1",
            "latin1": "3" if ia5 == "gsm7" else "3 or 1",
            "ucs2": "8",
        }[want]
    offer = " or false (not offered)" if key not in ("gsm7", "ucs2") else ""
    if not fits:
        if coded is None:
            label = "another alphabet, or a compressed or reserved scheme"
        elif coded == "ia5" and ia5 is not None:
            label = f'IA5, which profile "{profile.name}" reads as {_ALPHABET_NAMES[ia5]}'
        else:
            label = _ALPHABET_NAMES[coded]
        return (
            f"0x{value:02X} labels {label}, not {_ALPHABET_NAMES[want]} "
            f"(SMPP 3.4 §5.2.19, 3GPP TS 23.038 §4): handsets would show the wrong "
            f"characters; use {choices}{offer}"
        )
    if flash and message_class(value) != 0:
        return (
            f"0x{value:02X} sets no message class 0 (3GPP TS 23.038 §4), so flash "
            f"messages would go out as normal ones; use {choices}{offer}"
        )
    return None


def _parse_routes(table: _Table) -> tuple[tuple[str, ...], tuple[str, ...]]:
    routes: list[str] = []
    paths: list[str] = []
    for path, route in table.string_items("routes"):
        if not _ROUTE_RE.fullmatch(route):
            table.ctx.error(
                path, f'must be 1-20 digits, a destination prefix such as "55"; got {_quote(route)}'
            )
        elif route in routes:
            table.ctx.error(path, f"listed twice (also {paths[routes.index(route)]})")
        else:
            routes.append(route)
            paths.append(path)
    return tuple(routes), tuple(paths)


def _parse_tlv_defaults(table: _Table) -> tuple[tuple[int, bytes], ...]:
    value = table.data.get("tlv_defaults")
    if value is None:
        return ()
    if not isinstance(value, dict):
        table._wrong_type("tlv_defaults", "a table")
        return ()
    ctx = table.ctx
    result: list[tuple[int, bytes]] = []
    seen: dict[int, str] = {}
    for key, item in value.items():
        path = f"{table.path('tlv_defaults')}.{key}"
        if _TAG_HEX_RE.fullmatch(key):
            tag = int(key, 16)
        elif _TAG_DEC_RE.fullmatch(key):
            tag = int(key)
        else:
            ctx.error(path, 'the key must be a TLV tag, in hex ("0x1400") or decimal ("5120")')
            continue
        if not 0 < tag <= 0xFFFF:
            ctx.error(path, "the tag must be between 0x0001 and 0xFFFF")
            continue
        if tag in _PER_MESSAGE_TAGS:
            ctx.error(path, f"{Tag(tag).name.lower()} is set per message by smppgw")
            continue
        if tag in seen:
            ctx.error(path, f"same tag as {seen[tag]}")
            continue
        raw = _tlv_value(item, path, ctx)
        if raw is None:
            continue
        seen[tag] = path
        result.append((tag, raw))
    return tuple(result)


def _with_template_id(
    table: _Table, base: ProviderProfile, defaults: tuple[tuple[int, bytes], ...]
) -> tuple[tuple[int, bytes], ...]:
    """``defaults`` plus ``template_id`` as the profile's template TLV (Qikberry 0x1401).

    The key is a named spelling of that TLV default, so it lands in tlv_defaults: every
    message without its own template id carries it, and render_config shows it there.
    """
    text = table.string("template_id", nonempty=True)
    if text is None:
        return defaults
    path = table.path("template_id")
    tag = base.template_id_tag
    if tag is None:
        table.ctx.error(
            path,
            f'profile "{base.name}" has no DLT template TLV; set the tag in tlv_defaults',
        )
        return defaults
    if not text.isascii() or not text.isprintable():
        table.ctx.error(path, "must be printable ASCII (sent as a C-Octet String)")
        return defaults
    if any(default_tag == tag for default_tag, _ in defaults):
        table.ctx.error(path, f"set template_id or tlv_defaults.0x{tag:04X}, not both")
        return defaults
    return (*defaults, (tag, text.encode("ascii") + b"\x00"))


def _tlv_value(item: object, path: str, ctx: _Context) -> bytes | None:
    if isinstance(item, str):
        if not item.isascii() or "\x00" in item:
            ctx.error(path, 'must be ASCII text without NUL; use { hex = "..." } for raw bytes')
            return None
        raw = item.encode("ascii") + b"\x00"  # C-Octet String, SMPP 3.4 §3.1
    elif isinstance(item, dict):
        sub = _Table(item, path, ("hex",), ctx)
        text = sub.string("hex", required=True)
        if text is None:
            return None
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            ctx.error(f"{path}.hex", "must be an even number of hex digits")
            return None
    else:
        ctx.error(path, f'expected a string or {{ hex = "..." }}, got {_type_name(item)}')
        return None
    if len(raw) > 0xFFFF:
        ctx.error(path, "longer than 65535 octets, the TLV length limit")
        return None
    return raw


# --------------------------------------------------------------------------- cross-checks


def _check_providers(
    providers: Sequence[_ParsedProvider], gateway: GatewayConfig, ctx: _Context
) -> None:
    by_name: dict[str, _ParsedProvider] = {}
    for parsed in providers:
        name = parsed.config.name
        if not name:
            continue
        if name in by_name:
            ctx.error(
                f"{parsed.path}.name",
                f'duplicate provider name "{name}" (also {by_name[name].path})',
            )
        else:
            by_name[name] = parsed
    names = tuple(by_name)

    failover_targets = set()
    for parsed in providers:
        failover = parsed.config.failover
        if failover is None:
            continue
        path = f"{parsed.path}.failover"
        if failover == parsed.config.name:
            ctx.error(path, "a provider cannot fail over to itself")
        elif failover not in by_name:
            ctx.error(path, _unknown_provider_rule(failover, names))
        else:
            failover_targets.add(failover)

    default = gateway.default_provider
    if default is not None and default not in by_name:
        ctx.error("gateway.default_provider", _unknown_provider_rule(default, names))

    owners: dict[str, tuple[_ParsedProvider, str]] = {}
    for parsed in providers:
        for route, path in zip(parsed.config.routes, parsed.route_paths):
            if route not in owners:
                owners[route] = (parsed, path)
                continue
            other, other_path = owners[route]
            # The router sends a shared prefix to the provider listed first and fails over
            # from there, so sharing only makes sense when that one fails over to this one.
            if other.config.failover != parsed.config.name:
                ctx.error(
                    path,
                    f'route "{route}" is already served by provider "{other.config.name}" '
                    f"({other_path}); only the failover of the provider listed first may "
                    "share its route",
                )

    for parsed in providers:
        config = parsed.config
        if config.bind_targets and not config.can_submit:
            _check_receive_only(parsed, providers, default, ctx)
            continue
        if not config.routes and config.name not in (default, *failover_targets):
            ctx.warn(
                f"{parsed.path}.routes",
                "no routes and not gateway.default_provider: only messages that name this "
                "provider reach it",
            )
        _check_account_tlvs(parsed, default, failover_targets, ctx)


def _check_receive_only(
    parsed: _ParsedProvider, providers: Sequence[_ParsedProvider], default: str | None,
    ctx: _Context,
) -> None:
    """A table of receivers only sends nothing: no message may be routed to it."""
    name = parsed.config.name
    why = (f'provider "{name}" has only receiver binds, which never send a submit; route '
           "messages to a table of the same account with transmitters or transceivers")
    if parsed.config.routes:
        ctx.error(f"{parsed.path}.routes", why)
    if default == name:
        ctx.error("gateway.default_provider", why)
    for other in providers:
        if other.config.failover == name:
            ctx.error(f"{other.path}.failover", why)


# What two tables of one account must read alike: a receipt on one table's bind is matched
# against the other's messages by the id each derived (smpp/receipt.py message_id_key).
_CORRELATION_KEYS: Final = ("message_id_format", "receipt_id_base", "receipt_style")


def _correlation_settings(config: ProviderConfig) -> tuple[str, str, str]:
    profile = config.profile
    return profile.message_id_format, config.receipt_id_base, profile.receipt_style


def _check_accounts(
    providers: Sequence[_ParsedProvider], ctx: _Context
) -> list[_ParsedProvider]:
    """Which tables log in to the same SMSC account (flow.accounts): each gets the account's
    key, so receipts are correlated across them. Checked per account: the tables read
    message ids alike, the profile's bind minimum (transmitters and receivers counted, all
    tables of the account together), and a receiver for the receipts asked for."""
    tables = [(p.config.system_id,
               frozenset(endpoint(h.host, h.port) for h in p.hosts)) for p in providers]
    groups = account_groups(tables)
    members: dict[int, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    keyed = list(providers)
    # Bind minimums, each reported where its table's bind keys were read (file order).
    late: list[tuple[int, Problem]] = []
    for group, indexes in members.items():
        key = account_key(tables[group][0], (e for i in indexes for e in tables[i][1]))
        for i in indexes:
            keyed[i] = dataclasses.replace(
                providers[i], config=dataclasses.replace(providers[i].config, account=key))
        first = providers[group]
        for i in indexes[1:]:
            parsed = providers[i]
            ours, theirs = (_correlation_settings(parsed.config),
                            _correlation_settings(first.config))
            for name, mine, other in zip(_CORRELATION_KEYS, ours, theirs, strict=True):
                if mine != other:
                    ctx.error(
                        f"{parsed.path}.{name}",
                        f'"{mine}" differs from "{other}" of {first.path}, a table of the same '
                        f'SMSC account (system_id "{first.config.system_id}" on a server '
                        "both list): receipts on either table's binds are matched to both "
                        "tables' messages, so both must read message ids alike",
                    )
        account = [providers[i] for i in indexes]
        for parsed in account:
            rule = _bind_minimum_rule(parsed, account)
            if rule is not None:
                late.append((parsed.bind_problem_at, Problem(
                    f"{parsed.path}.{parsed.bind_key}", rule)))
        receiving = any(t.can_receive for p in account for t in p.config.bind_targets)
        for parsed in account:
            config = parsed.config
            if (not receiving and config.can_submit
                    and config.profile.registered_delivery & 0x03):
                ctx.warn(
                    f"{parsed.path}.{parsed.bind_key}",
                    f"receipts are asked for (registered_delivery = "
                    f"{config.profile.registered_delivery}) but no bind of this account can "
                    "receive them: add receivers, here or in another table of the same "
                    "account, or set registered_delivery = 0",
                )
    # Last first, so each index still points where it did; ties keep the tables' order.
    for position, problem in reversed(sorted(late, key=lambda item: item[0])):
        ctx.errors.insert(position, problem)
    return keyed


def _bind_minimum_rule(
    parsed: _ParsedProvider, account: Sequence[_ParsedProvider]
) -> str | None:
    """Why the profile's bind minimum (Wavy: 4, for HA and load balancing) is not met, None
    when it is. It counts every bind of the account: transceivers, transmitters and
    receivers, in this table and in the others."""
    config = parsed.config
    profile = config.profile
    if not parsed.hosts or not config.bind_targets:
        return None  # no host or no bind: said already
    total = sum(len(p.config.bind_targets) for p in account)
    if total >= profile.min_binds:
        return None
    own = len(config.bind_targets)
    got = f"{own} binds over {len(parsed.hosts)} hosts" if profile.binds_per_host else f"{own}"
    rule = f'must give at least {profile.min_binds} binds for profile "{profile.name}" (got {got})'
    if len(account) > 1:
        others = ", ".join(p.path for p in account if p is not parsed)
        rule += f"; {total} with those of {others}, on the same account"
    return rule


def _check_account_tlvs(
    parsed: _ParsedProvider, default: str | None, failover_targets: set[str], ctx: _Context
) -> None:
    """Warn when a provider that may carry Indian traffic lacks a DLT default (Qikberry's
    PE_ID 0x1400 and Telemarketer_ID 0x1402, seed 004 "Additional TLV").

    Indian traffic may arrive through a route overlapping +91, with no routes at all (named
    messages), as the default provider or as a failover target. A message can still carry
    the ids in its own ``tlvs``, hence a warning rather than an error.
    """
    config = parsed.config
    missing = [
        (tag, what) for tag, what in config.profile.account_tlvs if config.default_tlv(tag) is None
    ]
    if not missing:
        return
    indian = any(r.startswith(dlt) or dlt.startswith(r)
                 for r in config.routes for dlt in config.profile.dlt_prefixes)
    if config.routes and not indian and config.name not in (default, *failover_targets):
        return
    named = " and ".join(f"0x{tag:04X} ({what})" for tag, what in missing)
    example = ", ".join(f'0x{tag:04X} = "..."' for tag, _ in missing)
    ctx.warn(
        f"{parsed.path}.tlv_defaults",
        f"no default for {named}: India's DLT rules require them on every message "
        f'(Qikberry\'s SMPP document, "Additional TLV"), and messages to India without them '
        f"are rejected; set tlv_defaults = {{ {example} }} unless every message carries "
        "them in its tlvs",
    )


# --------------------------------------------------------------------------- [[webhook]]


def _parse_webhook(table: _Table, ctx: _Context) -> WebhookConfig:
    url = table.string("url", required=True, nonempty=True) or ""
    # The URL is never quoted in a rule: a query string may carry a token.
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            ctx.error(table.path("url"), "must be an http:// or https:// URL with a host")
        elif parts.username is not None or parts.password is not None:
            ctx.error(
                table.path("url"),
                'must not carry credentials (they would show in logs); use auth = "basic"',
            )
        elif parts.scheme == "http" and not _is_loopback(parts.hostname):
            ctx.warn(
                table.path("url"),
                "plain http: phone numbers, message text and credentials cross the network "
                "unencrypted",
            )

    events: list[WebhookEvent] = []
    if "events" in table:
        for path, text in table.string_items("events"):
            event = next((e for e in _WEBHOOK_EVENTS if e == text), None)
            if event is None:
                ctx.error(path, _choice_rule(text, _WEBHOOK_EVENTS))
            elif event in events:
                ctx.error(path, f'"{event}" listed twice')
            else:
                events.append(event)
        if isinstance(table.data["events"], list) and not table.data["events"]:
            ctx.error(table.path("events"), "must list at least one event type")

    auth = table.choice("auth", _WEBHOOK_AUTHS) or "none"
    basic_keys = ("username", "password_file", "password_env")
    bearer_keys = ("token_file", "token_env")
    username = password = token = None
    if auth == "basic":
        username = table.string("username", required=True, nonempty=True)
        if username is not None and ":" in username:
            ctx.error(table.path("username"), 'must not contain ":" (RFC 7617)')
        password = table.secret(
            "password",
            missing_rule='missing required key: auth = "basic" needs password_file or password_env',
        )
    elif auth == "bearer":
        token = table.secret(
            "token",
            missing_rule='missing required key: auth = "bearer" needs token_file or token_env',
        )
    for keys, needed in ((basic_keys, "basic"), (bearer_keys, "bearer")):
        if auth != needed:
            for key in keys:
                if key in table:
                    ctx.error(table.path(key), f'only used with auth = "{needed}"')

    https = url.startswith("https://")
    verify = _default(table.boolean("tls_verify"), True)
    min_version = table.choice("tls_min_version", _TLS_VERSIONS) or "1.2"
    ca_file = _existing_file(table, "ca_file", credential=False)
    client_cert = _existing_file(table, "client_cert", credential=False)
    client_key = _existing_file(table, "client_key", credential=True)
    if "client_key" in table and "client_cert" not in table:
        ctx.error(table.path("client_key"), "needs client_cert")
    if url and not https:
        for key in ("tls_verify", "tls_min_version", "ca_file", "client_cert", "client_key"):
            if key in table:
                ctx.warn(table.path(key), "ignored because the url is not https://")
    elif not verify:
        if ca_file is not None:
            ctx.error(table.path("ca_file"), "is ignored while tls_verify is false; remove "
                                             "one of them")
        ctx.warn(table.path("tls_verify"),
                 "certificate verification is off: anyone on the path can pose as the "
                 "receiver and read every event (numbers, texts, credentials)")
    headers = _parse_webhook_headers(table, auth)

    return WebhookConfig(
        url=url,
        events=tuple(events) if "events" in table else _WEBHOOK_EVENTS,
        auth=auth,
        username=username,
        password=password,
        token=token,
        hmac_secret=table.secret("hmac_secret", missing_rule=None),
        timeout=_default(table.number("timeout", positive=True), DEFAULT_WEBHOOK_TIMEOUT),
        batch_size=_default(
            table.integer("batch_size", minimum=1, maximum=10_000), DEFAULT_WEBHOOK_BATCH_SIZE
        ),
        max_delay=_default(table.number("max_delay", positive=True), DEFAULT_WEBHOOK_MAX_DELAY),
        tls_verify=verify,
        ca_file=ca_file,
        client_cert=client_cert,
        client_key=client_key,
        tls_min_version=min_version,
        headers=headers,
    )


def _parse_webhook_headers(table: _Table, auth: str) -> tuple[tuple[str, str], ...]:
    """``headers = { "X-ApiKey" = "...", ... }``: names and values HTTP allows, none that
    smppgw sets itself, each name once (case-insensitively, as HTTP compares them)."""
    if "headers" not in table:
        return ()
    ctx = table.ctx
    raw = table.data["headers"]
    if not isinstance(raw, Mapping):
        ctx.error(table.path("headers"), 'must be a table of header = "value"')
        return ()
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in raw.items():
        path = f"{table.path('headers')}.{_quote(str(name))}"
        folded = str(name).lower()
        if not _HEADER_NAME_RE.fullmatch(str(name)):
            ctx.error(path, "is not an HTTP header name (letters, digits and !#$%&'*+.^_`|~-)")
        elif folded in _WEBHOOK_OWN_HEADERS or (folded == "authorization" and auth != "none"):
            ctx.error(path, "is set by smppgw itself" + (
                f' (auth = "{auth}")' if folded == "authorization" else ""))
        elif folded in seen:
            ctx.error(path, "is given twice (header names ignore case)")
        elif not isinstance(value, str) or not _HEADER_VALUE_RE.fullmatch(value):
            ctx.error(path, "must be a string of visible ASCII (no line breaks), at most "
                            "4096 characters")
        else:
            seen.add(folded)
            headers.append((str(name), value))
    return tuple(headers)


# --------------------------------------------------------------------------- rendering


def render_config(config: Config) -> str:
    """The resolved configuration as TOML, profile defaults included, every secret "***"
    (URLs too: see mask_url).

    The output parses as TOML, so it can be diffed or fed back to check-config; a secret's
    source ("env WAVY_PASSWORD") is shown as a comment.
    """
    lines = ['# smppgw resolved configuration: profile defaults merged, secrets shown as "***"']
    gateway = config.gateway
    lines += [
        "",
        "[gateway]",
        _kv("state_dir", str(gateway.state_dir)),
        _kv("submit_socket", str(gateway.submit_socket)),
        _kv("socket_mode", f"{gateway.socket_mode:04o}"),
        _kv("metrics_listen", str(gateway.metrics_listen or "")),
        _kv("log_level", gateway.log_level),
    ]
    if gateway.default_provider is not None:
        lines.append(_kv("default_provider", gateway.default_provider))
    lines.append(_kv("api_listen", str(gateway.api_listen or "")))
    lines += _secret_line("api_token", gateway.api_token)
    lines += [
        _kv("max_body_bytes", gateway.max_body_bytes),
        _kv("sender_policy", gateway.sender_policy),
        _kv("unmatched_receipt_after", gateway.unmatched_receipt_after),
    ]
    store = config.store
    lines += ["", "[store]"]
    if store.url is None:
        lines.append("# url not set: the embedded SQLite store in gateway.state_dir")
    else:
        lines.append(_kv("url", store.url))
    lines += _secret_line("password", store.password)
    lines.append(_kv("keep_days", store.keep_days))
    for provider in config.providers:
        lines += ["", *_render_provider(provider)]
    for webhook in config.webhooks:
        lines += ["", *_render_webhook(webhook)]
    return "\n".join(lines) + "\n"


def _render_provider(provider: ProviderConfig) -> list[str]:
    profile = provider.profile
    coding = profile.data_coding
    coding_items = ", ".join(
        f"{key} = {_toml(getattr(coding, key) if getattr(coding, key) is not None else False)}"
        for key in _DATA_CODING_KEYS
    )
    lines = [
        "[[provider]]",
        _kv("name", provider.name),
        _kv("profile", profile.name),
        _kv("system_id", provider.system_id),
        *_secret_line("password", provider.password),
        _kv("routes", list(provider.routes)),
    ]
    if provider.failover is not None:
        lines += [
            _kv("failover", provider.failover),
            _kv("failover_after", provider.failover_after),
        ]
    lines += [
        _kv("sender_as_system_id", provider.sender_as_system_id),
        _kv("hosts", list(profile.hosts)),
        _kv("tls", profile.tls),
        _kv("tls_verify", provider.tls_verify),
        _kv("tls_min_version", profile.tls_min_version),
    ]
    for key, path in (
        ("ca_file", provider.ca_file),
        ("client_cert", provider.client_cert),
        ("client_key", provider.client_key),
    ):
        if path is not None:
            lines.append(_kv(key, str(path)))
    if provider.tls_pin_sha256 is not None:
        lines.append(_kv("tls_pin_sha256", provider.tls_pin_sha256.hex()))
    lines.append(_kv("system_type", profile.system_type))
    if not any(key.startswith(("transmitters", "receivers")) for key, _ in provider.bind_counts):
        lines.append(_kv("bind_type", profile.bind_type))
    lines.append(f"interface_version = 0x{profile.interface_version:02x}")
    lines += [_kv(key, count) for key, count in provider.bind_counts]
    lines += [
        _kv("window", profile.window),
        _kv("rate_per_bind", profile.rate_per_bind or 0),
        _kv("rate_per_host", profile.rate_per_host or 0),
        _kv("enquire_link_interval", profile.enquire_link_interval),
        _kv("response_timeout", profile.response_timeout),
        _kv("connect_timeout", provider.connect_timeout),
        _kv("bind_timeout", provider.bind_timeout),
        _kv("default_ton", profile.default_ton),
        _kv("default_npi", profile.default_npi),
        _kv("validity_minutes", profile.validity_minutes),
        _kv("registered_delivery", profile.registered_delivery),
        f"data_coding = {{ {coding_items} }}",
        _kv("gsm_extension", profile.gsm_extension),
        _kv("transliterate", provider.transliterate),
        _kv("concat", profile.concat),
        _kv("max_octets_per_part", profile.max_octets_per_part),
        _kv("max_parts", profile.max_parts),
        _kv("max_pdu_octets", profile.max_pdu_octets),
        _kv("submit_multi", profile.submit_multi),
        _kv("cancel_sm", profile.cancel_sm),
        _kv("message_id_format", profile.message_id_format),
        _kv("receipt_id_base", provider.receipt_id_base),
        _kv("receipt_style", profile.receipt_style),
    ]
    if provider.tlv_defaults:
        items = ", ".join(f"0x{tag:04x} = {_tlv_toml(raw)}" for tag, raw in provider.tlv_defaults)
        lines.append(f"tlv_defaults = {{ {items} }}")
    lines.append(f"# account (receipts are matched across its tables): {provider.account}")
    lines.append("# bind targets:")
    lines += [f"#   {provider.name}#{t.index} {t.kind} {'tls' if t.tls else 'tcp'}://{t}"
              for t in provider.bind_targets]
    return lines


def mask_url(url: str) -> str:
    """``url`` as check-config may print it: userinfo and every query and fragment value
    replaced by ``***`` (a token can hide under any name), the rest kept for recognition."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = "&".join(
        f"{name}=***" if sep else name
        for name, sep, _ in (item.partition("=") for item in parts.query.split("&"))
    ) if parts.query else ""
    fragment = "***" if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _render_webhook(webhook: WebhookConfig) -> list[str]:
    lines = [
        "[[webhook]]",
        _kv("url", mask_url(webhook.url)),
        _kv("events", list(webhook.events)),
        _kv("auth", webhook.auth),
    ]
    if webhook.username is not None:
        lines.append(_kv("username", webhook.username))
    lines += _secret_line("password", webhook.password)
    lines += _secret_line("token", webhook.token)
    lines += _secret_line("hmac_secret", webhook.hmac_secret)
    lines += [
        _kv("timeout", webhook.timeout),
        _kv("batch_size", webhook.batch_size),
        _kv("max_delay", webhook.max_delay),
    ]
    if webhook.url.startswith("https://"):
        lines += [_kv("tls_verify", webhook.tls_verify),
                  _kv("tls_min_version", webhook.tls_min_version)]
        for key in ("ca_file", "client_cert", "client_key"):
            path = getattr(webhook, key)
            if path is not None:
                lines.append(_kv(key, str(path)))
    if webhook.headers:
        # Values masked: a header is often where a receiver wants its API key.
        items = ", ".join(f"{_toml(name)} = \"***\"" for name, _ in webhook.headers)
        lines.append(f"headers = {{ {items} }}")
    return lines


def _secret_line(key: str, secret: Secret | None) -> list[str]:
    if secret is None:
        return []
    return [f'{key} = "***"  # from {secret.source}' if secret.source else f'{key} = "***"']


def _kv(key: str, value: str | int | float | bool | list[str]) -> str:
    return f"{key} = {_toml(value)}"


def _toml(value: str | int | float | bool | list[str]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    # JSON string escapes are valid TOML basic-string escapes; TOML also forbids a raw DEL.
    return json.dumps(value).replace("\x7f", "\\u007f")


def _tlv_toml(raw: bytes) -> str:
    text = raw[:-1]
    if raw.endswith(b"\x00") and text.isascii() and text.decode("ascii").isprintable():
        return _toml(text.decode("ascii"))
    return f'{{ hex = "{raw.hex()}" }}'


# --------------------------------------------------------------------------- small helpers

_T = TypeVar("_T")


def _default(value: _T | None, default: _T) -> _T:
    return default if value is None else value


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


def _in_range(value: float, minimum: float | None, maximum: float | None) -> bool:
    return (minimum is None or value >= minimum) and (maximum is None or value <= maximum)


def _range_rule(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"must be between {_fmt(minimum)} and {_fmt(maximum)}"
    if minimum is not None:
        return f"must be at least {_fmt(minimum)}"
    return f"must be at most {_fmt(maximum or 0)}"


def _choice_rule(value: str, choices: Sequence[str]) -> str:
    listed = ", ".join(f'"{c}"' for c in choices)
    rule = f"must be one of {listed}; got {_quote(value)}"
    close = difflib.get_close_matches(value, choices, n=1)
    return f'{rule} (did you mean "{close[0]}"?)' if close else rule


def _unknown_rule(key: str, keys: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, keys, n=1)
    return f'unknown key (did you mean "{close[0]}"?)' if close else "unknown key"


def _unknown_provider_rule(name: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    rule = f'unknown provider "{name}"'
    return f'{rule} (did you mean "{close[0]}"?)' if close else rule


def _fmt(value: float) -> str:
    # Integers in full (1048576, not 1.04858e+06); other numbers as short as exact.
    return str(value) if isinstance(value, int) else f"{value:g}"


def _quote(text: str) -> str:
    return json.dumps(text)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
