"""Store schema and rules that need no running store: migrations by PRAGMA user_version, the
message state derived from its parts, and the database settings that make "accepted" durable.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from smppgw.store import (
    DB_FILENAME,
    MIGRATIONS,
    SCHEMA_VERSION,
    NewMessage,
    NewSegment,
    ReceiptRecord,
    SqliteStore,
    StoreSchemaError,
    SubmitOutcome,
    derive_message_state,
)
from smppgw.store.encoding import dumps, new_tracking_id
from smppgw.store.rules import SEGMENT_COLUMNS
from smppgw.store.sqlite.schema import migrate


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_fresh_database_reaches_the_current_version(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    assert migrate(conn) == (0, SCHEMA_VERSION)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert {"messages", "segments", "events", "unmatched_receipts", "mo_parts", "mo_messages",
            "webhook_positions", "message_notes"} <= _tables(conn)
    assert migrate(conn) == (SCHEMA_VERSION, SCHEMA_VERSION)   # idempotent


def test_a_failing_step_leaves_the_previous_version(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    broken = (MIGRATIONS[0], ("CREATE TABLE fine (x)", "THIS IS NOT SQL"))
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, broken)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "fine" not in _tables(conn)


async def test_a_version_1_database_migrates_and_keeps_its_data(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    conn = sqlite3.connect(state_dir / DB_FILENAME, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn, MIGRATIONS[:1])
    tracking_id = "ab" * 16
    conn.execute(
        "INSERT INTO messages (tracking_id, client_id, provider, source, destination, text,"
        " data_coding, encoding, created_unix_ms, updated_unix_ms, state, parts, answer)"
        " VALUES (?, 'old-1', 'wavy', 'Acme', '5511999', 'from v1', 0, 'gsm7', 1, 1,"
        " 'queued', 1, '{\"accepted\":true}')", (tracking_id,))
    conn.execute(
        "INSERT INTO segments (tracking_id, part_index, provider, short_message, esm_class,"
        " data_coding, state, created_unix_ms, next_attempt_unix_ms)"
        " VALUES (?, 0, 'wavy', x'66726f6d207631', 0, 0, 'queued', 1, 1)", (tracking_id,))
    conn.close()

    async with await SqliteStore.open(state_dir) as store:
        assert store.schema_migrated_from == 1
        view = await store.get_message(tracking_id)
        assert view is not None and view.text == "from v1" and view.state == "queued"
        # The v2 table is used by a transient outcome's history note.
        (segment,) = await store.claim_segments("wavy", 10, now_wall=10.0)
        await store.record_submit_results(
            [SubmitOutcome.transient(segment.segment_id, 20.0, status_name="ESME_RTHROTTLED")])
        view = await store.get_message(tracking_id)
        assert view is not None
        assert [h.type for h in view.history if h.cursor is None] == ["retry"]
        duplicate = await store.accept_messages([NewMessage(
            "cd" * 16, "wavy", "Acme", "5511999", "again", (NewSegment(b"again"),),
            client_id="old-1")])
        assert duplicate[0].duplicate and duplicate[0].tracking_id == tracking_id
    conn = sqlite3.connect(state_dir / DB_FILENAME)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_a_version_5_database_keeps_its_receipt_correlation(tmp_path: Path) -> None:
    """v6 correlates receipts per account: a part submitted before (with its key) and a
    receipt parked before still meet once the daemon adopted its provider's account."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    conn = sqlite3.connect(state_dir / DB_FILENAME, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn, MIGRATIONS[:5])
    # A part submitted (its key kept), and one sent whose answer has not come yet.
    for segment_id, tracking_id, state, key in ((1, "ab" * 16, "submitted", "sent-1"),
                                                (2, "cd" * 16, "sending", None)):
        conn.execute(
            "INSERT INTO messages (tracking_id, provider, source, destination, text,"
            " data_coding, encoding, created_unix_ms, updated_unix_ms, state, parts, answer)"
            " VALUES (?, 'wavy', 'Acme', '5511999', 'v4', 0, 'gsm7', 1, 1, ?, 1, '{}')",
            (tracking_id, "queued" if key is None else state))
        conn.execute(
            "INSERT INTO segments (segment_id, tracking_id, part_index, provider, short_message,"
            " esm_class, data_coding, state, created_unix_ms, next_attempt_unix_ms,"
            " smsc_message_id, smsc_message_key) VALUES (?, ?, 0, 'wavy', x'7634', 0, 0, ?, 1,"
            " 1, ?, ?)", (segment_id, tracking_id, state, key, key))
    conn.execute("INSERT INTO unmatched_receipts (receipt_id, provider, message_id, message_key,"
                 " receipt, received_unix_ms) VALUES (7, 'wavy', 'late-1', 'late-1', ?, 1)",
                 (dumps({"provider": "wavy", "message_id": "late-1", "stat": "DELIVRD",
                         "err": "000", "outcome": "delivered", "final": True}),))
    conn.execute("INSERT INTO unmatched_receipt_keys (provider, message_key, receipt_id)"
                 " VALUES ('wavy', 'late-1', 7)")
    conn.close()

    account = "acme@smpp.example:2775"
    async with await SqliteStore.open(state_dir) as store:
        assert store.schema_migrated_from == 5
        assert await store.adopt_accounts({"wavy": account}) == 3
        (result,) = await store.record_receipts([ReceiptRecord(
            "wavy", "sent-1", "DELIVRD", "000", "delivered", True, account=account)])
        assert result.tracking_id == "ab" * 16
        # The answer of the part in flight at the upgrade finds the receipt parked before.
        assert await store.record_submit_results(
            [SubmitOutcome.ok(2, "late-1", account=account)]) == ["delivered"]


