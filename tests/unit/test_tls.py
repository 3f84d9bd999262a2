"""TLS settings → SSLContext, certificate generation, pinning and expiry.

Handshakes run between two SSLObjects joined by memory BIOs: no sockets, no event loop.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import stat
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from smppgw.net.certs import (
    CertificatePaths,
    certificate_sha256,
    generate_ca_and_leaf,
    generate_self_signed,
)
from smppgw.net.tls import (
    TlsError,
    TlsPinMismatch,
    TlsSettings,
    apply_min_version,
    certificate_pins,
    check_pin,
    client_context,
    normalize_pin,
    peer_certificate_expiry,
    server_hostname,
)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> CertificatePaths:
    return generate_ca_and_leaf(tmp_path_factory.mktemp("chain"), days=10)


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> CertificatePaths:
    return generate_self_signed(tmp_path_factory.mktemp("self"), days=3)


def server_context(paths: CertificatePaths) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(paths.cert, paths.key)
    return context


def handshake(
    client: ssl.SSLContext, server: ssl.SSLContext, hostname: str | None
) -> ssl.SSLObject:
    """Run a TLS handshake in memory; returns the client's SSLObject or raises its error."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client_obj = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    server_obj = server.wrap_bio(s_in, s_out, server_side=True)
    client_done = server_done = False
    for _ in range(20):
        if not client_done:
            try:
                client_obj.do_handshake()
                client_done = True
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        if not server_done:
            try:
                server_obj.do_handshake()
                server_done = True
            except ssl.SSLWantReadError:
                pass
        c_in.write(s_out.read())
        if client_done and server_done:
            return client_obj
    raise AssertionError("handshake did not finish in 20 rounds")


# --- settings → context ----------------------------------------------------------------------


def test_defaults_verify_the_peer_and_its_name_with_tls_1_2_minimum() -> None:
    context = client_context(TlsSettings(enabled=True))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert TlsSettings(enabled=True).insecure is False


def test_verification_is_off_only_when_asked() -> None:
    settings = TlsSettings(enabled=True, verify=False)
    context = client_context(settings)
    assert context.verify_mode == ssl.CERT_NONE
    assert context.check_hostname is False
    assert settings.insecure is True
    pinned = TlsSettings(enabled=True, verify=False, pin_sha256="ab" * 32)
    assert pinned.insecure is False  # pinned: not verified by a CA, yet not blind either


def test_hostname_check_can_be_turned_off_alone() -> None:
    context = client_context(TlsSettings(enabled=True, check_hostname=False))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is False


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.2", ssl.TLSVersion.TLSv1_2), ("1.3", ssl.TLSVersion.TLSv1_3)],
)
def test_min_version(version: str, expected: ssl.TLSVersion) -> None:
    context = client_context(TlsSettings(enabled=True, min_version=version))  # type: ignore[arg-type]
    assert context.minimum_version == expected


def test_min_version_1_0_lowers_the_security_level_and_negotiates(
    chain: CertificatePaths,
) -> None:
    context = client_context(TlsSettings(enabled=True, min_version="1.0", ca_file=str(chain.ca)))
    assert context.minimum_version == ssl.TLSVersion.TLSv1
    # An old server that speaks TLS 1.0 only, as Qikberry's documentation allows.
    old_server = server_context(chain)
    apply_min_version(old_server, "1.0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old_server.maximum_version = ssl.TLSVersion.TLSv1
    try:
        client = handshake(context, old_server, "localhost")
    except ssl.SSLError as exc:  # pragma: no cover - depends on the OpenSSL build
        pytest.skip(f"this OpenSSL cannot speak TLS 1.0 at all: {exc}")
    assert client.version() == "TLSv1"
    # Without @SECLEVEL=0, OpenSSL 3 refuses the same handshake: the reason for the code.
    strict = client_context(TlsSettings(enabled=True, ca_file=str(chain.ca)))
    strict.minimum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        handshake(strict, old_server, "localhost")


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        (TlsSettings(enabled=True, min_version="1.4"), "min_version"),  # type: ignore[arg-type]
        (TlsSettings(enabled=True, client_key="/k.pem"), "client_key"),
        (TlsSettings(enabled=True, pin_sha256="nothex"), "pin_sha256"),
        (TlsSettings(enabled=True, verify=False, ca_file="/ca.pem"), "ca_file"),
    ],
)
def test_bad_settings_are_reported_by_key(settings: TlsSettings, key: str) -> None:
    assert [k for k, _ in settings.problems()] == [key]
    with pytest.raises(TlsError, match=key):
        client_context(settings)


def test_unreadable_files_raise_tls_error(tmp_path: Path, self_signed: CertificatePaths) -> None:
    with pytest.raises(TlsError, match="ca_file"):
        client_context(TlsSettings(enabled=True, ca_file=str(tmp_path / "missing.pem")))
    other = generate_self_signed(tmp_path, prefix="other")
    with pytest.raises(TlsError, match="client_cert"):
        client_context(
            TlsSettings(enabled=True, client_cert=str(self_signed.cert), client_key=str(other.key))
        )


def test_client_certificate_is_loaded(self_signed: CertificatePaths) -> None:
    context = client_context(
        TlsSettings(
            enabled=True, client_cert=str(self_signed.cert), client_key=str(self_signed.key)
        )
    )
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_server_hostname_for_sni() -> None:
    assert server_hostname(TlsSettings(enabled=True), "smpp1.txtsms.me") == "smpp1.txtsms.me"
    override = TlsSettings(enabled=True, server_hostname="smpp-messaging.wavy.global")
    assert server_hostname(override, "127.0.0.1") == "smpp-messaging.wavy.global"
    assert server_hostname(TlsSettings(enabled=False), "host") is None


