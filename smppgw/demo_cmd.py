"""``smppgw demo``: the daemon against the built-in SMSC simulator, with sample traffic.

Starts the simulator on loopback with TLS and a fresh self-signed CA, runs the daemon against
it (Wavy profile, 4 binds, temporary state dir), submits samples through the real unix-socket
API, waits for their receipts and one inbound MO, and prints what happened on the wire.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import shlex
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from smppgw.argtypes import positive_seconds
from smppgw.config import HostPort, parse_config
from smppgw.logs import setup_logging

FINAL_STATES = frozenset({"delivered", "undeliverable", "expired", "rejected", "failed",
                          "unknown", "cancelled"})

SAMPLES: tuple[tuple[str, dict[str, object]], ...] = (
    ("GSM7", {"text": "Hello from smppgw! Your code is 482913."}),
    ("Latin-1", {"text": "Olá! Promoção válida até amanhã às 18h."}),
    ("UCS-2 + emoji", {"text": "Entrega confirmada ✅ Obrigado 😀"}),
    ("long (concatenated)", {"text": (
        "This is a long message that does not fit in one SMS, so smppgw splits it into "
        "parts with a UDH header carrying a reference, the number of parts and each "
        "part's position; the handset puts them back together. Each part carries 153 "
        "GSM characters instead of 160 because the header takes room."
    )}),
    ("flash", {"text": "Flash: your session expires in 5 minutes", "flash": True}),
)
MO_TEXT = "Sim, confirmo o pedido 123"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true",
                        help="exit after the summary (status 0 only if every sample finished)")
    parser.add_argument("--timeout", type=positive_seconds, default=60.0,
                        help="seconds to wait for receipts and the MO (default 60)")
    parser.add_argument("--verbose", action="store_true", help="show the daemon's log lines")


def run(args: argparse.Namespace) -> int:
    setup_logging("info" if args.verbose else "warning")
    try:
        return asyncio.run(_demo(once=args.once, timeout=args.timeout))
    except KeyboardInterrupt:
        return 130


async def _demo(*, once: bool, timeout: float) -> int:
    from smppgw.daemon import Daemon
    from smppgw.simulator import ReceiptPlan, SimulatorConfig, SmscSimulator
    from smppgw.systemd import Notifier

    with tempfile.TemporaryDirectory(prefix="smppgw-demo-") as tmp:
        root = Path(tmp)
        sim = SmscSimulator(
            SimulatorConfig.wavy(
                tls=True,
                cert_dir=str(root / "certs"),
                receipts=ReceiptPlan(style="wavy", two_stage=True, delay=0.2, final_delay=0.3,
                                     routing="other"),
            )
        )
        await sim.start()
        assert sim.cert_paths is not None
        password = "demo-pw"
        config = parse_config(
            {
                "gateway": {
                    "state_dir": str(root / "state"),
                    "submit_socket": str(root / "submit.sock"),
                    "metrics_listen": "127.0.0.1:9465",
                },
                "provider": [{
                    "name": "wavy",
                    "profile": "wavy",
                    "system_id": "acme",
                    "password_env": "SMPPGW_DEMO_PASSWORD",
                    "hosts": [f"localhost:{sim.port}"],
                    "ca_file": str(sim.cert_paths.ca),
                    "routes": ["55"],
                }],
            },
            base_dir=root,
            environ={"SMPPGW_DEMO_PASSWORD": password},
        )
        # An ephemeral metrics port: the demo must not fail because 9465 is taken.
        config = dataclasses.replace(
            config, gateway=dataclasses.replace(config.gateway,
                                                metrics_listen=HostPort("127.0.0.1", 0))
        )
        daemon = Daemon(config, notifier=Notifier(environ={}))
        ok = False
        try:
            # The daemon runs as a task of this group, so what stops it (a failed start)
            # reaches this function rather than a task nobody reads.
            async with asyncio.TaskGroup() as group:
                group.create_task(daemon.run(), name="daemon")
                try:
                    await _wait_ready(daemon)
                    ok = await _exercise(daemon, sim, config.gateway.submit_socket, timeout)
                    if not once:
                        _print_next_steps(config.gateway.submit_socket)
                        stop = asyncio.Event()
                        loop = asyncio.get_running_loop()
                        for sig in (signal.SIGINT, signal.SIGTERM):
                            loop.add_signal_handler(sig, stop.set)
                        await stop.wait()
                finally:
                    daemon.request_stop()
        except* Exception as failed:
            raise failed.exceptions[0] from None
        finally:
            await sim.close()
        return 0 if ok else 1


def _program() -> str:
    """smppgw as the user started it, so the printed lines run as they are: the console
    script's path as typed (``.venv/bin/smppgw`` when it is not on PATH), or ``python -m``."""
    argv0 = sys.argv[0]
    name = Path(argv0).name
    if name == "__main__.py":
        return f"{shlex.quote(sys.executable)} -m smppgw"
    return shlex.quote(argv0) if name == "smppgw" else "smppgw"


