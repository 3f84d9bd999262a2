"""smppgw.metrics: names, types and bounded labels as Prometheus scrapes them, per registry.

Scrapes go through the real aiohttp endpoint on 127.0.0.1:0 and are parsed with
prometheus_client's own parser; promtool lints one scrape when it is installed.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from enum import Enum

import aiohttp
import pytest
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from smppgw.metrics import (
    BIND_STATES,
    LATENCY_BUCKETS,
    RECEIPT_STATS,
    RECONNECT_REASONS,
    Metrics,
    MetricsStartError,
    certificate_not_after,
    command_label,
    receipt_stat_label,
    start_metrics_server,
    status_label,
)
from smppgw.smpp.constants import CommandId, CommandStatus, MessageState
from smppgw.smpp.status import STATUS_TABLE, classify

PHONE_RE = re.compile(r"^\+?\d{7,15}$")

EXPECTED: dict[str, tuple[str, set[str]]] = {
    # family name (as the parser names it) → (type, label names of its samples)
    "smppgw_build_info": ("gauge", {"version", "python"}),
    "smppgw_submitted_messages": ("counter", {"provider", "status", "kind"}),
    "smppgw_submitted_segments": ("counter", {"provider", "status", "kind"}),
    "smppgw_submit_response_duration_seconds": ("histogram", {"provider"}),
    "smppgw_response_timeouts": ("counter", {"provider", "command"}),
    "smppgw_pdus": ("counter", {"provider", "command", "direction"}),
    "smppgw_peer_violations": ("counter", {"provider", "status"}),
    "smppgw_receipts": ("counter", {"provider", "stat"}),
    "smppgw_receipts_unmatched": ("counter", {"provider"}),
    "smppgw_receipts_unmatched_pending": ("gauge", {"provider"}),
    "smppgw_receipts_unmatched_stale": ("gauge", {"provider"}),
    "smppgw_mo_messages": ("counter", {"provider"}),
    "smppgw_alert_notifications": ("counter", {"provider"}),
    "smppgw_binds": ("gauge", {"provider", "state"}),
    "smppgw_binds_configured": ("gauge", {"provider"}),
    "smppgw_bind_info": ("gauge", {"provider", "bind", "host"}),
    "smppgw_bind_state": ("gauge", {"provider", "bind", "state"}),
    "smppgw_bind_in_flight": ("gauge", {"provider", "bind"}),
    "smppgw_bind_window": ("gauge", {"provider", "bind"}),
    "smppgw_bind_effective_rate": ("gauge", {"provider", "bind"}),
    "smppgw_bind_effective_window": ("gauge", {"provider", "bind"}),
    "smppgw_submit_empty_message_id": ("counter", {"provider"}),
    "smppgw_provider_refusing": ("gauge", {"provider"}),
    "smppgw_reconnects": ("counter", {"provider", "reason"}),
    "smppgw_rate_limit_waits": ("counter", {"provider"}),
    "smppgw_rate_limit_wait_seconds": ("counter", {"provider"}),
    "smppgw_tls_peer_certificate_expiry_timestamp_seconds": ("gauge", {"provider", "host"}),
    "smppgw_queue_depth": ("gauge", {"provider"}),
    "smppgw_queue_oldest_age_seconds": ("gauge", {"provider"}),
    "smppgw_api_requests": ("counter", {"endpoint", "code"}),
    "smppgw_api_request_duration_seconds": ("histogram", {"endpoint"}),
    "smppgw_webhook_deliveries": ("counter", {"webhook"}),
    "smppgw_webhook_events": ("counter", {"webhook"}),
    "smppgw_webhook_failures": ("counter", {"webhook", "reason"}),
    "smppgw_store_commit_batch_size": ("histogram", set()),
    "smppgw_store_commit_duration_seconds": ("histogram", set()),
    "smppgw_worker_failures": ("counter", {"worker"}),
    "smppgw_store_writable": ("gauge", set()),
    "smppgw_store_write_failures": ("counter", {"reason"}),
    "smppgw_store_purged": ("counter", {"kind"}),
}


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def exercise(metrics: Metrics) -> None:
    """Move every metric once, the way the daemon's layers do."""
    wavy = metrics.provider("wavy", binds_configured=4)
    b = metrics.bind("wavy", "wavy#1", "smpp-messaging.wavy.global:2444")
    b.set_state("connecting")
    b.set_state("binding")
    b.set_state("bound")
    b.track_flow(lambda: 3, 10, effective_rate=lambda: 56.0, effective_window=lambda: 5)
    b.pdu_out(CommandId.BIND_TRANSCEIVER)
    b.pdu_in(CommandId.BIND_TRANSCEIVER_RESP)
    b.pdu_out(CommandId.SUBMIT_SM)
    b.pdu_in(CommandId.SUBMIT_SM_RESP)
    b.pdu_in(0x7777)  # not a command id: counted as "unknown"
    wavy.segment_answered(CommandStatus.ESME_ROK, 0.012)
    wavy.segment_answered(CommandStatus.ESME_RTHROTTLED, 0.5)
    wavy.message_answered(CommandStatus.ESME_ROK)
    wavy.message_answered(CommandStatus.ESME_RINVDSTADR)
    wavy.response_timeout(CommandId.SUBMIT_SM)
    wavy.receipt("DELIVRD")
    wavy.receipt(MessageState.ACCEPTED, matched=False)
    wavy.mo_received()
    wavy.alert_notification()
    wavy.empty_message_id()
    wavy.track_refusing(lambda: True)
    wavy.peer_violation(CommandStatus.ESME_RINVCMDID)
    wavy.rate_limit_wait(0.25)
    wavy.reconnect("peer_closed")
    wavy.set_queue(7, 1_000.0)
    wavy.set_receipts_unmatched(pending=2, stale=1)
    wavy.set_tls_expiry("smpp-messaging.wavy.global", 1_900_000_000.0)
    q = metrics.bind("qikberry", "qikberry#1", "smpp1.txtsms.me:3635")
    q.set_state("backoff")
    q.reconnect("bind_rejected")
    metrics.webhook("0").delivered(12)
    metrics.webhook("0").failed("timeout")
    metrics.api_request("/v1/messages", 200, 0.004)
    metrics.api_request("/v1/messages/{tracking_id}", 404, 0.001)
    metrics.store_commit(25, 0.002)
    metrics.worker_failure("dispatcher")
    metrics.track_store(lambda: True)
    metrics.store_write_refused("disk_full")
    metrics.store_purge({"messages": 3, "events": 12})


