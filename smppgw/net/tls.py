"""TLS for the ESME side: an ``ssl.SSLContext`` from TlsSettings, certificate pinning and the
peer certificate's expiry (for the smppgw_tls_peer_certificate_expiry metric).

Builds contexts and reads certificates the handshake already delivered; opens no sockets and
reads no files beyond the ones named in the settings: at every connect (so a replaced file is
used without a restart; the pool calls it off the loop) and when check-config looks at them.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from smppgw.errors import SmppgwError

__all__ = [
    "TLS_VERSIONS",
    "TlsError",
    "TlsPinMismatch",
    "TlsSettings",
    "TlsVersion",
    "apply_min_version",
    "certificate_pins",
    "check_pin",
    "client_context",
    "normalize_pin",
    "peer_certificate_expiry",
    "server_hostname",
    "tls_file_problems",
]

TlsVersion = Literal["1.0", "1.1", "1.2", "1.3"]
TLS_VERSIONS: tuple[TlsVersion, ...] = get_args(TlsVersion)

_SSL_VERSION: dict[str, ssl.TLSVersion] = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}

_HEX_PIN = re.compile(r"[0-9a-f]{64}")


class TlsError(SmppgwError):
    """TLS cannot be set up as configured (bad settings, unreadable certificate or key)."""


class TlsPinMismatch(TlsError):
    """The peer's certificate is not the pinned one: the connection must be closed unused."""

    def __init__(self, expected: str, certificate_sha256: str, spki_sha256: str) -> None:
        self.expected = expected
        self.certificate_sha256 = certificate_sha256
        self.spki_sha256 = spki_sha256
        super().__init__(
            f"peer certificate does not match pin_sha256 {expected}: "
            f"certificate sha256 is {certificate_sha256 or '(none)'}, "
            f"public key (SPKI) sha256 is {spki_sha256 or '(none)'}"
        )


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """TLS of one provider's connections, as configured (profile defaults, then overrides).

    Verification is on unless ``verify`` is explicitly False; the caller logs a warning at
    every connect while it is off. ``check_hostname`` matters only with ``verify``.
    ``min_version`` defaults to 1.2 even for providers that accept 1.0 (Qikberry).
    ``pin_sha256`` (hex, colons and case ignored) pins the peer certificate's SHA-256
    fingerprint (``openssl x509 -noout -fingerprint -sha256``) or the SHA-256 of its public key
    (SPKI), which survives renewal with the same key. ``server_hostname`` overrides the name
    sent in SNI and checked against the certificate (connecting by IP or through a tunnel).
    """

    enabled: bool = False
    verify: bool = True
    check_hostname: bool = True
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    min_version: TlsVersion = "1.2"
    pin_sha256: str | None = None
    server_hostname: str | None = None

    @property
    def insecure(self) -> bool:
        """TLS is on but the peer is not verified by a CA and not pinned either."""
        return self.enabled and not self.verify and not self.pin_sha256

    def problems(self) -> list[tuple[str, str]]:
        """Each problem as (key, rule), for config.py to report under the provider's path."""
        found: list[tuple[str, str]] = []
        if self.min_version not in TLS_VERSIONS:
            found.append(("min_version", f"must be one of {', '.join(TLS_VERSIONS)}"))
        if self.client_key and not self.client_cert:
            found.append(("client_key", "set client_cert too (the key alone is useless)"))
        if self.pin_sha256 is not None:
            try:
                normalize_pin(self.pin_sha256)
            except ValueError as exc:
                found.append(("pin_sha256", str(exc)))
        if self.ca_file and not self.verify:
            found.append(("ca_file", "is ignored while verify is false; remove one of them"))
        return found


def normalize_pin(pin: str) -> str:
    """A pin as 64 lower-case hex digits; accepts ``AB:CD:..`` and blanks. ValueError if not."""
    cleaned = re.sub(r"[\s:]", "", pin).lower()
    if not _HEX_PIN.fullmatch(cleaned):
        raise ValueError("must be a SHA-256 digest: 64 hex digits, colons allowed")
    return cleaned


def apply_min_version(context: ssl.SSLContext, version: str) -> None:
    """Set the lowest protocol version, lowering OpenSSL's security level when below 1.2.

    OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level 1 (their handshake
    signatures use SHA-1 and MD5), whatever ``minimum_version`` says: the handshake simply
    fails with "no protocols available" or "unsupported protocol". ``@SECLEVEL=0`` re-allows
    them. Qikberry documents TLS 1.0 or better; smppgw asks for 1.2 unless told otherwise, so
    this path runs only when an operator lowers ``min_version`` on purpose.
    """
    try:
        target = _SSL_VERSION[version]
    except KeyError:
        raise TlsError(
            f"min_version must be one of {', '.join(TLS_VERSIONS)}, got {version!r}"
        ) from None
    with warnings.catch_warnings():
        # Python deprecates TLSv1/TLSv1_1 as a minimum; we set it deliberately, see above.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = target
    if target < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")