def _print_next_steps(socket_path: Path) -> None:
    """Where the running demo listens and what to try against it from another terminal."""
    program, sock = _program(), shlex.quote(str(socket_path))
    print("\nsmppgw keeps running against the simulator; Ctrl-C to stop.")
    print(f"submit socket: {socket_path}")
    print("try, in another terminal:")
    print(f"  {program} send --socket {sock} --to 5511999990000 --wait 'Hello from smppgw'")
    print(f"  {program} status --socket {sock}")
    sys.stdout.flush()


async def _wait_ready(daemon: Any) -> None:
    try:
        async with asyncio.timeout(30):
            await daemon.ready.wait()
    except TimeoutError:
        raise RuntimeError("the daemon did not become ready within 30 s") from None


async def _exercise(daemon: Any, sim: Any, socket_path: Path, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    connector = aiohttp.UnixConnector(path=str(socket_path))
    async with aiohttp.ClientSession(connector=connector) as http:
        await _wait_bound(daemon, deadline)
        messages = [{"id": f"demo-{i}", "to": "5511999990000", "from": "Acme", **sample}
                    for i, (_, sample) in enumerate(SAMPLES, 1)]
        async with http.post("http://smppgw/v1/messages", json={"messages": messages}) as resp:
            answer = await resp.json()
        accepted = {a["id"]: a for a in answer["messages"]}
        sim.inject_mo("5511999990000", "acme", MO_TEXT)

        states: dict[str, str] = {}
        receipts: dict[str, list[str]] = {}
        mo_texts: list[str] = []
        cursor = 0
        wanted = {a["tracking_id"] for a in accepted.values() if a.get("accepted")}
        while loop.time() < deadline:
            done = all(states.get(t) in FINAL_STATES for t in wanted) and mo_texts
            if done:
                break
            wait = max(0.0, min(5.0, deadline - loop.time()))
            async with http.get("http://smppgw/v1/events",
                                params={"after": str(cursor), "wait": f"{wait:.1f}"}) as resp:
                batch = await resp.json()
            cursor = batch["cursor"]
            for event in batch["events"]:
                if event["type"] == "state" and event.get("tracking_id"):
                    states[event["tracking_id"]] = event["state"]
                elif event["type"] == "receipt" and event.get("tracking_id"):
                    receipts.setdefault(event["tracking_id"], []).append(
                        str(event.get("stat") or event.get("receipt", {}).get("stat", "?"))
                    )
                elif event["type"] == "mo":
                    mo_texts.append(str(event.get("text")))
        metrics_port = daemon.metrics_server.port if daemon.metrics_server else None
        return _summary(accepted, states, receipts, mo_texts, sim, metrics_port)


async def _wait_bound(daemon: Any, deadline: float) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < deadline:
        if all(r.pool.bound_count == len(r.pool.slots) for r in daemon.providers.values()):
            return
        await asyncio.sleep(0.05)  # demo pacing only; tests wait on events


def _stages(stats: list[str]) -> str:
    """``ACCEPTD ×2 → DELIVRD ×2`` for a two-part message's four receipts."""
    counts: dict[str, int] = {}
    for stat in stats:
        counts[stat] = counts.get(stat, 0) + 1
    return " → ".join(f"{s} ×{n}" if n > 1 else s for s, n in counts.items()) or "-"


def _summary(accepted: dict[str, Any], states: dict[str, str], receipts: dict[str, list[str]],
             mo_texts: list[str], sim: Any, metrics_port: int | None) -> bool:
    print("smppgw demo — daemon ↔ built-in SMSC simulator (TLS, Wavy profile, 4 binds)\n")
    print(f"{'sample':<22}{'data_coding':>12}{'parts':>7}  {'receipts':<26}{'state':<14}")
    ok = True
    for (label, _), answer in zip(SAMPLES, accepted.values(), strict=True):
        if not answer.get("accepted"):
            ok = False
            print(f"{label:<22}{'-':>12}{'-':>7}  refused: {json.dumps(answer.get('error'))}")
            continue
        tracking = answer["tracking_id"]
        state = states.get(tracking, "queued")
        ok = ok and state in FINAL_STATES
        print(f"{label:<22}{answer['data_coding']:>12}{answer['segments']:>7}  "
              f"{_stages(receipts.get(tracking, [])):<26}{state:<14}")
    print()
    if mo_texts:
        print(f"inbound MO received: {mo_texts[0]!r}")
    else:
        ok = False
        print("inbound MO: not received in time")
    print(f"simulator: {sim.submits_total} submit_sm received, {sim.acknowledged_total} "
          "deliver_sm acknowledged")
    if metrics_port:
        print(f"metrics: http://127.0.0.1:{metrics_port}/metrics")
    print("result:", "every sample reached a final state" if ok else "INCOMPLETE")
    sys.stdout.flush()
    return ok
