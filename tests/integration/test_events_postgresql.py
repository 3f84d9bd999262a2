"""PostgreSQL with several writers at once: a reader following GET /v1/events sees every event
exactly once, in cursor order, with no gap, although the writers' transactions overlap and
commit in an order nobody chose; claimers on two connections split the queue.

Three writer stores share the database (``exclusive=False``, as cluster nodes will) while the
API runs on a fourth; the reader long-polls with small pages, so it reads while commits land.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from pathlib import Path

import aiohttp
import pytest

from smppgw.api.app import create_app, start_api
from smppgw.services.submission import SubmitService
from smppgw.store import NewMessage, NewSegment, Store
from smppgw.store.postgres import PostgresStore
from tests.integration.test_api import make_config
from tests.pgserver import PgServer
from tests.store_backends import new_database

pytestmark = pytest.mark.timeout(60)

WRITERS = 3
TASKS_PER_WRITER = 4
REQUESTS_PER_TASK = 25
_ids = itertools.count(1)


def batch(rng: random.Random) -> list[NewMessage]:
    out = []
    for _ in range(rng.randint(1, 12)):
        n = next(_ids)
        out.append(NewMessage(f"{n:032x}", "acme", "Acme", f"5511{n:09d}", "hi",
                              (NewSegment(b"hi"),)))
    return out


async def write(store: Store, seed: int, accepted: set[str]) -> None:
    rng = random.Random(seed)
    for _ in range(REQUESTS_PER_TASK):
        for result in await store.accept_messages(batch(rng)):
            assert result.stored
            accepted.add(result.tracking_id)
        if rng.random() < 0.3:
            await asyncio.sleep(0)


async def test_a_reader_sees_every_event_once_while_writers_commit_concurrently(
    pg_server: PgServer, tmp_path: Path, sock_dir: Path
) -> None:
    url = await new_database(pg_server)
    config = make_config(tmp_path / "state", sock_dir / "submit.sock")
    api_store = await PostgresStore.open(url)
    writers = [await PostgresStore.open(url, exclusive=False) for _ in range(WRITERS)]

    async def status() -> dict[str, object]:
        return {}

    server = await start_api(create_app(submit=SubmitService(config, api_store),
                                        store=api_store, status=status,
                                        gateway=config.gateway), gateway=config.gateway)
    accepted: set[str] = set()
    last_cursor: list[int] = []   # set once every writer is done
    seen: list[tuple[int, str]] = []

    async def read() -> None:
        """Small pages as fast as they come (no wait: reads land between commits), until the
        last cursor written; a skipped event shows as a gap, a repeated one as a duplicate."""
        cursor = 0
        connector = aiohttp.UnixConnector(path=str(config.gateway.submit_socket))
        async with aiohttp.ClientSession(connector=connector) as http:
            while not (last_cursor and cursor >= last_cursor[0]):
                async with http.get("http://smppgw/v1/events", params={
                        "after": str(cursor), "wait": "0", "limit": "37"}) as response:
                    assert response.status == 200
                    body = await response.json()
                seen.extend((e["cursor"], e["tracking_id"]) for e in body["events"])
                cursor = body["cursor"]

    try:
        async with asyncio.timeout(45):
            reader = asyncio.create_task(read())
            await asyncio.gather(*(write(store, seed, accepted)
                                   for seed, store in enumerate(writers * TASKS_PER_WRITER)))
            last_cursor.append(max(store.last_cursor for store in writers))
            await reader
    finally:
        await server.close()
        for store in (*writers, api_store):
            await store.close()
    assert len(accepted) > 500
    assert [c for c, _ in seen] == list(range(1, len(accepted) + 1))   # once, in order, no gap
    assert {t for _, t in seen} == accepted


async def test_claimers_on_two_connections_never_get_the_same_part(
    pg_server: PgServer,
) -> None:
    """Claims take rows FOR UPDATE SKIP LOCKED: two stores claiming from one queue at once
    (cluster nodes, later) split it between them, every part exactly once."""
    url = await new_database(pg_server)
    stores = [await PostgresStore.open(url, exclusive=False) for _ in range(2)]
    try:
        rng = random.Random(7)
        parts = 0
        for _ in range(40):
            parts += len(await stores[0].accept_messages(batch(rng)))
        claimed: list[list[int]] = [[], []]

        async def claim(index: int) -> None:
            for _ in range(1000):   # bounded: far more rounds than parts / 5
                got = await stores[index].claim_segments("acme", 5)
                if not got:
                    return
                claimed[index].extend(s.segment_id for s in got)

        await asyncio.gather(claim(0), claim(1))
        stats = await stores[1].queue_stats()
    finally:
        for store in stores:
            await store.close()
    assert claimed[0] and claimed[1]
    assert not set(claimed[0]) & set(claimed[1])
    assert len(claimed[0]) + len(claimed[1]) == parts == stats["acme"].sending
