"""API requests do not each write an ``aiohttp.access`` line at the default log level.

smppgw/api/app.py serves with ``web.AppRunner(app)``, i.e. aiohttp's default access logger;
this runs the same kind of runner on 127.0.0.1:0 under smppgw's logging setup.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web

from smppgw.logs import ACCESS_LOGGER, set_log_level, setup_logging

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """setup_logging configures process-wide loggers: put them back after the test."""
    root = logging.getLogger()
    access = logging.getLogger(ACCESS_LOGGER)
    handlers, level, access_level = root.handlers[:], root.level, access.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    access.setLevel(access_level)


@pytest.fixture
async def api_url() -> AsyncIterator[str]:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}/healthz"
    await runner.cleanup()


class SignalOnRecord(logging.Handler):
    """Sets an event when a record reaches it (aiohttp logs on the loop's thread)."""

    def __init__(self, event: asyncio.Event) -> None:
        super().__init__()
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        self.event.set()


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER]


async def get(url: str) -> None:
    """One request on a new connection: aiohttp decides per connection whether it logs."""
    async with aiohttp.ClientSession() as client, client.get(url) as response:
        assert response.status == 200


@pytest.mark.usefixtures("restore_logging")
async def test_access_lines_only_at_debug(
    api_url: str, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    setup_logging("info")
    logged = asyncio.Event()
    signal = SignalOnRecord(logged)
    logging.getLogger(ACCESS_LOGGER).addHandler(signal)
    request.addfinalizer(lambda: logging.getLogger(ACCESS_LOGGER).removeHandler(signal))
    for _ in range(3):
        await get(api_url)
    set_log_level("debug")  # as a reload to debug does
    await get(api_url)
    # aiohttp logs after the response went out: wait for the line of the debug request.
    async with asyncio.timeout(10):
        await logged.wait()
    # The three requests at info level were answered, and logged nothing, before it.
    [record] = access_records(caplog)
    assert "GET /healthz" in record.getMessage()
