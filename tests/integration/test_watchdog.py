"""The systemd watchdog is pinged only while the event loop AND the store's writer are
healthy: a writer hung on its disk stops the pings (systemd then restarts smppgw), one that
answers again brings them back. A Daemon in this process; its notifier records."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from smppgw.simulator import SimulatorConfig
from smppgw.store import SqliteStore
from smppgw.systemd import Notifier
from tests.integration.test_accounts import until
from tests.integration.test_daemon_e2e import WAIT, make_config, provider_table

pytestmark = pytest.mark.timeout(60)


class RecordingNotifier(Notifier):
    """Every sd_notify message, as if systemd listened."""

    def __init__(self) -> None:
        super().__init__(environ={})
        self.messages: list[str] = []

    def send(self, message: str) -> bool:
        self.messages.append(message)
        return True

    @property
    def pings(self) -> int:
        return self.messages.count("WATCHDOG=1")


async def test_a_hung_store_writer_withholds_the_watchdog_until_it_answers(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from smppgw.daemon import Daemon

    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    caplog.set_level(logging.WARNING, logger="smppgw.daemon")
    sim = await sim_factory(SimulatorConfig())
    notifier = RecordingNotifier()
    daemon = Daemon(make_config(tmp_path, sock_dir / "s.sock",
                                [provider_table("acme", "generic", sim, ["55"], binds=1)]),
                    notifier=notifier)
    task = asyncio.create_task(daemon.run())
    hang = threading.Event()
    try:
        async with asyncio.timeout(WAIT):
            await daemon.ready.wait()

        async def pinged(count: int) -> bool:
            return notifier.pings >= count

        await until(lambda: pinged(2))
        store = daemon.store
        assert isinstance(store, SqliteStore)
        flushes = 0
        real_flush = store.flush

        async def counted_flush() -> None:
            nonlocal flushes
            flushes += 1
            await real_flush()

        monkeypatch.setattr(store, "flush", counted_flush)
        # The writer thread runs a command that does not return: a writer hung on its disk.
        stuck = asyncio.ensure_future(store._write(lambda tx: hang.wait()))

        async def withheld() -> bool:
            return any(r.getMessage().startswith("the store writer has not answered")
                       for r in caplog.records)

        await until(withheld)
        pings, seen = notifier.pings, flushes
        async def three_more_rounds() -> bool:
            return flushes >= seen + 3

        await until(three_more_rounds)
        assert notifier.pings == pings  # three more rounds, not one ping

        hang.set()
        await stuck
        await until(lambda: pinged(pings + 2))
        assert any(r.getMessage().startswith("the store writer answers again")
                   for r in caplog.records)
    finally:
        hang.set()
        daemon.request_stop()
        async with asyncio.timeout(WAIT):
            await task
