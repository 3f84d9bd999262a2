"""tools/grafana/smppgw.json proven on real parts: a real Prometheus server scrapes a running
gateway driven with traffic against the simulator, and every query of every panel, with its
template variables substituted as Grafana does, is run through Prometheus's HTTP API and must
return data.

The scenario runs once per module in its own event loop, bounded by a timeout: an in-process
Daemon (metrics on 127.0.0.1, ephemeral port) bound over TLS to the Wavy simulator, plus a
provider whose only host refuses connections; Prometheus (``prometheus`` from Debian, on
127.0.0.1 with an ephemeral port it reports in its log) scrapes it every second from a
temporary config and data dir. Traffic: one bind cut by the SMSC and bound again, three
messages (one part throttled once, then accepted), their two-stage receipts, one receipt
nobody sent, an MO, and messages queued for the provider that never binds. Every wait is on
a condition Prometheus or the daemon reports, each bounded; nothing sleeps in place of one.

prometheus missing: skipped locally (with the package to install), a failure under CI, where
.ci/run installs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import json
import math
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import smppgw.daemon
from smppgw.config import HostPort, parse_config
from smppgw.daemon import Daemon
from smppgw.simulator import Account, ReceiptPlan, SimulatorConfig, SmscSimulator
from smppgw.simulator.receipts import build_receipt, outcome_of_key
from smppgw.smpp.constants import CommandStatus
from smppgw.smpp.pdu import DeliverSmResp, SubmitSm
from smppgw.systemd import Notifier
from tests.system.tools import require_tool

pytestmark = pytest.mark.timeout(90)

DASHBOARD = Path(__file__).resolve().parents[2] / "tools" / "grafana" / "smppgw.json"
SYSTEM_ID = "acme"
PASSWORD = "Pw#9kQ2z"  # SMPP 3.4 §4.1.1: at most 8 octets
BINDS = 4
WAIT = 15.0  # seconds any single condition may take
SCENARIO_TIMEOUT = 60.0
SCRAPE_INTERVAL = 1  # seconds: Prometheus's scrape_interval here, and Grafana's setting for it
STEP = 1  # seconds between points of the range queries (Grafana's $__interval)
FINAL = frozenset({"delivered", "undeliverable", "expired", "rejected", "failed"})
MESSAGES = (
    {"id": "gsm-short", "to": "5511999990001", "from": "Acme", "text": "Your code is 482913"},
    {"id": "gsm-long", "to": "5511999990002", "from": "Acme",
     "text": "A long message that needs two parts. " * 6},
    {"id": "ucs2", "to": "5511999990003", "from": "Acme", "text": "Entrega confirmada ✅"},
)
STUCK = tuple({"id": f"stuck-{i}", "to": f"9198765432{i:02d}", "from": "Acme",
               "text": "Waiting for a bind"} for i in range(5))
MO_TEXT = "Sim, confirmo o pedido 123"
# Metrics without a provider label: the only ones a panel may chart for every provider.
GATEWAY_WIDE = re.compile(r"smppgw_store_\w+")
METRIC_SELECTOR = re.compile(r"\b(smppgw_\w+)(\{[^}]*\})?")


# --- the dashboard -------------------------------------------------------------------------------


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels (a collapsed row keeps them inside) included."""
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def query_panels() -> list[dict[str, Any]]:
    return [p for p in all_panels(load_dashboard()) if p["type"] != "row"]


def metrics_of(panel: dict[str, Any]) -> set[str]:
    return {m.group(1) for t in panel["targets"] for m in METRIC_SELECTOR.finditer(t["expr"])}


def rate_interval(scrape_interval: int, interval: int) -> int:
    """Grafana's $__rate_interval: max($__interval + scrape interval, 4 x scrape interval)."""
    return max(interval + scrape_interval, 4 * scrape_interval)


def substitute(expr: str, providers: list[str]) -> str:
    """``expr`` as Grafana sends it to Prometheus with provider = All: a multi-value variable
    in a regex matcher becomes ``(a|b)`` of its regex-escaped values."""
    values = "(" + "|".join(re.escape(p) for p in sorted(providers)) + ")"
    text = (expr.replace("$__rate_interval", f"{rate_interval(SCRAPE_INTERVAL, STEP)}s")
            .replace("$__interval", f"{STEP}s")
            .replace("$provider", values))
    assert "$" not in text, f"a variable the test does not know is left in {text!r}"
    return text


