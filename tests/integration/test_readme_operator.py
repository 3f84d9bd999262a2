"""README.md's operator guide, run as written against a running daemon: every ``smppgw`` and
``curl`` line of the sections "Find a message", "Cancel and retry" and "Pause a provider" must
succeed on a daemon holding the messages they name (the socket given with ``--socket``, the
README's example tracking id replaced by a real one)."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path
from typing import Any

import pytest

from smppgw import cli
from smppgw.simulator import SimulatorConfig
from smppgw.smpp.constants import CommandStatus
from tests.integration.test_daemon_e2e import WAIT, gateways, make_config, provider_table

__all__ = ["gateways"]   # the fixture, shared with test_daemon_e2e

pytestmark = pytest.mark.timeout(90)

README = Path(__file__).resolve().parents[2] / "README.md"
SECTIONS = ("Find a message", "Cancel and retry", "Pause a provider")
EXAMPLE_TRACKING_ID = "7aa0606028f3aa7c1d2710e34636607c"
LONG = " ".join(f"Part of a long message number {i}." for i in range(12))


def guide_commands(section: str) -> list[list[str]]:
    """The command lines of the ``sh`` blocks of README section ``## {section}``, as argv
    lists, in order (comments and shell variable assignments left out)."""
    text = README.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start:end if end != -1 else None]
    commands: list[list[str]] = []
    for block in body.split("```sh\n")[1:]:
        for line in block.split("```")[0].splitlines():
            argv = shlex.split(line, comments=True)
            if argv and "=" not in argv[0]:
                commands.append(argv)
    return commands


def test_every_section_has_commands() -> None:
    for section in SECTIONS:
        commands = guide_commands(section)
        assert {argv[0] for argv in commands} == {"smppgw", "curl"}, (section, commands)


async def test_the_operator_guide_runs_as_written(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any,
) -> None:
    sim = await sim_factory(SimulatorConfig())
    gw = await gateways(make_config(tmp_path, sock_dir / "s.sock", [
        provider_table("wavy", "generic", sim, ["55"], binds=1, window=1),
        provider_table("qikberry", "generic", sim, ["91"], binds=1)]))
    await sim.wait_bound(2, timeout=WAIT)
    socket = str(gw.daemon.config.gateway.submit_socket)

    # The messages the guide names: two failed, two delivered, one still being sent.
    tracking: dict[str, str] = {}
    for client_id, to, text, refuse in (
            ("order-1000", "5511988887777", LONG, False),
            ("order-1001", "5511999999999", "refused once", True),
            ("order-1002", "5511999999999", "delivered", False),
            ("order-1004", "5511999999998", "refused too", True)):
        if refuse:
            sim.answer_next_submits(CommandStatus.ESME_RINVDSTADR)
        answer = await gw.submit({"id": client_id, "to": to, "from": "Acme", "text": text})
        tracking[client_id] = answer[client_id]["tracking_id"]
        await gw.wait_states({tracking[client_id]: "failed" if refuse else "delivered"})
    sim.hold_answers()
    answer = await gw.submit({"id": "order-1003", "to": "5511977776666", "from": "Acme",
                              "text": LONG})
    tracking["order-1003"] = answer["order-1003"]["tracking_id"]
    await sim.wait_submits(len(sim.submits) + 1, timeout=WAIT)

    ran = 0
    for section in SECTIONS:
        for argv in guide_commands(section):
            if argv[0] == "smppgw":
                code = await asyncio.to_thread(cli.main, [*argv[1:], "--socket", socket])
                assert code == 0, argv
            else:
                status = await _curl(gw, argv, tracking)
                assert status == 200, argv
            ran += 1
    assert ran >= 15
    sim.release_answers()

    # What the guide did happened.
    cancelled = await gw.message(tracking["order-1003"])
    assert cancelled["state"] == "cancelled"
    retried = await gw.message(tracking["order-1001"])
    assert retried["retried_as"] is not None
    other = await gw.message(tracking["order-1004"])
    assert (await gw.message(other["retried_as"]))["provider"] == "qikberry"
    status = await gw.get("/v1/status")
    assert [p["paused"] for p in status["providers"]] == [False, False]


async def _curl(gw: Any, argv: list[str], tracking: dict[str, str]) -> int:
    """A README ``curl -s --unix-socket $S [-X METHOD] URL`` line, sent on the daemon's
    socket: its HTTP status."""
    method, url = "GET", ""
    args = iter(argv[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "--unix-socket":
            assert next(args) == "$S"
        elif arg.startswith("http://localhost/"):
            url = arg
    assert url, argv
    # The example id names the message the command acts on: the cancelled one, or for a
    # retry the failed one.
    real = tracking["order-1001" if url.endswith("/retry") else "order-1003"]
    url = url.replace(EXAMPLE_TRACKING_ID, real).replace("http://localhost", "http://smppgw")
    async with gw.http.request(method, url) as response:
        return int(response.status)