def families(text: str) -> dict[str, tuple[str, list[Sample]]]:
    return {f.name: (f.type, list(f.samples)) for f in text_string_to_metric_families(text)}


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise AssertionError(f"no sample {name}{labels}")


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Iterator[Metrics]:
    yield Metrics(registry, version="9.9.9", clock=FakeClock(1_300.0))


async def scrape(port: int, path: str = "/metrics") -> tuple[int, str, str]:
    timeout = aiohttp.ClientTimeout(total=10)
    url = f"http://127.0.0.1:{port}{path}"
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def test_two_daemons_in_one_process_keep_separate_metrics() -> None:
    first, second = Metrics(CollectorRegistry()), Metrics(CollectorRegistry())
    first.provider("wavy").mo_received()
    first.provider("wavy").mo_received()
    second.provider("wavy").mo_received()
    server_a = await start_metrics_server(first, "127.0.0.1", 0)
    server_b = await start_metrics_server(second, "127.0.0.1", 0)
    try:
        assert server_a.port != server_b.port
        _, _, text_a = await scrape(server_a.port or 0)
        _, _, text_b = await scrape(server_b.port or 0)
    finally:
        await server_a.close()
        await server_b.close()
    assert sample(text_a, "smppgw_mo_messages_total", provider="wavy") == 2
    assert sample(text_b, "smppgw_mo_messages_total", provider="wavy") == 1


async def test_scrape_has_every_metric_with_its_type_and_labels(metrics: Metrics) -> None:
    exercise(metrics)
    server = await start_metrics_server(metrics, "127.0.0.1", 0)
    try:
        status, content_type, text = await scrape(server.port or 0)
    finally:
        await server.close()
    assert status == 200
    assert content_type == CONTENT_TYPE_LATEST
    found = families(text)
    for name, (kind, labels) in EXPECTED.items():
        assert name in found, f"{name} missing from the scrape"
        found_kind, samples = found[name]
        assert found_kind == kind, f"{name} is a {found_kind}, expected {kind}"
        assert samples, f"{name} has no samples"
        for s in samples:
            assert set(s.labels) - {"le"} == labels, f"{s.name} labels {sorted(s.labels)}"
    for name, (_, samples) in found.items():
        assert name.startswith("smppgw_"), name
        for s in samples:
            assert not s.name.endswith("_created"), f"{s.name}: created series are filtered"
    assert sample(text, "smppgw_build_info", version="9.9.9") == 1