# --- the scenario --------------------------------------------------------------------------------


@dataclass
class Series:
    labels: dict[str, str]
    values: list[float]  # NaN kept: histogram_quantile gives NaN where nothing was observed


@dataclass
class Observed:
    """What Prometheus answered, for the tests to read."""

    provider_values: list[str]
    metric_names: set[str]
    results: dict[tuple[int, str], list[Series]] = field(default_factory=dict)
    queries: dict[tuple[int, str], str] = field(default_factory=dict)


class Prometheus:
    """A ``prometheus`` child process on 127.0.0.1, its port read from its own log."""

    def __init__(self, binary: str, root: Path, target: str) -> None:
        self.binary = binary
        self.root = root
        self.target = target
        self.process: asyncio.subprocess.Process | None = None
        self.log: list[str] = []
        self.url = ""
        self._listening = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        config = self.root / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {SCRAPE_INTERVAL}s\n"
            f"  scrape_timeout: {SCRAPE_INTERVAL}s\n"
            "scrape_configs:\n"
            "  - job_name: smppgw\n"
            "    static_configs:\n"
            f"      - targets: [\"{self.target}\"]\n"
        )
        self.process = await asyncio.create_subprocess_exec(
            self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.root / 'data'}",
            "--web.listen-address=127.0.0.1:0", "--log.level=info",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        self._reader = asyncio.create_task(self._read_log())
        waiter = asyncio.create_task(self._listening.wait())
        exited = asyncio.create_task(self.process.wait())
        try:
            await asyncio.wait({waiter, exited}, timeout=WAIT,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            exited.cancel()
        if not self._listening.is_set():
            raise AssertionError("prometheus did not start listening:\n" + self.text_log())

    async def wait_ready(self, http: aiohttp.ClientSession) -> None:
        """Until /-/ready answers 200: queries get 503 while the TSDB opens."""

        async def ready() -> bool:
            async with http.get(f"{self.url}/-/ready") as resp:
                return resp.status == 200

        await until(ready, "itself ready", self.text_log)

    async def _read_log(self) -> None:
        # Drained to the end, so a full pipe never blocks prometheus.
        assert self.process is not None and self.process.stderr is not None
        while line := await self.process.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self.log.append(text)
            found = re.search(r'msg="Listening on" address=(\S+)', text)
            if found and not self._listening.is_set():
                self.url = f"http://{found.group(1)}"
                self._listening.set()

    def text_log(self) -> str:
        return "\n".join(self.log[-30:])

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                async with asyncio.timeout(WAIT):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(WAIT):
                    await self._reader


async def api_get(http: aiohttp.ClientSession, url: str, **params: str) -> Any:
    async with http.get(url, params=params) as resp:
        body = await resp.json()
    assert body.get("status") == "success", body
    return body["data"]


async def until(
    condition: Callable[[], Awaitable[bool]], what: str, log: Callable[[], str]
) -> None:
    """Re-check ``condition`` (each check is an HTTP round trip, paced a little) until it holds,
    at most WAIT seconds."""
    try:
        async with asyncio.timeout(WAIT):
            while not await condition():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"prometheus never saw {what}:\n{log()}") from None