def test_normalize_pin_accepts_openssl_fingerprint_format() -> None:
    digest = "AB:" * 31 + "CD"
    assert normalize_pin(digest) == "ab" * 31 + "cd"
    with pytest.raises(ValueError):
        normalize_pin("ab" * 31)


# --- certificates ----------------------------------------------------------------------------


def test_self_signed_certificate_has_sans_validity_and_private_key(
    self_signed: CertificatePaths,
) -> None:
    certificate = x509.load_pem_x509_certificate(self_signed.cert.read_bytes())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime == datetime.timedelta(days=3, hours=1)
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
    assert stat.S_IMODE(self_signed.key.stat().st_mode) == 0o600
    assert self_signed.ca == self_signed.cert


def test_rsa_and_custom_names(tmp_path: Path) -> None:
    paths = generate_self_signed(
        tmp_path, names=("sim.test", "alt.test"), ips=("10.0.0.1",), key_type="rsa"
    )
    certificate = x509.load_pem_x509_certificate(paths.cert.read_bytes())
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 2048
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["sim.test", "alt.test"]


def test_certificate_generation_rejects_nonsense(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_self_signed(tmp_path, names=(), ips=())
    with pytest.raises(ValueError):
        generate_self_signed(tmp_path, days=0)
    with pytest.raises(ValueError):
        generate_self_signed(tmp_path, key_type="dsa")  # type: ignore[arg-type]


def test_ca_signed_the_leaf(chain: CertificatePaths) -> None:
    ca = x509.load_pem_x509_certificate(chain.ca.read_bytes())
    leaf = x509.load_pem_x509_certificate(chain.cert.read_bytes())
    leaf.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert chain.ca_key is not None and stat.S_IMODE(chain.ca_key.stat().st_mode) == 0o600


# --- handshakes ------------------------------------------------------------------------------


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1", "::1"])
def test_ca_file_verifies_the_chain_and_the_name(chain: CertificatePaths, hostname: str) -> None:
    context = client_context(TlsSettings(enabled=True, ca_file=str(chain.ca)))
    client = handshake(context, server_context(chain), hostname)
    assert client.version() in ("TLSv1.2", "TLSv1.3")


def test_hostname_mismatch_fails(chain: CertificatePaths) -> None:
    context = client_context(TlsSettings(enabled=True, ca_file=str(chain.ca)))
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch|hostname"):
        handshake(context, server_context(chain), "smpp.example.net")


def test_hostname_mismatch_passes_with_check_hostname_off(chain: CertificatePaths) -> None:
    context = client_context(TlsSettings(enabled=True, ca_file=str(chain.ca), check_hostname=False))
    handshake(context, server_context(chain), "smpp.example.net")


def test_unknown_ca_fails(chain: CertificatePaths, self_signed: CertificatePaths) -> None:
    context = client_context(TlsSettings(enabled=True, ca_file=str(self_signed.ca)))
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(context, server_context(chain), "localhost")


def test_self_signed_certificate_is_its_own_ca(self_signed: CertificatePaths) -> None:
    context = client_context(TlsSettings(enabled=True, ca_file=str(self_signed.ca)))
    handshake(context, server_context(self_signed), "localhost")


def test_pin_matches_certificate_or_public_key(chain: CertificatePaths) -> None:
    context = client_context(TlsSettings(enabled=True, verify=False))
    client = handshake(context, server_context(chain), "localhost")
    fingerprint = certificate_sha256(chain.cert)
    check_pin(client, fingerprint)
    check_pin(client, ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper())
    der = client.getpeercert(binary_form=True)
    assert der is not None
    certificate_pin, spki_pin = certificate_pins(der)
    assert certificate_pin == fingerprint
    check_pin(client, spki_pin)


def test_pin_mismatch_names_what_the_peer_has(
    chain: CertificatePaths, self_signed: CertificatePaths
) -> None:
    context = client_context(TlsSettings(enabled=True, verify=False))
    client = handshake(context, server_context(chain), "localhost")
    wrong = certificate_sha256(self_signed.cert)
    with pytest.raises(TlsPinMismatch) as caught:
        check_pin(client, wrong)
    assert caught.value.expected == wrong
    assert caught.value.certificate_sha256 == certificate_sha256(chain.cert)
    assert wrong in str(caught.value) and certificate_sha256(chain.cert) in str(caught.value)


def test_pin_without_peer_certificate_fails() -> None:
    class NoCertificate:
        def getpeercert(self, binary_form: bool = False) -> None:
            return None

    with pytest.raises(TlsPinMismatch, match="none"):
        check_pin(NoCertificate(), "00" * 32)  # type: ignore[arg-type]
    assert peer_certificate_expiry(NoCertificate()) is None  # type: ignore[arg-type]


def test_peer_certificate_expiry_reads_not_after_even_unverified(
    chain: CertificatePaths,
) -> None:
    context = client_context(TlsSettings(enabled=True, verify=False))
    client = handshake(context, server_context(chain), "localhost")
    assert client.getpeercert() == {}  # what the stdlib gives without verification
    expected = x509.load_pem_x509_certificate(chain.cert.read_bytes()).not_valid_after_utc
    assert peer_certificate_expiry(client) == expected.timestamp()
