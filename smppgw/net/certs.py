"""Self-signed certificates for the SMSC simulator, `smppgw demo` and the TLS tests.

Generates keys and X.509 certificates with ``cryptography`` and writes them as PEM files (keys
mode 0600). Never used for a real provider link: those present certificates, we verify them.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "DEFAULT_IPS",
    "DEFAULT_NAMES",
    "CertificatePaths",
    "KeyType",
    "certificate_sha256",
    "generate_ca_and_leaf",
    "generate_self_signed",
]

KeyType = Literal["ec", "rsa"]
_PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

DEFAULT_NAMES: tuple[str, ...] = ("localhost",)
DEFAULT_IPS: tuple[str, ...] = ("127.0.0.1", "::1")

# Certificates start an hour in the past so a peer whose clock runs a little behind accepts
# them straight away.
_BACKDATE = datetime.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class CertificatePaths:
    """Where the PEM files went. ``cert``/``key`` are the server's; ``ca`` is the file a client
    passes as ``ca_file`` to verify it (the certificate itself when self-signed)."""

    cert: Path
    key: Path
    ca: Path
    ca_key: Path | None = None


def _new_key(key_type: KeyType) -> _PrivateKey:
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"key_type must be 'ec' or 'rsa', got {key_type!r}")


def _subject_alt_names(names: Sequence[str], ips: Sequence[str]) -> x509.SubjectAlternativeName:
    general: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    general += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if not general:
        raise ValueError("a certificate needs at least one DNS name or IP address")
    return x509.SubjectAlternativeName(general)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "smppgw"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def _validity(days: int) -> tuple[datetime.datetime, datetime.datetime]:
    if days < 1:
        raise ValueError(f"validity must be at least 1 day, got {days}")
    now = datetime.datetime.now(datetime.UTC)
    return now - _BACKDATE, now + datetime.timedelta(days=days)


def _leaf_key_usage(key: _PrivateKey) -> x509.KeyUsage:
    # RSA key exchange needs keyEncipherment; ECDSA keys only sign.
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(key, rsa.RSAPrivateKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


# serverAuth for the simulator's listener; clientAuth so the same files can serve as a client
# certificate in mutual-TLS tests.
_LEAF_EXTENDED_USAGE = x509.ExtendedKeyUsage(
    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
)


def _write_key(path: Path, key: _PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Created 0600 from the start: there is no window in which another user can read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def _write_cert(path: Path, certificate: x509.Certificate) -> None:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def generate_self_signed(
    directory: str | os.PathLike[str],
    *,
    names: Sequence[str] = DEFAULT_NAMES,
    ips: Sequence[str] = DEFAULT_IPS,
    days: int = 30,
    key_type: KeyType = "ec",
    common_name: str | None = None,
    prefix: str = "server",
) -> CertificatePaths:
    """One self-signed server certificate (``{prefix}.crt``/``{prefix}.key``) in ``directory``.

    The SANs carry ``names`` (DNS) and ``ips``, so clients that check the hostname accept it
    for ``localhost``, 127.0.0.1 and ::1 by default. A client verifies it by using the
    certificate itself as its CA file (``paths.ca`` is ``paths.cert``), or pins it.
    """
    san = _subject_alt_names(names, ips)
    not_before, not_after = _validity(days)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    key = _new_key(key_type)
    subject = _name(common_name or (names[0] if names else ips[0]))
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(key), critical=True)
        .add_extension(_LEAF_EXTENDED_USAGE, critical=False)
        .add_extension(san, critical=False)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = folder / f"{prefix}.crt"
    key_path = folder / f"{prefix}.key"
    _write_cert(cert_path, certificate)
    _write_key(key_path, key)
    return CertificatePaths(cert=cert_path, key=key_path, ca=cert_path)


def generate_ca_and_leaf(
    directory: str | os.PathLike[str],
    *,
    names: Sequence[str] = DEFAULT_NAMES,
    ips: Sequence[str] = DEFAULT_IPS,
    days: int = 30,
    key_type: KeyType = "ec",
    prefix: str = "server",
    ca_name: str = "smppgw test CA",
) -> CertificatePaths:
    """A tiny CA (``ca.crt``/``ca.key``) and a server certificate it signed.

    This is how real providers look (a leaf under a CA), so a client can verify with
    ``ca_file = paths.ca`` and check the hostname: connecting as ``localhost`` passes,
    as any name outside ``names`` fails with a hostname mismatch.
    """
    san = _subject_alt_names(names, ips)
    not_before, not_after = _validity(days)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)

    ca_key = _new_key(key_type)
    ca_subject = _name(ca_name)
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_certificate = (
        x509.CertificateBuilder()
        .subject_name(ca_subject)
        .issuer_name(ca_subject)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = _new_key(key_type)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0] if names else ips[0]))
        .issuer_name(ca_subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(key), critical=True)
        .add_extension(_LEAF_EXTENDED_USAGE, critical=False)
        .add_extension(san, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    ca_path = folder / "ca.crt"
    ca_key_path = folder / "ca.key"
    cert_path = folder / f"{prefix}.crt"
    key_path = folder / f"{prefix}.key"
    _write_cert(ca_path, ca_certificate)
    _write_key(ca_key_path, ca_key)
    _write_cert(cert_path, certificate)
    _write_key(key_path, key)
    return CertificatePaths(cert=cert_path, key=key_path, ca=ca_path, ca_key=ca_key_path)


def certificate_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 fingerprint (lower-case hex) of a PEM certificate file: the value for
    ``pin_sha256``, the same digest ``openssl x509 -noout -fingerprint -sha256`` prints."""
    certificate = x509.load_pem_x509_certificate(Path(path).read_bytes())
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