async def test_a_newer_database_is_refused_and_the_lock_released(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    conn = sqlite3.connect(state_dir / DB_FILENAME, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    for _ in range(2):   # the second attempt proves the first released the lock
        with pytest.raises(StoreSchemaError, match="newer"):
            await SqliteStore.open(state_dir)


async def test_durability_settings(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path) as store:
        def pragmas(tx: object) -> tuple[str, int]:
            conn = tx.conn  # type: ignore[attr-defined]
            return (conn.execute("PRAGMA journal_mode").fetchone()[0],
                    conn.execute("PRAGMA synchronous").fetchone()[0])
        assert await store._write(pragmas) == ("wal", 2)   # 2 = FULL


# --- the message state rule ----------------------------------------------------------------------

@pytest.mark.parametrize(("parts", "expected"), [
    (["queued"], "queued"),
    (["sending"], "queued"),
    (["submitted", "sending"], "queued"),
    (["submitted", "submitted"], "submitted"),
    (["accepted", "submitted"], "submitted"),
    (["accepted", "delivered"], "accepted"),
    (["delivered"], "delivered"),
    (["delivered", "delivered", "delivered"], "delivered"),
    (["delivered", "submitted"], "submitted"),
    (["undeliverable", "submitted"], "submitted"),      # final only once every part is
    (["delivered", "undeliverable"], "undeliverable"),
    (["expired", "delivered"], "expired"),
    (["expired", "undeliverable"], "undeliverable"),
    (["expired", "rejected", "undeliverable"], "rejected"),
    (["failed", "queued"], "failed"),                    # a permanent refusal fails at once
    (["delivered", "failed"], "failed"),
])
def test_derive_message_state(parts: list[str], expected: str) -> None:
    assert derive_message_state(parts) == expected
    assert derive_message_state(reversed(parts)) == expected   # part order never matters


# --- encodings shared by the backends ------------------------------------------------------------


def test_tracking_ids_are_hex_and_grow_with_time() -> None:
    ids = [new_tracking_id(1_700_000_000.0 + k / 1000) for k in range(50)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 50
    assert ids[0][:12] == f"{1_700_000_000_000:012x}"
    same_ms = {new_tracking_id(1_700_000_000.0) for _ in range(1000)}
    assert len(same_ms) == 1000            # 80 random bits within one millisecond


def test_dumps_is_compact_json_keeping_utf8() -> None:
    value = {"a": "é\"\n", "b": [1, 2.5, None, True], "c": {}}
    assert dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_postgresql_knows_the_type_of_every_column_the_rules_set() -> None:
    from smppgw.store.postgres.commands import _SEGMENT_TYPES

    assert set(_SEGMENT_TYPES) == SEGMENT_COLUMNS
