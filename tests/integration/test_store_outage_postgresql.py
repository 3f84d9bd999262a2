"""PostgreSQL going away under a running store is an outage, not a crash, as a full disk is for
SQLite: writes and reads fail at once with StoreUnavailableError, a StoreWriteError with reason
``unavailable`` (so the API answers 503, deliver_sm gets a transient error and claiming waits),
``write_failure`` and the health listener say so, nothing half-written is left, and the store
carries on when the server is back.

The test stops its own server (the session's is shared), so it pays one start of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from smppgw.store import StoreUnavailableError, WriteFailure
from smppgw.store.postgres import PostgresStore
from tests.pgserver import PgServer, find_bindir
from tests.store_backends import new_database
from tests.unit.test_store_writes import message

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def own_server(pg_server: PgServer) -> Iterator[PgServer]:
    """A server of this test's own (``pg_server`` only decides skip or fail when PostgreSQL is
    missing)."""
    bindir = find_bindir()
    assert bindir is not None
    server = PgServer(bindir, fsync=False).start()
    yield server
    server.stop()


async def test_a_lost_database_is_an_outage_the_store_recovers_from(
    own_server: PgServer,
) -> None:
    heard: list[WriteFailure | None] = []
    store = await PostgresStore.open(await new_database(own_server), reconnect_interval=0,
                                     on_write_health=heard.append)
    try:
        before = message(client_id="before")
        await store.accept_messages([before])
        await asyncio.to_thread(own_server.pause)

        # The server told the connection it was going (or the write found it gone).
        with pytest.raises(StoreUnavailableError, match="nothing of this write was stored"):
            await store.accept_messages([message(client_id="during")])
        failure = store.write_failure
        assert failure is not None and failure.reason == "unavailable"
        with pytest.raises(StoreUnavailableError, match="cannot connect to the database"):
            await store.claim_segments("wavy", 10)
        with pytest.raises(StoreUnavailableError):
            await store.events_after(0)            # reads too, but they count no refusal
        with pytest.raises(StoreUnavailableError):
            await store.probe_write()
        assert not store.closed

        await asyncio.to_thread(own_server.resume)
        await store.probe_write()                  # what the daemon's housekeeping does
        assert store.write_failure is None
        assert [f.refused if f else None for f in heard] == [1, 2, 3, None]
        await store.wait_writable()
        (after,) = await store.accept_messages([message(client_id="after")])
        assert after.stored
        assert await store.get_tracking_id("during") is None
        assert await store.get_tracking_id("before") == before.tracking_id
        assert [e.client_id for e in await store.events_after(0)] == ["before", "after"]
        claimed = await store.claim_segments("wavy", 10)
        assert {s.client_id for s in claimed} == {"before", "after"}
    finally:
        await store.close()
