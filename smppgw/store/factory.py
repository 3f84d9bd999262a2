"""Which backend a daemon opens: the embedded SQLite store unless a PostgreSQL URL is given.
asyncpg is imported only in the second case."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from smppgw.store.interface import Store
from smppgw.store.models import WriteFailure
from smppgw.store.sqlite import SqliteStore

__all__ = ["open_store"]


async def open_store(
    state_dir: Path, *, url: str | None = None, password: str | None = None,
    clock: Callable[[], float] = time.time,
    on_commit: Callable[[int, float], None] | None = None,
    on_write_health: Callable[[WriteFailure | None], None] | None = None,
) -> Store:
    """Open (create, migrate) the store. ``url`` None: SQLite in ``state_dir``; else the
    PostgreSQL database at ``url`` (``password`` when the server asks for one). Raises
    StoreError subclasses whose message names the cause in one line. ``on_commit`` and
    ``on_write_health``: see SqliteStore.open."""
    if url is None:
        return await SqliteStore.open(state_dir, clock=clock, on_commit=on_commit,
                                      on_write_health=on_write_health)
    from smppgw.store.postgres import PostgresStore

    return await PostgresStore.open(url, password=password, clock=clock, on_commit=on_commit,
                                    on_write_health=on_write_health)
