"""The files operators install, checked by the tools that will read them: systemd-analyze on
the units, promtool on the alert rules, haproxy on the proxy configurations, and HAProxy run
for real in front of a local TLS server.

A missing tool skips locally (with the package to install) and fails under CI, where
.ci/run installs haproxy, prometheus and systemd.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import shutil
import socket
import ssl
import string
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.system.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "systemd"
HAPROXY = ROOT / "tools" / "haproxy"
PROMETHEUS = ROOT / "tools" / "prometheus"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SHIPPED_EXEC = "/usr/local/bin/smppgw"


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)  # type: ignore[call-overload, no-any-return]


# --- systemd ---------------------------------------------------------------------------------


def unit_settings(path: Path) -> dict[str, list[str]]:
    """Key → every value it is given (systemd keys may repeat), comments skipped."""
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@pytest.fixture
def units_for_verify(tmp_path: Path) -> Path:
    """Copies of the units whose ExecStart names the smppgw this test runs (the venv's), since
    systemd-analyze verify rejects an ExecStart binary that does not exist.
    """
    smppgw = shutil.which("smppgw", path=str(Path(sys.executable).parent)) or shutil.which(
        "smppgw"
    )
    if smppgw is None:
        pytest.fail("the smppgw console script is not installed: pip install -e .")
    service = (SYSTEMD / "smppgw.service").read_text()
    assert f"ExecStart={SHIPPED_EXEC} " in service
    (tmp_path / "smppgw.service").write_text(
        service.replace(f"ExecStart={SHIPPED_EXEC} ", f"ExecStart={smppgw} ")
    )
    shutil.copy(SYSTEMD / "smppgw.socket", tmp_path / "smppgw.socket")
    return tmp_path


def test_systemd_analyze_verify_accepts_the_units(units_for_verify: Path) -> None:
    analyze = require_tool("systemd-analyze", "systemd")
    result = run([analyze, "verify", str(units_for_verify / "smppgw.service"),
                  str(units_for_verify / "smppgw.socket")])
    # User=smppgw need not exist for verify; it does not resolve users. Anything it says about
    # our units is a defect.
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "smppgw" in line]
    assert result.returncode == 0 and ours == [], result.stdout + result.stderr


def test_shipped_service_only_lacks_its_binary_here() -> None:
    analyze = require_tool("systemd-analyze", "systemd")
    result = run([analyze, "verify", str(SYSTEMD / "smppgw.service"),
                  str(SYSTEMD / "smppgw.socket")])
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if "smppgw" in line]
    if Path(SHIPPED_EXEC).exists():
        assert result.returncode == 0 and complaints == [], result.stdout + result.stderr
    else:
        # The one documented complaint: the unit names the system-wide install path.
        assert complaints == [
            f"smppgw.service: Command {SHIPPED_EXEC} is not executable: No such file or directory"
        ], result.stdout + result.stderr


def test_service_unit_settings() -> None:
    s = unit_settings(SYSTEMD / "smppgw.service")
    one = {key: values[-1] for key, values in s.items()}
    assert one["Type"] == "notify"
    assert one["ExecStart"] == f"{SHIPPED_EXEC} run -c /etc/smppgw/smppgw.toml"
    assert one["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert one["WatchdogSec"] == "30"
    assert one["Restart"] == "on-failure" and one["RestartSec"] == "2"
    assert one["User"] == one["Group"] == "smppgw"
    assert one["StateDirectory"] == one["RuntimeDirectory"] == "smppgw"
    assert one["RuntimeDirectoryPreserve"] == "yes"
    assert set(s["LoadCredential"]) == {
        "wavy:/etc/smppgw/credentials/wavy",
        "qikberry:/etc/smppgw/credentials/qikberry",
    }
    # Graceful stop = one response timeout (30 s) + unbind + store flush, with room to spare.
    assert int(one["TimeoutStopSec"]) >= 45
    for key, value in {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "RestrictNamespaces": "yes",
        "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native", "CapabilityBoundingSet": "", "UMask": "0007",
    }.items():
        assert one.get(key) == value, f"{key}={one.get(key)!r}"
    assert "@system-service" in s["SystemCallFilter"]

    sock = {key: values[-1] for key, values in unit_settings(SYSTEMD / "smppgw.socket").items()}
    assert sock["ListenStream"] == "/run/smppgw/submit.sock"
    assert sock["SocketMode"] == "0660" and sock["SocketGroup"] == "smppgw"
    assert sock["Service"] == "smppgw.service"
    assert sock["FileDescriptorName"] == "submit"


def test_service_exposure_stays_low(units_for_verify: Path) -> None:
    analyze = require_tool("systemd-analyze", "systemd")
    result = run([analyze, "security", "--offline=yes", "--no-pager",
                  str(units_for_verify / "smppgw.service")])
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("systemd-analyze security --offline needs systemd 252 or later")
    match = re.search(r"Overall exposure level for smppgw\.service: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0, result.stdout


def test_sysusers_then_tmpfiles_in_a_scratch_root(tmp_path: Path) -> None:
    sysusers = require_tool("systemd-sysusers", "systemd")
    tmpfiles = require_tool("systemd-tmpfiles", "systemd")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    users = SYSTEMD / "smppgw.sysusers.conf"
    dirs = SYSTEMD / "smppgw.tmpfiles.conf"
    if os.geteuid() != 0:
        result = run([sysusers, "--dry-run", f"--root={root}", str(users)])
        assert result.returncode == 0, result.stderr
        assert "Creating user 'smppgw'" in result.stdout + result.stderr
        pytest.skip("creating the tmpfiles.d directories (chown) needs root; sysusers checked")
    result = run([sysusers, f"--root={root}", str(users)])
    assert result.returncode == 0, result.stdout + result.stderr
    passwd = (root / "etc" / "passwd").read_text()
    entry = next(line.split(":") for line in passwd.splitlines() if line.startswith("smppgw:"))
    uid, gid = int(entry[2]), int(entry[3])
    assert entry[5] == "/var/lib/smppgw" and entry[6] == "/usr/sbin/nologin"
    # tmpfiles resolves smppgw through the scratch root's passwd, as at first boot.
    result = run([tmpfiles, f"--root={root}", "--create", str(dirs)])
    assert result.returncode == 0, result.stdout + result.stderr
    run_dir = (root / "run" / "smppgw").stat()
    assert (run_dir.st_uid, run_dir.st_gid, run_dir.st_mode & 0o7777) == (uid, gid, 0o750)
    etc_dir = (root / "etc" / "smppgw").stat()
    assert (etc_dir.st_uid, etc_dir.st_gid, etc_dir.st_mode & 0o7777) == (0, gid, 0o750)
    credentials = (root / "etc" / "smppgw" / "credentials").stat()
    assert (credentials.st_uid, credentials.st_mode & 0o7777) == (0, 0o700)


# The stack the daemon runs (ssl, sqlite3, asyncpg, cryptography, aiohttp, the metrics
# endpoint) under the kernel's memory-deny-write-execute, which is what
# MemoryDenyWriteExecute=yes enforces.
MDWE_PROBE = textwrap.dedent(
    """
    import ctypes, mmap, sys
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(65, 1, 0, 0, 0) != 0:        # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        print("unsupported", ctypes.get_errno()); sys.exit(3)
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        print("W+X was allowed: MDWE not in force"); sys.exit(4)
    except OSError:
        pass
    import asyncio, datetime, sqlite3, ssl, tempfile
    import aiohttp, asyncpg
    from smppgw.store.postgres import PostgresStore
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from prometheus_client import CollectorRegistry
    import smppgw.config, smppgw.logs, smppgw.smpp.codec, smppgw.smpp.receipt, smppgw.systemd
    from smppgw.metrics import Metrics, certificate_not_after, start_metrics_server

    d = tempfile.mkdtemp()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256()))
    open(f"{d}/c.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
    open(f"{d}/k.pem", "wb").write(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    db = sqlite3.connect(f"{d}/s.db")
    db.execute("pragma journal_mode=wal"); db.execute("create table t(x)")
    db.execute("insert into t values (1)"); db.commit()

    async def main():
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(f"{d}/c.pem", f"{d}/k.pem")
        async def echo(reader, writer):
            writer.write(await reader.read(4)); await writer.drain(); writer.close()
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        client_ctx = ssl.create_default_context(cafile=f"{d}/c.pem")
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost")
        writer.write(b"smpp")
        assert await reader.read(4) == b"smpp"
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        assert certificate_not_after(der) > 0
        writer.close(); server.close()
        metrics = Metrics(CollectorRegistry())
        metrics_server = await start_metrics_server(metrics, "127.0.0.1", 0)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{metrics_server.port}/metrics") as r:
                assert r.status == 200
        await metrics_server.close()

    asyncio.run(asyncio.wait_for(main(), 60))
    print("ok")
    """
)


def test_daemon_stack_runs_under_memory_deny_write_execute() -> None:
    result = run([sys.executable, "-c", MDWE_PROBE], cwd=ROOT,
                 env={**os.environ, "PYTHONPATH": str(ROOT)})
    if result.returncode == 3:
        pytest.skip(f"kernel without PR_SET_MDWE (Linux 6.3+): {result.stdout.strip()}")
    assert result.returncode == 0 and result.stdout.strip() == "ok", (
        result.stdout + result.stderr
    )


# --- Prometheus --------------------------------------------------------------------------------


def test_promtool_check_rules() -> None:
    promtool = require_tool("promtool", "prometheus")
    result = run([promtool, "check", "rules", str(PROMETHEUS / "alerts.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_rule_unit_tests() -> None:
    promtool = require_tool("promtool", "prometheus")
    result = run([promtool, "test", "rules", str(PROMETHEUS / "alerts_test.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_use_only_metrics_smppgw_exports() -> None:
    from prometheus_client import CollectorRegistry

    from smppgw.metrics import Metrics

    metrics = Metrics(CollectorRegistry())
    metrics.provider("wavy")
    metrics.webhook("0")
    text = metrics.exposition().decode()
    exported = set(re.findall(r"^# TYPE (smppgw_[a-z_]+) ", text, re.M))
    exported |= set(re.findall(r"^(smppgw_[a-z_]+)", text, re.M))
    used = set(re.findall(r"\b(smppgw_[a-z_]+)\b", (PROMETHEUS / "alerts.yml").read_text()))
    assert used, "no smppgw metric in alerts.yml"
    assert used <= exported, f"alerts.yml uses metrics smppgw does not export: {used - exported}"


# --- HAProxy -----------------------------------------------------------------------------------


@pytest.fixture
def haproxy_config_dir(tmp_path: Path) -> Path:
    """The shipped configurations, copied verbatim when the box has what they name.

    Without ca-certificates the CA path is swapped for a generated CA, and without
    /etc/resolv.conf `parse-resolv-conf` for an explicit nameserver: the rest is checked as is.
    """
    for name in ("haproxy-wavy.cfg", "haproxy-qikberry.cfg"):
        text = (HAPROXY / name).read_text()
        if not CA_BUNDLE.exists():
            ca = tmp_path / "ca.pem"
            if not ca.exists():
                ca.write_bytes(make_ca().cert_pem)
            text = text.replace(str(CA_BUNDLE), str(ca))
        if not Path("/etc/resolv.conf").exists():
            text = text.replace("parse-resolv-conf", "nameserver local 127.0.0.1:53")
        (tmp_path / name).write_text(text)
    return tmp_path


ALLOWED_HAPROXY_WARNING = re.compile(r"could not resolve address '[a-z0-9.-]+', disabling server")


def haproxy_problems(output: str) -> list[str]:
    problems = []
    for line in output.splitlines():
        if "[ALERT]" in line or "[WARNING]" in line:
            if ALLOWED_HAPROXY_WARNING.search(line):
                continue  # no DNS on this box: init-addr none starts without an address
            if re.search(r"(user/uid|gid/group|'chroot'|'maxconn') (was )?already specified",
                         line):
                continue  # both files at once: repeated global settings, first one kept
            problems.append(line)
    return problems


@pytest.mark.parametrize(
    "files",
    [["haproxy-wavy.cfg"], ["haproxy-qikberry.cfg"], ["haproxy-wavy.cfg", "haproxy-qikberry.cfg"]],
    ids=["wavy", "qikberry", "both"],
)
def test_haproxy_accepts_the_shipped_configs(haproxy_config_dir: Path, files: list[str]) -> None:
    haproxy = require_tool("haproxy", "haproxy")
    args = [haproxy, "-c"]
    for name in files:
        args += ["-f", str(haproxy_config_dir / name)]
    result = run(args)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Configuration file is valid" in output
    assert haproxy_problems(output) == [], output


def test_haproxy_configs_listen_on_loopback_only() -> None:
    for name in ("haproxy-wavy.cfg", "haproxy-qikberry.cfg", "haproxy-test.cfg.template"):
        binds = re.findall(r"^\s*bind\s+(\S+)", (HAPROXY / name).read_text(), re.M)
        assert binds and all(b.startswith("127.0.0.1:") for b in binds), (name, binds)
    wavy = (HAPROXY / "haproxy-wavy.cfg").read_text()
    assert re.search(r"bind 127\.0\.0\.1:2444\b", wavy)
    assert "hold valid      1s" in wavy and "parse-resolv-conf" in wavy
    assert "ssl verify required" in wavy and "sni str(smpp-messaging.wavy.global)" in wavy
    assert "check inter 15s" in wavy and "init-addr last,libc,none" in wavy
    qikberry = (HAPROXY / "haproxy-qikberry.cfg").read_text()
    assert "smpp1.txtsms.me:3635" in qikberry and "smpp2.txtsms.me:3635" in qikberry
    assert re.search(r"bind 127\.0\.0\.1:3634\b", qikberry)


# HAProxy for real, from the test template: plain in, verified TLS out to a local server.


@dataclass
class Pki:
    cert_pem: bytes
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def make_ca(common_name: str = "smppgw test CA") -> Pki:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, encipher_only=False,
                          decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return Pki(cert.public_bytes(serialization.Encoding.PEM), key, cert)


def make_server_cert(ca: Pki, host: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca.cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render_test_template(path: Path, *, frontend_port: int, backend_port: int,
                         ca_file: Path) -> Path:
    template = string.Template((HAPROXY / "haproxy-test.cfg.template").read_text())
    path.write_text(template.substitute(frontend_port=frontend_port, backend_port=backend_port,
                                        ca_file=str(ca_file)))
    return path


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, Path]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    try:
        yield sock, path
    finally:
        sock.close()


# enquire_link, sequence 1 (SMPP 3.4 §4.11.1): any bytes would do; these look like the real use.
ENQUIRE_LINK = bytes.fromhex("00000010000000150000000000000001")


async def proxy_exchange(tmp_path: Path, notify: tuple[socket.socket, Path], *,
                         trusted_ca: bool, server_host: str) -> tuple[bytes, list[str | None]]:
    """Start a TLS echo server and HAProxy in front of it; send ENQUIRE_LINK through the proxy.

    Returns what came back and the SNI names the server saw.
    """
    haproxy = require_tool("haproxy", "haproxy")
    ca = make_ca()
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    signer = ca if trusted_ca else make_ca("someone else's CA")
    cert_pem, key_pem = make_server_cert(signer, server_host)
    (tmp_path / "server.pem").write_bytes(cert_pem)
    (tmp_path / "server.key").write_bytes(key_pem)

    server_names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    context.sni_callback = lambda _obj, name, _ctx: server_names.append(name)  # type: ignore[assignment, misc]

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(await reader.read(len(ENQUIRE_LINK)))
            await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass  # HAProxy's health checks hang up right after the handshake
        finally:
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=context)
    backend_port = server.sockets[0].getsockname()[1]
    frontend_port = free_loopback_port()
    config = render_test_template(tmp_path / "haproxy.cfg", frontend_port=frontend_port,
                                  backend_port=backend_port, ca_file=tmp_path / "ca.pem")
    sock, notify_path = notify
    process = await asyncio.create_subprocess_exec(
        haproxy, "-Ws", "-db", "-f", str(config),
        env={**os.environ, "NOTIFY_SOCKET": str(notify_path)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    loop = asyncio.get_running_loop()
    try:
        # HAProxy's master says RELOADING=1, then READY=1 once the worker listens.
        for _ in range(10):
            message = await asyncio.wait_for(loop.sock_recv(sock, 4096), 20)
            if b"READY=1" in message.split(b"\n"):
                break
        else:
            pytest.fail("haproxy never sent READY=1")
        reader, writer = await asyncio.open_connection("127.0.0.1", frontend_port)
        writer.write(ENQUIRE_LINK)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(len(ENQUIRE_LINK)), 30)
        writer.close()
        return answer, server_names
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 30)
        server.close()
        await server.wait_closed()


async def test_haproxy_test_template_proxies_to_a_verified_tls_server(
    tmp_path: Path, notify_socket: tuple[socket.socket, Path]
) -> None:
    answer, names = await proxy_exchange(tmp_path, notify_socket, trusted_ca=True,
                                         server_host="localhost")
    assert answer == ENQUIRE_LINK
    assert names and set(names) == {"localhost"}


@pytest.mark.parametrize(
    ("trusted_ca", "server_host"),
    [(False, "localhost"), (True, "not-localhost.test")],
    ids=["unknown-ca", "wrong-host-name"],
)
async def test_haproxy_test_template_refuses_an_unverified_server(
    tmp_path: Path, notify_socket: tuple[socket.socket, Path], trusted_ca: bool,
    server_host: str,
) -> None:
    answer, _ = await proxy_exchange(tmp_path, notify_socket, trusted_ca=trusted_ca,
                                     server_host=server_host)
    assert answer == b"", "HAProxy forwarded to a server it should not have trusted"