async def test_values_after_the_hot_path(metrics: Metrics) -> None:
    exercise(metrics)
    text = metrics.exposition().decode()
    assert sample(text, "smppgw_binds", provider="wavy", state="bound") == 1
    assert sample(text, "smppgw_binds", provider="wavy", state="connecting") == 0
    assert sample(text, "smppgw_binds", provider="qikberry", state="backoff") == 1
    assert sample(text, "smppgw_binds_configured", provider="wavy") == 4
    assert sample(text, "smppgw_bind_state", bind="wavy#1", state="bound") == 1
    assert sample(text, "smppgw_bind_state", bind="wavy#1", state="binding") == 0
    assert sample(text, "smppgw_bind_in_flight", bind="wavy#1") == 3
    assert sample(text, "smppgw_bind_window", bind="wavy#1") == 10
    # What flow control uses now, read from it at scrape time (flow/control.py).
    assert sample(text, "smppgw_bind_effective_rate", bind="wavy#1") == 56.0
    assert sample(text, "smppgw_bind_effective_window", bind="wavy#1") == 5
    assert sample(text, "smppgw_submit_empty_message_id_total", provider="wavy") == 1
    assert sample(text, "smppgw_provider_refusing", provider="wavy") == 1
    assert sample(text, "smppgw_provider_refusing", provider="qikberry") == 0
    assert sample(text, "smppgw_bind_info", bind="wavy#1",
                  host="smpp-messaging.wavy.global:2444") == 1
    assert sample(text, "smppgw_pdus_total", provider="wavy", command="submit_sm",
                  direction="out") == 1
    assert sample(text, "smppgw_pdus_total", provider="wavy", command="submit_sm_resp",
                  direction="in") == 1
    assert sample(text, "smppgw_pdus_total", provider="wavy", command="unknown",
                  direction="in") == 1
    assert sample(text, "smppgw_submitted_segments_total", provider="wavy",
                  status="ESME_RTHROTTLED", kind="transient") == 1
    assert sample(text, "smppgw_submitted_messages_total", provider="wavy",
                  status="ESME_RINVDSTADR", kind="permanent") == 1
    assert sample(text, "smppgw_submit_response_duration_seconds_count", provider="wavy") == 2
    assert sample(text, "smppgw_submit_response_duration_seconds_bucket", provider="wavy",
                  le="0.025") == 1
    assert sample(text, "smppgw_receipts_total", provider="wavy", stat="ACCEPTD") == 1
    assert sample(text, "smppgw_receipts_unmatched_total", provider="wavy") == 1
    assert sample(text, "smppgw_receipts_unmatched_pending", provider="wavy") == 2
    assert sample(text, "smppgw_receipts_unmatched_stale", provider="wavy") == 1
    assert sample(text, "smppgw_rate_limit_wait_seconds_total", provider="wavy") == 0.25
    assert sample(text, "smppgw_reconnects_total", provider="qikberry",
                  reason="bind_rejected") == 1
    # Every reason exists from the start, so rate() sees the first reconnect.
    assert sample(text, "smppgw_reconnects_total", provider="qikberry", reason="dns") == 0
    assert sample(text, "smppgw_queue_depth", provider="wavy") == 7
    assert sample(text, "smppgw_queue_oldest_age_seconds", provider="wavy") == 300
    assert sample(text, "smppgw_queue_oldest_age_seconds", provider="qikberry") == 0
    assert sample(text, "smppgw_webhook_events_total", webhook="0") == 12
    assert sample(text, "smppgw_api_requests_total", endpoint="/v1/messages/{tracking_id}",
                  code="404") == 1


def test_no_label_value_is_a_phone_number_or_free_text(metrics: Metrics) -> None:
    exercise(metrics)
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for s in family.samples:
            for key, value in s.labels.items():
                assert not PHONE_RE.match(value), f"{s.name} {key}={value} looks like a number"
                assert len(value) <= 64 and "\n" not in value, f"{s.name} {key}={value!r}"


def test_queue_age_is_computed_at_scrape_time(registry: CollectorRegistry) -> None:
    clock = FakeClock(10_000.0)
    metrics = Metrics(registry, clock=clock, process_metrics=False)
    metrics.provider("wavy").set_queue(3, 9_940.0)
    assert sample(metrics.exposition().decode(), "smppgw_queue_oldest_age_seconds") == 60
    clock.now += 240  # no refresh in between: the age still grows
    assert sample(metrics.exposition().decode(), "smppgw_queue_oldest_age_seconds") == 300
    metrics.provider("wavy").set_queue(0, None)
    assert sample(metrics.exposition().decode(), "smppgw_queue_oldest_age_seconds") == 0


