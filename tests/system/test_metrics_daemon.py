"""What Prometheus sees from a running gateway: an in-process Daemon with its metrics listener on
127.0.0.1 (ephemeral port) against the TLS simulator, scraped before and after traffic over
HTTP, parsed with prometheus_client's own parser and linted with ``promtool check metrics``.

One scenario runs once per module (its own event loop, bounded by a timeout) and the tests read
what it recorded: the scrape with binds up and nothing sent, then the scrape after three
messages (four segments) got their two-stage Wavy receipts, an MO came in, and one message sat
queued for a provider whose only host refuses connections.

promtool missing: skipped locally (with the package to install), a failure under CI, where
.ci/run installs prometheus.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

import smppgw.daemon
from smppgw.config import HostPort, parse_config
from smppgw.daemon import Daemon
from smppgw.simulator import Account, ReceiptPlan, SimulatorConfig, SmscSimulator
from smppgw.smpp.pdu import SubmitSmResp
from smppgw.systemd import Notifier
from tests.system.tools import require_tool

pytestmark = pytest.mark.timeout(60)

SYSTEM_ID = "acme"
PASSWORD = "Pw#9kQ2z"  # SMPP 3.4 §4.1.1: at most 8 octets; must never reach the scrape
BINDS = 4
WAIT = 15.0  # seconds any single condition may take
FINAL = frozenset({"delivered", "undeliverable", "expired", "rejected", "failed"})
MESSAGES = (
    {"id": "gsm-short", "to": "5511999990001", "from": "Acme", "text": "Your code is 482913"},
    {"id": "gsm-long", "to": "5511999990002", "from": "Acme",
     "text": "A long message that needs two parts. " * 6},
    {"id": "ucs2", "to": "5511999990003", "from": "Acme", "text": "Entrega confirmada ✅"},
)
# Routed to the "spare" provider, whose host refuses connections: they stay queued. More than
# its dispatcher takes in hand at once (2 x window), so some are still queued in the store.
STUCK = tuple({"id": f"stuck-{i}", "to": f"9198765432{i:02d}", "from": "Acme",
               "text": "Waiting for a bind"} for i in range(30))
MO_FROM, MO_TEXT = "5511999990009", "Sim, confirmo o pedido 123"

PHONE_LIKE = re.compile(r"\+?\d{7,}")
UUID_LIKE = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                       r"[0-9a-fA-F]{12}")
LONG_HEX = re.compile(r"[0-9a-fA-F]{16,}")


# --- the scenario ------------------------------------------------------------------------------


Samples = list[Sample]


@dataclass
class Scenario:
    """What one run of the gateway left behind for the tests to read."""

    before_text: str
    after_text: str
    segments: int
    receipts_acknowledged: int
    metrics_port: int
    wavy_host: str
    cert_not_after: float
    scraped_at: float
    states: dict[str, str]
    secrets: list[str]
    identifiers: set[str] = field(default_factory=set)

    def __repr__(self) -> str:  # keep assertion messages readable
        return f"<Scenario segments={self.segments} states={self.states}>"

    @property
    def before(self) -> Samples:
        return parse(self.before_text)

    @property
    def after(self) -> Samples:
        return parse(self.after_text)


def parse(text: str) -> Samples:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def select(samples: Samples, name: str, **labels: str) -> Samples:
    return [s for s in samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def value(samples: Samples, name: str, **labels: str) -> float:
    """The one sample of ``name`` with exactly these label values (among others)."""
    found = select(samples, name, **labels)
    assert len(found) == 1, f"{name}{labels}: expected one sample, got {found}"
    return found[0].value


def closed_loopback_port() -> int:
    """A loopback port nothing listens on (bound, then released: connects are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_scenario(root: Path) -> Scenario:
    sim = SmscSimulator(SimulatorConfig.wavy(
        tls=True,
        cert_dir=str(root / "certs"),
        accounts=(Account(SYSTEM_ID, PASSWORD),),
        receipts=ReceiptPlan(style="wavy", two_stage=True, delay=0.02, final_delay=0.02),
        seed=11,
    ))
    await sim.start()
    assert sim.cert_paths is not None
    socket_path = root / "submit.sock"
    wavy_host = f"localhost:{sim.port}"
    config = parse_config(
        {
            "gateway": {
                "state_dir": str(root / "state"),
                "submit_socket": str(socket_path),
                "log_level": "warning",
            },
            "provider": [
                {
                    "name": "wavy",
                    "profile": "wavy",
                    "system_id": SYSTEM_ID,
                    "password_env": "METRICS_TEST_PASSWORD",
                    "hosts": [wavy_host],
                    "ca_file": str(sim.cert_paths.ca),
                    "binds": BINDS,
                    "routes": ["55"],
                },
                {
                    "name": "spare",
                    "profile": "generic",
                    "system_id": "spare-acct",
                    "password_env": "METRICS_TEST_PASSWORD",
                    "hosts": [f"127.0.0.1:{closed_loopback_port()}"],
                    "tls": False,
                    "binds": 1,
                    "routes": ["91"],
                },
            ],
        },
        base_dir=root,
        environ={"METRICS_TEST_PASSWORD": PASSWORD},
    )
    config = dataclasses.replace(config, gateway=dataclasses.replace(
        config.gateway, metrics_listen=HostPort("127.0.0.1", 0)))
    daemon = Daemon(config, notifier=Notifier(environ={}))
    task = asyncio.create_task(daemon.run())
    try:
        async with asyncio.timeout(WAIT):
            ready = asyncio.ensure_future(daemon.ready.wait())
            await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
            if not ready.done():
                ready.cancel()
                task.result()  # what stopped the daemon
        assert daemon.metrics_server is not None and daemon.metrics_server.port
        port = daemon.metrics_server.port
        unix = aiohttp.UnixConnector(path=str(socket_path))
        async with aiohttp.ClientSession() as web, aiohttp.ClientSession(connector=unix) as api:

            async def scrape() -> str:
                async with web.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    assert resp.status == 200
                    assert resp.headers["Content-Type"].startswith("text/plain")
                    return await resp.text()

            async def scrape_until(done: Callable[[Samples], bool]) -> str:
                # Gauges follow the daemon's own events; re-scrape until they show the
                # condition (bounded), pacing the scrapes a little.
                async with asyncio.timeout(WAIT):
                    while True:
                        text = await scrape()
                        if done(parse(text)):
                            return text
                        await asyncio.sleep(0.02)

            await sim.wait_bound(BINDS, system_id=SYSTEM_ID, timeout=WAIT)
            before_text = await scrape_until(
                lambda s: value(s, "smppgw_binds", provider="wavy", state="bound") == BINDS)

            async with api.post("http://smppgw/v1/messages",
                                json={"messages": [*MESSAGES, *STUCK]}) as resp:
                assert resp.status == 200, await resp.text()
                answers = (await resp.json())["messages"]
            assert all(a["accepted"] for a in answers), answers
            tracking = {a["id"]: a["tracking_id"] for a in answers}
            wavy_ids = {m["id"] for m in MESSAGES}
            segments = sum(a["segments"] for a in answers if a["id"] in wavy_ids)
            sim.inject_mo(MO_FROM, SYSTEM_ID, MO_TEXT)

            # Long-poll the events until every Wavy message is final and the MO arrived.
            states: dict[str, str] = {}
            mo_seen = False
            cursor = 0
            async with asyncio.timeout(WAIT):
                while not (mo_seen and all(states.get(tracking[i]) in FINAL for i in wavy_ids)):
                    async with api.get("http://smppgw/v1/events",
                                       params={"after": str(cursor), "wait": "5"}) as resp:
                        batch = await resp.json()
                    cursor = batch["cursor"]
                    for event in batch["events"]:
                        if event["type"] == "state":
                            states[event["tracking_id"]] = event["state"]
                        mo_seen = mo_seen or event["type"] == "mo"
            # Two receipts per segment (ACCEPTD, then DELIVRD) and the MO, all answered: the
            # daemon counts each before it writes its deliver_sm_resp.
            deliveries = 2 * segments + 1
            await sim.wait_acknowledged(deliveries, timeout=WAIT)
            # The queue gauges follow the daemon's periodic refresh from the store: wait for
            # the one that saw every Wavy part answered, too.
            after_text = await scrape_until(
                lambda s: value(s, "smppgw_queue_depth", provider="spare") > 0
                and value(s, "smppgw_queue_depth", provider="wavy") == 0
                and value(s, "smppgw_reconnects_total", provider="spare",
                          reason="connect_refused") >= 1)
            scraped_at = time.time()

        identifiers = {*tracking, *tracking.values(), MO_FROM,
                       *(m["to"] for m in (*MESSAGES, *STUCK))}
        identifiers |= {r.pdu.message_id for r in sim.sent if isinstance(r.pdu, SubmitSmResp)}
        leaf = x509.load_pem_x509_certificate(sim.cert_paths.cert.read_bytes())
        return Scenario(
            before_text=before_text,
            after_text=after_text,
            segments=segments,
            receipts_acknowledged=deliveries,
            metrics_port=port,
            wavy_host=wavy_host,
            cert_not_after=leaf.not_valid_after_utc.timestamp(),
            scraped_at=scraped_at,
            states={i: states.get(t, "queued") for i, t in tracking.items()},
            secrets=[PASSWORD, *(m["text"] for m in MESSAGES), MO_TEXT],
            identifiers=identifiers,
        )
    finally:
        daemon.request_stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(WAIT):
                await task
        await sim.close()


@pytest.fixture(scope="module")
def scenario() -> Iterator[Scenario]:
    root = Path(tempfile.mkdtemp(prefix="smppgw-metrics-", dir="/tmp"))
    try:
        with pytest.MonkeyPatch.context() as patch:
            # Queue gauges are refreshed by the daemon's housekeeping, every 5 s in production;
            # faster here so the stuck message shows without a long wait.
            patch.setattr(smppgw.daemon, "HOUSEKEEPING_INTERVAL", 0.05)
            yield asyncio.run(asyncio.wait_for(run_scenario(root), 45))
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- counters ----------------------------------------------------------------------------------


def test_every_wavy_message_was_delivered(scenario: Scenario) -> None:
    # The premise of the counter checks below.
    assert scenario.states == {"gsm-short": "delivered", "gsm-long": "delivered",
                               "ucs2": "delivered", **{m["id"]: "queued" for m in STUCK}}
    assert scenario.segments == 4


def test_submitted_segments_by_status(scenario: Scenario) -> None:
    name = "smppgw_submitted_segments_total"
    ok = {"provider": "wavy", "status": "ESME_ROK", "kind": "ok"}
    assert value(scenario.before, name, **ok) == 0
    assert value(scenario.after, name, **ok) == scenario.segments
    # Nothing but ESME_ROK was answered.
    others = [s for s in select(scenario.after, name) if s.labels["status"] != "ESME_ROK"]
    assert all(s.value == 0 for s in others), others


def test_pdus_by_command_and_direction(scenario: Scenario) -> None:
    name = "smppgw_pdus_total"
    wavy = {"provider": "wavy"}
    for command, direction in (("submit_sm", "out"), ("submit_sm_resp", "in"),
                               ("deliver_sm", "in")):
        assert value(scenario.before, name, command=command, direction=direction, **wavy) == 0
    after = scenario.after
    assert value(after, name, command="submit_sm", direction="out", **wavy) == scenario.segments
    assert value(after, name, command="submit_sm_resp", direction="in",
                 **wavy) == scenario.segments
    assert value(after, name, command="deliver_sm", direction="in",
                 **wavy) == scenario.receipts_acknowledged
    assert {s.labels["direction"] for s in select(after, name)} == {"in", "out"}


def test_receipts_by_stat_and_mo(scenario: Scenario) -> None:
    for stat in ("ACCEPTD", "DELIVRD"):  # Wavy's two stages, one each per segment
        assert value(scenario.before, "smppgw_receipts_total", provider="wavy", stat=stat) == 0
        assert value(scenario.after, "smppgw_receipts_total", provider="wavy",
                     stat=stat) == scenario.segments
    others = [s for s in select(scenario.after, "smppgw_receipts_total", provider="wavy")
              if s.labels["stat"] not in ("ACCEPTD", "DELIVRD")]
    assert others and all(s.value == 0 for s in others), others
    assert value(scenario.after, "smppgw_receipts_unmatched_total", provider="wavy") == 0
    assert value(scenario.before, "smppgw_mo_messages_total", provider="wavy") == 0
    assert value(scenario.after, "smppgw_mo_messages_total", provider="wavy") == 1


def test_submit_response_latency_histogram(scenario: Scenario) -> None:
    name = "smppgw_submit_response_duration_seconds"
    assert value(scenario.before, f"{name}_count", provider="wavy") == 0
    after = scenario.after
    assert value(after, f"{name}_count", provider="wavy") == scenario.segments
    assert value(after, f"{name}_bucket", provider="wavy", le="+Inf") == scenario.segments
    assert 0 < value(after, f"{name}_sum", provider="wavy") < 30 * scenario.segments
    buckets = [s.value for s in select(after, f"{name}_bucket", provider="wavy")]
    assert buckets == sorted(buckets), "histogram buckets must be cumulative"


# --- gauges ------------------------------------------------------------------------------------


def test_binds_by_state_match_the_configuration(scenario: Scenario) -> None:
    for samples in (scenario.before, scenario.after):
        configured = value(samples, "smppgw_binds_configured", provider="wavy")
        assert configured == BINDS
        assert value(samples, "smppgw_binds", provider="wavy", state="bound") == configured
        others = [s for s in select(samples, "smppgw_binds", provider="wavy")
                  if s.labels["state"] != "bound"]
        assert all(s.value == 0 for s in others), others
    # The provider whose host refuses connections: configured, never bound, and retrying.
    after = scenario.after
    assert value(after, "smppgw_binds_configured", provider="spare") == 1
    assert value(after, "smppgw_binds", provider="spare", state="bound") == 0
    assert value(after, "smppgw_reconnects_total", provider="spare",
                 reason="connect_refused") >= 1
    assert sum(s.value for s in select(after, "smppgw_reconnects_total", provider="wavy")) == 0


def test_in_flight_and_window_per_bind(scenario: Scenario) -> None:
    binds = {f"wavy#{i}" for i in range(BINDS)}
    for samples in (scenario.before, scenario.after):
        in_flight = select(samples, "smppgw_bind_in_flight", provider="wavy")
        window = select(samples, "smppgw_bind_window", provider="wavy")
        assert {s.labels["bind"] for s in in_flight} == binds
        assert {s.labels["bind"] for s in window} == binds
    after = scenario.after
    # Every submit was answered; the window of a bind that carried traffic is Wavy's 10.
    assert all(s.value == 0 for s in select(after, "smppgw_bind_in_flight", provider="wavy"))
    assert max(s.value for s in select(after, "smppgw_bind_window", provider="wavy")) == 10
    hosts = {s.labels["host"] for s in select(after, "smppgw_bind_info", provider="wavy")}
    assert hosts == {scenario.wavy_host}


def test_queue_depth_and_oldest_age(scenario: Scenario) -> None:
    assert value(scenario.before, "smppgw_queue_depth", provider="wavy") == 0
    after = scenario.after
    assert value(after, "smppgw_queue_depth", provider="wavy") == 0
    assert value(after, "smppgw_queue_oldest_age_seconds", provider="wavy") == 0
    assert 0 < value(after, "smppgw_queue_depth", provider="spare") <= len(STUCK)
    assert 0 < value(after, "smppgw_queue_oldest_age_seconds", provider="spare") < 60


def test_tls_certificate_expiry_of_the_tls_host(scenario: Scenario) -> None:
    name = "smppgw_tls_peer_certificate_expiry_timestamp_seconds"
    (sample,) = select(scenario.after, name, provider="wavy")
    assert sample.labels["host"] == scenario.wavy_host
    # A plausible future unix time: the simulator's leaf certificate, valid for 30 days.
    assert scenario.scraped_at < sample.value < scenario.scraped_at + 400 * 86400
    assert sample.value == scenario.cert_not_after
    # The plain-SMPP provider has no certificate, so no series.
    assert select(scenario.after, name, provider="spare") == []


# --- hygiene -----------------------------------------------------------------------------------


def test_no_label_value_is_a_number_an_id_or_a_secret(scenario: Scenario) -> None:
    for text in (scenario.before_text, scenario.after_text):
        samples = parse(text)
        assert samples
        for sample in samples:
            for label, label_value in sample.labels.items():
                where = f"{sample.name}{{{label}={label_value!r}}}"
                assert not PHONE_LIKE.fullmatch(label_value), f"phone number in {where}"
                assert not UUID_LIKE.search(label_value), f"message id in {where}"
                assert not LONG_HEX.search(label_value), f"id in {where}"
                assert label_value not in scenario.identifiers, f"identifier in {where}"
        # Not in a label, not in a help text, nowhere.
        for secret in scenario.secrets:
            assert secret not in text
        for identifier in scenario.identifiers:
            assert identifier not in text, identifier


def test_every_metric_is_smppgw_prefixed(scenario: Scenario) -> None:
    names = {s.name for s in scenario.after}
    assert names and all(n.startswith("smppgw_") for n in names), sorted(
        n for n in names if not n.startswith("smppgw_"))


@pytest.mark.parametrize("which", ["before", "after"])
def test_promtool_check_metrics(scenario: Scenario, which: str) -> None:
    text = getattr(scenario, f"{which}_text")
    promtool = require_tool("promtool", "prometheus")
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.strip() == "", output


# --- series that follow the daemon's internals ---------------------------------------------------


def test_submitted_messages_by_status(scenario: Scenario) -> None:
    """Each message counts once, when its last part is accepted (not once per segment)."""
    assert value(scenario.after, "smppgw_submitted_messages_total", provider="wavy",
                 status="ESME_ROK", kind="ok") == len(MESSAGES)


def test_pdus_counts_responses_we_write_and_binds(scenario: Scenario) -> None:
    """PDUs the session writes by itself (binds, deliver_sm_resp) count like submits."""
    after, wavy = scenario.after, {"provider": "wavy"}
    assert value(after, "smppgw_pdus_total", command="deliver_sm_resp", direction="out",
                 **wavy) == scenario.receipts_acknowledged
    assert value(after, "smppgw_pdus_total", command="bind_transceiver", direction="out",
                 **wavy) == BINDS
    assert value(after, "smppgw_pdus_total", command="bind_transceiver_resp", direction="in",
                 **wavy) == BINDS


def test_window_is_known_as_soon_as_bound(scenario: Scenario) -> None:
    windows = select(scenario.before, "smppgw_bind_window", provider="wavy")
    assert len(windows) == BINDS and all(s.value == 10 for s in windows), windows


def test_store_commits_are_observed(scenario: Scenario) -> None:
    assert value(scenario.after, "smppgw_store_commit_batch_size_count") > 0
    assert value(scenario.after, "smppgw_store_commit_duration_seconds_count") > 0


def test_queue_depth_counts_every_message_waiting_for_a_bind(scenario: Scenario) -> None:
    """Parts a dispatcher claimed while no bind is up are still unsent: they count, and the
    oldest age is theirs too."""
    assert value(scenario.after, "smppgw_queue_depth", provider="spare") == len(STUCK)
    assert value(scenario.after, "smppgw_queue_oldest_age_seconds", provider="spare") > 0