def closed_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_scenario(root: Path, binary: str) -> Observed:
    sim = SmscSimulator(SimulatorConfig.wavy(
        tls=True, cert_dir=str(root / "certs"), accounts=(Account(SYSTEM_ID, PASSWORD),),
        receipts=ReceiptPlan(style="wavy", two_stage=True, delay=0.02, final_delay=0.02),
        seed=7,
    ))
    await sim.start()
    assert sim.cert_paths is not None
    socket_path = root / "submit.sock"
    config = parse_config(
        {
            "gateway": {"state_dir": str(root / "state"), "submit_socket": str(socket_path),
                        "log_level": "warning"},
            "provider": [
                {"name": "wavy", "profile": "wavy", "system_id": SYSTEM_ID,
                 "password_env": "DASHBOARD_TEST_PASSWORD", "hosts": [f"localhost:{sim.port}"],
                 "ca_file": str(sim.cert_paths.ca), "binds": BINDS, "routes": ["55"]},
                {"name": "spare", "profile": "generic", "system_id": "spare-acct",
                 "password_env": "DASHBOARD_TEST_PASSWORD",
                 "hosts": [f"127.0.0.1:{closed_loopback_port()}"], "tls": False, "binds": 1,
                 "routes": ["91"]},
            ],
        },
        base_dir=root, environ={"DASHBOARD_TEST_PASSWORD": PASSWORD},
    )
    config = dataclasses.replace(config, gateway=dataclasses.replace(
        config.gateway, metrics_listen=HostPort("127.0.0.1", 0)))
    daemon = Daemon(config, notifier=Notifier(environ={}))
    task = asyncio.create_task(daemon.run())
    prometheus: Prometheus | None = None
    try:
        async with asyncio.timeout(WAIT):
            ready = asyncio.ensure_future(daemon.ready.wait())
            await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
            if not ready.done():
                ready.cancel()
                task.result()  # what stopped the daemon
        await sim.wait_bound(BINDS, system_id=SYSTEM_ID, timeout=WAIT)
        assert daemon.metrics_server is not None and daemon.metrics_server.port
        prometheus = Prometheus(binary, root / "prometheus",
                                f"127.0.0.1:{daemon.metrics_server.port}")
        prometheus.root.mkdir()
        started_at = time.time()
        await prometheus.start()
        prom = prometheus
        unix = aiohttp.UnixConnector(path=str(socket_path))
        timeout = aiohttp.ClientTimeout(total=WAIT)
        async with aiohttp.ClientSession(timeout=timeout) as http, \
                aiohttp.ClientSession(connector=unix, timeout=timeout) as api:

            async def value(query: str) -> float | None:
                data = await api_get(http, f"{prom.url}/api/v1/query", query=query)
                return float(data["result"][0]["value"][1]) if data["result"] else None

            async def reaches(query: str, check: Callable[[float], bool]) -> Callable[
                    [], Awaitable[bool]]:
                async def condition() -> bool:
                    found = await value(query)
                    return found is not None and check(found)
                return condition

            await prom.wait_ready(http)
            # Scraped with every bind up, before any traffic: the "before" point of each rate.
            await until(await reaches(
                'sum(smppgw_binds{job="smppgw", provider="wavy", state="bound"})',
                lambda v: v == BINDS), "the binds up", prom.text_log)

            # The SMSC cuts one bind; it binds again. (The other provider's refused connects
            # back off too fast and too far to be sure of an increase inside the window.)
            sim.drop(sim.bound_connections(SYSTEM_ID)[0].id)
            await sim.wait_for(lambda: sim.binds_total > BINDS
                               and sim.bound_count(SYSTEM_ID) == BINDS, timeout=WAIT)

            sim.answer_next_submits(CommandStatus.ESME_RTHROTTLED, 1)
            async with api.post("http://smppgw/v1/messages",
                                json={"messages": [*MESSAGES, *STUCK]}) as resp:
                assert resp.status == 200, await resp.text()
                answers = (await resp.json())["messages"]
            assert all(a["accepted"] for a in answers), answers
            tracking = {a["tracking_id"] for a in answers if a["id"] in
                        {m["id"] for m in MESSAGES}}
            sim.inject_mo("5511999990009", SYSTEM_ID, MO_TEXT)
            await wait_final(api, tracking)

            # A receipt for a message id nothing here sent.
            submit = next(r.pdu for r in sim.received if isinstance(r.pdu, SubmitSm))
            now = datetime.datetime.now(datetime.UTC)
            receipt = build_receipt(submit, "00000000-0000-4000-8000-000000000000",
                                    outcome_of_key("DELIVRD", "wavy"), "wavy",
                                    submitted_at_wall=now, done_at_wall=now)
            connection = sim.bound_connections(SYSTEM_ID)[0].id
            sequence_number = sim.send_pdu(connection, receipt)
            await sim.wait_for(lambda: any(
                isinstance(r.pdu, DeliverSmResp) and r.connection_id == connection
                and r.pdu.sequence_number == sequence_number for r in sim.received),
                timeout=WAIT)

            # The operator pauses the provider that never binds.
            async with api.post("http://smppgw/v1/providers/spare/pause") as resp:
                assert resp.status == 200, await resp.text()

            # Scraped after all of it.
            for query, check, what in (
                ('sum(smppgw_provider_paused{provider="spare"})', lambda v: v == 1,
                 "the pause"),
                ('sum(smppgw_submitted_messages_total{provider="wavy", status="ESME_ROK"})',
                 lambda v: v == len(MESSAGES), "the messages accepted"),
                ('sum(smppgw_receipts_unmatched_total{provider="wavy"})', lambda v: v >= 1,
                 "the unmatched receipt"),
                ('sum(smppgw_mo_messages_total{provider="wavy"})', lambda v: v >= 1, "the MO"),
                ('sum(smppgw_queue_depth{provider="spare"})', lambda v: v > 0,
                 "the queue of the provider that never binds"),
                ('sum(smppgw_reconnects_total{provider="wavy"})', lambda v: v >= 1,
                 "the bind the SMSC cut"),
                ('sum(smppgw_binds{provider="wavy", state="bound"})', lambda v: v == BINDS,
                 "every bind up again"),
            ):
                await until(await reaches(query, check), what, prom.text_log)
            # Two scrapes more: a rate needs two samples of a series in its window, and the
            # series a part of the traffic created (a status first answered) have one so far.
            scrapes = 'count_over_time(up{job="smppgw"}[1h])'
            seen = await value(scrapes) or 0
            await until(await reaches(scrapes, lambda v: v >= seen + 2), "two more scrapes",
                        prom.text_log)
            ended_at = time.time() + STEP

            providers = await api_get(http, f"{prom.url}/api/v1/label/provider/values",
                                      **{"match[]": "smppgw_binds_configured"})
            names = await api_get(http, f"{prom.url}/api/v1/label/__name__/values",
                                  **{"match[]": '{job="smppgw"}'})
            observed = Observed(provider_values=providers, metric_names=set(names))
            for panel in query_panels():
                for target in panel["targets"]:
                    query = substitute(target["expr"], providers)
                    data = await api_get(
                        http, f"{prom.url}/api/v1/query_range", query=query,
                        start=f"{started_at:.3f}", end=f"{ended_at:.3f}", step=f"{STEP}")
                    key = (panel["id"], target["refId"])
                    observed.queries[key] = query
                    observed.results[key] = [
                        Series(dict(r["metric"]), [float(v) for _, v in r["values"]])
                        for r in data["result"]]
            return observed
    finally:
        if prometheus is not None:
            await prometheus.close()
        daemon.request_stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(WAIT):
                await task
        await sim.close()


