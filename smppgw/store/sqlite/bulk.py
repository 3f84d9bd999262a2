"""Whole-batch statements for SQLite: many rows in one INSERT or UPDATE, many rows out of one
SELECT as a single JSON value.

Why not ``executemany`` or a cursor loop: Python's sqlite3 releases the GIL around every
``sqlite3_step``, which is once per row there, and while the event loop thread runs Python the
writer thread then waits up to a switch interval to get it back, row after row (measured:
340 µs per inserted row instead of 6 with a busy loop thread). One statement over the whole
batch is one step. A text per row count: the writer's statement cache (STATEMENT_CACHE) keeps
the shapes a busy gateway uses, so each is prepared once.
"""

from __future__ import annotations

import functools
import itertools
import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, Final

__all__ = [
    "STATEMENT_CACHE",
    "VARIABLE_LIMIT",
    "in_list",
    "insert_rows",
    "json_rows",
    "pieces",
    "update_rows",
]

#: Host parameters per statement: SQLite's default SQLITE_MAX_VARIABLE_NUMBER since 3.32.
VARIABLE_LIMIT: Final = 32766
#: Prepared statements the writer's connection keeps (sqlite3's default is 128).
STATEMENT_CACHE: Final = 2048
# Rows per statement at most: more saves little, and keeps the number of shapes bounded.
_MAX_ROWS: Final = 500


def pieces(rows: Sequence[Any], width: int) -> Iterator[Sequence[Any]]:
    """``rows`` in consecutive slices of at most _MAX_ROWS rows and VARIABLE_LIMIT values
    (``width`` per row)."""
    size = max(1, min(_MAX_ROWS, VARIABLE_LIMIT // max(1, width)))
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


@functools.lru_cache(maxsize=STATEMENT_CACHE)
def _values(row: str, count: int) -> str:
    return ",".join([row] * count)


def insert_rows(
    conn: sqlite3.Connection, into: str, rows: Sequence[Sequence[object]], row: str,
) -> None:
    """``INSERT INTO t (a, b, ...)`` (``into``) of every row; ``row`` is one row's VALUES
    template, e.g. ``(?, ?, 'queued')``, with one ``?`` per value of a row."""
    width = row.count("?")
    for piece in pieces(rows, width):
        conn.execute(f"{into} VALUES {_values(row, len(piece))}",
                     list(itertools.chain.from_iterable(piece)))


def update_rows(
    conn: sqlite3.Connection, table: str, key: str, columns: Sequence[str],
    rows: Sequence[Sequence[object]], assignments: str,
) -> None:
    """One UPDATE per piece of ``rows``: each row is the values of ``columns`` then the ``key``
    value of the row to change; ``assignments`` use them as ``v.<column>``, e.g.
    ``state = v.state, attempts = attempts + v.attempts``. Column names come from the code,
    never from input."""
    names = [*columns, "key_"]
    row = "(" + ",".join("?" * len(names)) + ")"
    head = f"WITH v({','.join(names)}) AS (VALUES "
    tail = f") UPDATE {table} SET {assignments} FROM v WHERE {table}.{key} = v.key_"
    for piece in pieces(rows, len(names)):
        conn.execute(head + _values(row, len(piece)) + tail,
                     list(itertools.chain.from_iterable(piece)))


def in_list(values: Sequence[object]) -> Iterator[tuple[Sequence[object], str]]:
    """``values`` in pieces with their ``?,?,...`` lists, for ``IN (...)``."""
    for piece in pieces(values, 1):
        yield piece, _values("?", len(piece))


def json_rows(conn: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> list[Any]:
    """The rows of ``sql``, a query whose one result is ``json_group_array(json_array(...))``
    (NULL when it matched nothing), as lists."""
    (text,) = conn.execute(sql, params).fetchone()
    return json.loads(text) if text else []