def test_status_labels_are_bounded_against_a_hostile_peer(metrics: Metrics) -> None:
    assert status_label(0x58) == "ESME_RTHROTTLED"
    assert status_label(0x40B) == "ESME_RINVBALANCE"
    assert status_label(0x104) == "ESME_RINVDCS"  # SMPP 5.0 name from the status table
    assert status_label(0x4A0) == "0x000004A0"  # SMSC vendor range keeps its code
    assert status_label(0x12345678) == "other"
    provider = metrics.provider("wavy")
    for status in [*range(0x600), *range(0x10000, 0x7FFFFFFF, 0x10001)]:
        provider.segment_answered(status)
    text = metrics.exposition().decode()
    statuses = {
        s.labels["status"]
        for f in text_string_to_metric_families(text) if f.name == "smppgw_submitted_segments"
        for s in f.samples
    }
    bound = len(STATUS_TABLE) + len(CommandStatus) + 256 + 1
    assert len(statuses) <= bound
    assert len(provider._segments) <= bound  # the child cache is bounded too
    for command_id in range(0x10000, 0x20000):
        provider.pdu_in(command_id)
    assert len(provider._pdus_in) <= len(CommandId) + 1


def test_command_and_receipt_labels() -> None:
    assert command_label(CommandId.DELIVER_SM_RESP) == "deliver_sm_resp"
    assert command_label(0x80000004) == "submit_sm_resp"
    assert command_label(0xDEAD) == "unknown"
    assert receipt_stat_label("Delivered") == "DELIVRD"
    assert receipt_stat_label("undeliv") == "UNDELIV"
    assert receipt_stat_label(MessageState.REJECTED) == "REJECTD"
    assert receipt_stat_label("+5511999999999") == "OTHER"
    assert receipt_stat_label(None) == "OTHER"
    assert set(RECEIPT_STATS) >= {receipt_stat_label(s) for s in MessageState}


def test_reconnect_reasons_and_bind_states_are_fixed_sets(metrics: Metrics) -> None:
    bind = metrics.bind("wavy", "wavy#2")
    bind.reconnect("[Errno 111] Connection refused by 10.0.0.1")
    with pytest.raises(ValueError, match="unknown bind state"):
        bind.set_state("dancing")

    class SessionState(Enum):
        OPEN = 1
        BOUND = 3

    bind.set_state(SessionState.OPEN)
    assert bind.state == "connecting"
    bind.set_state(SessionState.BOUND)
    assert bind.state == "bound"
    text = metrics.exposition().decode()
    reasons = {s.labels["reason"] for f in text_string_to_metric_families(text)
               if f.name == "smppgw_reconnects" for s in f.samples}
    assert reasons == set(RECONNECT_REASONS)
    assert sample(text, "smppgw_reconnects_total", reason="other") == 1
    states = {s.labels["state"] for f in text_string_to_metric_families(text)
              if f.name == "smppgw_binds" for s in f.samples}
    assert states == set(BIND_STATES)


def test_bind_handles_are_cached_and_removable(metrics: Metrics) -> None:
    first = metrics.bind("wavy", "wavy#1", "a:2444")
    assert metrics.bind("wavy", "wavy#1") is first
    metrics.bind("wavy", "wavy#1", "b:2444")  # moved to another host
    first.set_state("bound")
    second = metrics.bind("wavy", "wavy#2", "b:2444")
    second.set_state("bound")
    text = metrics.exposition().decode()
    assert sample(text, "smppgw_binds", provider="wavy", state="bound") == 2
    hosts = {s.labels["host"] for f in text_string_to_metric_families(text)
             if f.name == "smppgw_bind_info" for s in f.samples if s.labels["bind"] == "wavy#1"}
    assert hosts == {"b:2444"}
    first.remove()
    first.remove()
    first.set_state("closed")  # a late call from a closing slot is harmless
    text = metrics.exposition().decode()
    assert sample(text, "smppgw_binds", provider="wavy", state="bound") == 1
    assert "wavy#1" not in text
    assert metrics.bind("wavy", "wavy#1") is not first


def test_api_endpoints_are_capped(metrics: Metrics) -> None:
    for i in range(100):
        metrics.api_request(f"/v1/messages/{i:032x}", 200)  # a bug passing raw paths
    metrics.api_request("/healthz", 700)
    text = metrics.exposition().decode()
    endpoints = {s.labels["endpoint"] for f in text_string_to_metric_families(text)
                 if f.name == "smppgw_api_requests" for s in f.samples}
    assert len(endpoints) <= 33 and "other" in endpoints
    assert sample(text, "smppgw_api_requests_total", code="other") == 1