async def wait_final(api: aiohttp.ClientSession, tracking: set[str]) -> None:
    """Follow the event log until every message in ``tracking`` is final."""
    states: dict[str, str] = {}
    cursor = 0
    async with asyncio.timeout(WAIT):
        while not all(states.get(t) in FINAL for t in tracking):
            async with api.get("http://smppgw/v1/events",
                               params={"after": str(cursor), "wait": "5"}) as resp:
                batch = await resp.json()
            cursor = batch["cursor"]
            for event in batch["events"]:
                if event["type"] == "state":
                    states[event["tracking_id"]] = event["state"]


@pytest.fixture(scope="module")
def observed() -> Iterator[Observed]:
    binary = require_tool("prometheus", "prometheus")
    root = Path(tempfile.mkdtemp(prefix="smppgw-grafana-", dir="/tmp"))
    try:
        with pytest.MonkeyPatch.context() as patch:
            # The queue gauges follow the daemon's housekeeping, every 5 s in production.
            patch.setattr(smppgw.daemon, "HOUSEKEEPING_INTERVAL", 0.1)
            yield asyncio.run(asyncio.wait_for(run_scenario(root, binary), SCENARIO_TIMEOUT))
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- the dashboard's shape (no Prometheus needed) ------------------------------------------------


def test_dashboard_has_the_provider_variable_and_a_datasource_variable() -> None:
    dashboard = load_dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    provider = variables["provider"]
    assert provider["type"] == "query" and provider["multi"] and provider["includeAll"]
    assert provider["query"]["query"] == "label_values(smppgw_binds_configured, provider)"
    assert provider["datasource"]["uid"] == "${datasource}"


def test_every_panel_uses_the_datasource_variable_and_a_unique_id() -> None:
    panels = all_panels(load_dashboard())
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]


def test_panels_do_not_overlap_and_fit_the_grid() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in all_panels(load_dashboard()):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_per_provider_series_is_filtered_by_the_provider_variable() -> None:
    for panel in query_panels():
        for target in panel["targets"]:
            for match in METRIC_SELECTOR.finditer(target["expr"]):
                metric, selector = match.group(1), match.group(2) or ""
                if GATEWAY_WIDE.fullmatch(metric):
                    continue
                assert 'provider=~"$provider"' in selector, (panel["title"], target["expr"])