def client_context(settings: TlsSettings) -> ssl.SSLContext:
    """The SSLContext for one provider's connections. Raises TlsError for unusable settings.

    Reads ``ca_file``, ``client_cert`` and ``client_key``, blocking on file I/O: call it off
    the event loop (the pool does, at every connect). Pinning is not done by OpenSSL: the
    caller runs ``check_pin`` on the connection's SSLObject right after the handshake, before
    it writes anything.
    """
    problems = [f"{key}: {rule}" for key, rule in settings.problems()]
    if problems:
        raise TlsError("; ".join(problems))
    # With a ca_file, create_default_context loads only that file: a private provider CA must
    # not be widened to the system store, nor may the system store vouch for a test SMSC.
    ca_file = settings.ca_file if settings.verify and settings.ca_file else None
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load ca_file {settings.ca_file}: {exc}") from None
    apply_min_version(context, settings.min_version)
    if settings.verify:
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = settings.check_hostname
    else:
        # Order matters: check_hostname must be off before verify_mode can be CERT_NONE.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings.client_cert:
        try:
            context.load_cert_chain(settings.client_cert, settings.client_key or None)
        except (OSError, ssl.SSLError) as exc:
            key = f" / client_key {settings.client_key}" if settings.client_key else ""
            raise TlsError(f"cannot load client_cert {settings.client_cert}{key}: {exc}") from None
    return context


def tls_file_problems(
    *, ca_file: Path | None, client_cert: Path | None, client_key: Path | None
) -> list[tuple[str, str]]:
    """(key, rule) for each file a connect could not use, read as ``client_context`` reads
    them: a ca_file without a PEM certificate, a client_cert that is not one, a client_key
    (or, without it, the client_cert file) holding no unencrypted PEM private key, or a key
    that does not belong to the certificate. For check-config, at start and reload. A rule
    never quotes a file's content: a key file is a secret."""
    problems: list[tuple[str, str]] = []
    if ca_file is not None:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            problems.append(("ca_file", f"{ca_file} is not a PEM certificate bundle: "
                                        f"{_ssl_reason(exc)}"))
    if client_cert is None:
        return problems
    try:
        x509.load_pem_x509_certificate(client_cert.read_bytes())
    except (OSError, ValueError):
        problems.append(("client_cert", f"{client_cert} holds no PEM certificate"))
        return problems
    key_key, key_path = ("client_key", client_key) if client_key else ("client_cert",
                                                                      client_cert)
    try:
        load_pem_private_key(key_path.read_bytes(), password=None)
    except TypeError:  # cryptography: "Password was not given but private key is encrypted"
        problems.append((key_key, f"{key_path} holds an encrypted private key; smppgw "
                                  "reads only unencrypted ones (protect the file instead)"))
        return problems
    except (OSError, ValueError):
        problems.append((key_key, f"{key_path} holds no PEM private key"))
        return problems
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(
            str(client_cert), str(client_key) if client_key else None)
    except (OSError, ssl.SSLError) as exc:
        problems.append((key_key, f"{key_path} is not the key of client_cert {client_cert}: "
                                  f"{_ssl_reason(exc)}"))
    return problems


def _ssl_reason(exc: OSError | ssl.SSLError) -> str:
    """OpenSSL's short reason ("NO_CERTIFICATE_OR_CRL_FOUND"), else the error's text."""
    reason = getattr(exc, "reason", None)
    return str(reason) if reason else (exc.strerror or str(exc))


def server_hostname(settings: TlsSettings, host: str) -> str | None:
    """The name for SNI and the hostname check: the override, else the host connected to.

    Pass the configured DNS name here, not the address it resolved to (Wavy's binds spread
    over several addresses of one name, and the certificate names the name).
    """
    if not settings.enabled:
        return None
    return settings.server_hostname or host


_PeerObject = ssl.SSLObject | ssl.SSLSocket


def _peer_der(ssl_object: _PeerObject) -> bytes | None:
    return ssl_object.getpeercert(binary_form=True)


def certificate_pins(der: bytes) -> tuple[str, str]:
    """(certificate SHA-256, SPKI SHA-256) of a DER certificate, in lower-case hex."""
    certificate = x509.load_der_x509_certificate(der)
    spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest(), hashlib.sha256(spki).hexdigest()


def check_pin(ssl_object: _PeerObject, pin: str) -> None:
    """Raise TlsPinMismatch unless the peer certificate (or its public key) has ``pin``.

    Call right after the handshake, before the bind PDU (which carries the password) is sent.
    Works with verification off too: the server always presents its certificate.
    """
    expected = normalize_pin(pin)
    der = _peer_der(ssl_object)
    if der is None:
        raise TlsPinMismatch(expected, "", "")
    certificate_sha256, spki_sha256 = certificate_pins(der)
    if expected not in (certificate_sha256, spki_sha256):
        raise TlsPinMismatch(expected, certificate_sha256, spki_sha256)


def peer_certificate_expiry(ssl_object: _PeerObject) -> float | None:
    """The peer certificate's notAfter as a unix timestamp; None when there is none.

    Read from the DER with ``cryptography`` because ``getpeercert()`` returns an empty dict
    when verification is off, and the expiry matters most for exactly those links.
    """
    der = _peer_der(ssl_object)
    if der is None:
        return None
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    return certificate.not_valid_after_utc.timestamp()