async def test_server_off_when_listen_is_empty(metrics: Metrics) -> None:
    server = await start_metrics_server(metrics, "", 9465)
    assert not server.enabled and server.port is None
    await server.close()


async def test_server_answers_only_metrics_and_root(metrics: Metrics) -> None:
    server = await start_metrics_server(metrics, "127.0.0.1", 0)
    try:
        status, _, _ = await scrape(server.port or 0, "/nothing")
        root_status, _, root = await scrape(server.port or 0, "/")
    finally:
        await server.close()
        await server.close()
    assert status == 404
    assert root_status == 200 and "/metrics" in root


async def test_busy_port_names_the_config_key(metrics: Metrics) -> None:
    server = await start_metrics_server(metrics, "127.0.0.1", 0)
    try:
        with pytest.raises(MetricsStartError) as raised:
            await asyncio.wait_for(start_metrics_server(metrics, "127.0.0.1", server.port or 0), 10)
        assert str(raised.value) == (f"gateway.metrics_listen: cannot listen on "
                                     f"127.0.0.1:{server.port}: address already in use")
    finally:
        await server.close()


async def test_an_address_not_on_this_host_names_the_config_key(metrics: Metrics) -> None:
    with pytest.raises(MetricsStartError) as raised:
        # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): no interface here has it.
        await asyncio.wait_for(start_metrics_server(metrics, "192.0.2.1", 9465), 10)
    assert str(raised.value) == ("gateway.metrics_listen: cannot listen on 192.0.2.1:9465: "
                                 "cannot assign requested address")


def test_certificate_not_after_reads_der() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smsc.test")])
    not_after = datetime.datetime(2031, 5, 1, 12, 0, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(not_after).sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    assert certificate_not_after(der) == not_after.timestamp()


def test_promtool_accepts_a_scrape(metrics: Metrics) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI: install the prometheus package")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    exercise(metrics)
    result = subprocess.run(
        [promtool, "check", "metrics"], input=metrics.exposition().decode(),
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lint = (result.stdout + result.stderr).strip()
    assert lint == "", lint


def test_per_pdu_metrics_export_what_prometheus_client_would(registry: CollectorRegistry) -> None:
    """The PDU, segment and latency series are counted as plain numbers: their exposition is
    the one prometheus_client's Counter and Histogram give for the same events."""
    metrics = Metrics(registry, process_metrics=False)
    provider = metrics.provider("wavy")
    reference = CollectorRegistry()
    pdus = Counter("smppgw_pdus", "x", ["provider", "command", "direction"], registry=reference)
    segments = Counter("smppgw_submitted_segments", "x", ["provider", "status", "kind"],
                       registry=reference)
    latency = Histogram("smppgw_submit_response_duration_seconds", "x", ["provider"],
                        buckets=LATENCY_BUCKETS, registry=reference)
    for command, direction in (("submit_sm", "out"), ("deliver_sm_resp", "out"),
                               ("enquire_link", "out"), ("submit_sm_resp", "in"),
                               ("deliver_sm", "in")):
        pdus.labels("wavy", command, direction)  # the series ProviderMetrics starts at zero
    segments.labels("wavy", "ESME_ROK", "ok")
    for command_id in (4, 4, 0x15, 0x80000004, 0x80000004, 0x80000015, 0x12345, 0x800ABCDE):
        out = not command_id & 0x80000000
        (provider.pdu_out if out else provider.pdu_in)(command_id)
        pdus.labels("wavy", command_label(command_id), "out" if out else "in").inc()
    answers = [(0, 0.0004), (0, 0.001), (0, 0.0025), (0x58, 0.7), (0x14, 31.0), (0x58, 30.0),
               (0x12345678, 0.02), (0x12345679, 1e-9)]
    for status, seconds in answers:
        provider.segment_answered(status, seconds)
        segments.labels("wavy", status_label(status), classify(status).kind.value).inc()
        latency.labels("wavy").observe(seconds)

    def families(text: str) -> dict[str, list[Sample]]:
        names = {"smppgw_pdus", "smppgw_submitted_segments",
                 "smppgw_submit_response_duration_seconds"}
        return {f.name: sorted((s for s in f.samples if not s.name.endswith("_created")),
                               key=repr)
                for f in text_string_to_metric_families(text) if f.name in names}

    ours = families(metrics.exposition().decode())
    theirs = families(generate_latest(reference).decode())
    assert ours == theirs
    assert len(ours) == 3 and all(ours.values())