def test_the_dashboard_charts_every_area_the_operator_needs() -> None:
    charted = set().union(*(metrics_of(p) for p in query_panels()))
    assert {
        "smppgw_submitted_messages_total", "smppgw_submitted_segments_total",
        "smppgw_submit_response_duration_seconds_bucket", "smppgw_queue_depth",
        "smppgw_queue_oldest_age_seconds", "smppgw_binds", "smppgw_bind_effective_rate",
        "smppgw_bind_effective_window", "smppgw_receipts_total",
        "smppgw_receipts_unmatched_total", "smppgw_reconnects_total",
        "smppgw_tls_peer_certificate_expiry_timestamp_seconds",
        "smppgw_store_commit_duration_seconds_bucket", "smppgw_provider_paused",
    } <= charted


# --- every query against Prometheus ---------------------------------------------------------------


def test_the_provider_variable_lists_every_configured_provider(observed: Observed) -> None:
    assert sorted(observed.provider_values) == ["spare", "wavy"]


@pytest.mark.parametrize("panel", query_panels(), ids=lambda p: p["title"])
def test_every_query_of_the_panel_returns_data(observed: Observed, panel: dict[str, Any]) -> None:
    for target in panel["targets"]:
        key = (panel["id"], target["refId"])
        series = observed.results[key]
        query = observed.queries[key]
        assert series, f"no series for {query}"
        assert any(not math.isnan(v) for s in series for v in s.values), \
            f"only NaN for {query}: {series}"
        providers = {s.labels["provider"] for s in series if "provider" in s.labels}
        assert providers <= {"wavy", "spare"}, (query, providers)


def last_value(observed: Observed, title: str, ref_id: str = "A", **labels: str) -> list[float]:
    """Every value of the series of panel ``title``'s query whose labels include ``labels``."""
    (panel,) = [p for p in query_panels() if p["title"] == title]
    series = [s for s in observed.results[(panel["id"], ref_id)]
              if all(s.labels.get(k) == v for k, v in labels.items())]
    assert series, f"{title}: no series with {labels}"
    return [v for s in series for v in s.values if not math.isnan(v)]


def test_panels_show_what_the_traffic_did(observed: Observed) -> None:
    """Beyond "returns data": the panels measure what happened, with the labels they show."""
    v = last_value
    assert max(v(observed, "Messages submitted by provider and status", provider="wavy",
                 status="ESME_ROK")) > 0
    # Born at 1 by the throttled answer, the series has no increase for rate() to see, but
    # the panel shows it, by its status.
    assert v(observed, "Parts submitted by provider and status", provider="wavy",
             status="ESME_RTHROTTLED")
    assert 0 < max(v(observed, "Submit latency (submit_sm to submit_sm_resp)", "C",
                     provider="wavy")) <= 30
    assert max(v(observed, "Queue depth", provider="spare")) > 0
    assert max(v(observed, "Oldest queued part", provider="spare")) > 0
    assert v(observed, "Binds by state", provider="wavy", state="bound")[-1] == BINDS
    assert v(observed, "Binds by state", "B", provider="wavy")[-1] == BINDS
    assert max(v(observed, "Reconnects by reason", provider="wavy")) > 0
    assert v(observed, "Reconnects by reason", provider="spare", reason="connect_refused")
    assert max(v(observed, "In flight and window per bind", "B", provider="wavy")) == 10
    for stat in ("ACCEPTD", "DELIVRD"):
        assert max(v(observed, "Receipts by stat", provider="wavy", stat=stat)) > 0
    assert max(v(observed, "Unmatched receipts", provider="wavy")) > 0
    assert max(v(observed, "Inbound (MO) messages", provider="wavy")) > 0
    # The simulator's certificate is valid for 30 days.
    left = v(observed, "TLS certificate expiry", provider="wavy")[-1]
    assert 29 * 86400 < left <= 30 * 86400
    assert max(v(observed, "Store commit latency", "B")) > 0
    assert v(observed, "Paused by the operator", provider="spare")[-1] == 1
    assert v(observed, "Paused by the operator", provider="wavy")[-1] == 0
