"""The store backends as the tests see them: open a store, name its config, reach behind it.

``Backend`` is what the ``backend`` fixture (tests/conftest.py) gives: SQLite in a state dir,
or PostgreSQL in a fresh database of the session's private server.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from smppgw.store import SqliteStore, Store
from tests.pgserver import PgServer

_databases = itertools.count(1)


async def new_database(server: PgServer) -> str:
    """A new empty database on ``server``; its URL."""
    name = f"test_{next(_databases)}"
    conn = await asyncpg.connect(server.url())
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return server.url(name)


@dataclass(frozen=True)
class Backend:
    name: str                      # "sqlite" or "postgresql"
    state_dir: Path
    url: str | None = None

    @property
    def sqlite(self) -> bool:
        return self.name == "sqlite"

    async def open(
        self, *, clock: Callable[[], float] = time.time, place: str = "", **options: Any
    ) -> Store:
        """A store on this backend's place (the same one every call, so a second open is a
        restart), or on another one named ``place``."""
        if self.sqlite:
            return await SqliteStore.open(self.state_dir / place if place else self.state_dir,
                                          clock=clock, **options)
        from smppgw.store.postgres import PostgresStore

        assert self.url is not None
        url = self.url
        if place:
            base, _, query = url.partition("?")
            conn = await asyncpg.connect(url)
            name = f"{base.rsplit('/', 1)[1]}_{place}"
            try:
                exists = await conn.fetchval(
                    "SELECT 1 FROM pg_database WHERE datname = $1", name)
                if not exists:
                    await conn.execute(f"CREATE DATABASE {name}")
            finally:
                await conn.close()
            url = f"{base.rsplit('/', 1)[0]}/{name}?{query}"
        return await PostgresStore.open(url, clock=clock, **options)

    def store_table(self) -> dict[str, object]:
        """The ``[store]`` table of a config using this backend."""
        return {} if self.sqlite else {"url": self.url}
