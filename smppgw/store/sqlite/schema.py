"""The SQLite schema of the store and its migrations, versioned by ``PRAGMA user_version``.

Append a step to MIGRATIONS to change the schema; never edit a step that has shipped. Pure SQL
and one function that applies it: no threads, no asyncio.
"""

from __future__ import annotations

import sqlite3
from typing import Final

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

# Conventions: wall-clock instants are INTEGER unix milliseconds in columns ending in _unix_ms;
# event times are TEXT UTC ISO 8601 (at_utc) because that is what the events API answers.
# TLVs are JSON text of [tag, "hex"] pairs, in wire order.

_V1: Final[tuple[str, ...]] = (
    """
    CREATE TABLE messages (
        tracking_id          TEXT PRIMARY KEY,      -- 32 lower-case hex
        client_id            TEXT UNIQUE,           -- idempotency key; NULL when none given
        provider             TEXT NOT NULL,
        source               TEXT NOT NULL,
        destination          TEXT NOT NULL,
        text                 TEXT NOT NULL,
        flash                INTEGER NOT NULL DEFAULT 0,
        data_coding          INTEGER NOT NULL,
        encoding             TEXT NOT NULL,
        esm_class            INTEGER NOT NULL DEFAULT 0,
        registered_delivery  INTEGER NOT NULL DEFAULT 1,
        tlvs                 TEXT NOT NULL DEFAULT '[]',
        created_unix_ms      INTEGER NOT NULL,
        updated_unix_ms      INTEGER NOT NULL,
        valid_until_unix_ms  INTEGER,               -- NULL: the provider's default validity
        state                TEXT NOT NULL,
        parts                INTEGER NOT NULL,
        attempts             INTEGER NOT NULL DEFAULT 0,
        last_error           TEXT,
        answer               TEXT NOT NULL          -- the first API answer, JSON
    )
    """,
    # expire_messages scans queued messages by deadline; counts() groups by state.
    "CREATE INDEX messages_state_validity ON messages(state, valid_until_unix_ms)",
    """
    CREATE TABLE segments (
        segment_id           INTEGER PRIMARY KEY,
        tracking_id          TEXT NOT NULL,
        part_index           INTEGER NOT NULL,      -- 0-based
        provider             TEXT NOT NULL,         -- copied from the message, for the indexes
        short_message        BLOB NOT NULL,
        esm_class            INTEGER NOT NULL,
        data_coding          INTEGER NOT NULL,
        tlvs                 TEXT NOT NULL DEFAULT '[]',
        state                TEXT NOT NULL,
        smsc_message_id      TEXT,                  -- as the SMSC sent it in submit_sm_resp
        smsc_message_key     TEXT,                  -- normalised, for receipt correlation
        submit_status        TEXT,                  -- last submit_sm_resp status name
        submitted_unix_ms    INTEGER,
        resp_unix_ms         INTEGER,
        attempts             INTEGER NOT NULL DEFAULT 0,
        created_unix_ms      INTEGER NOT NULL,
        next_attempt_unix_ms INTEGER NOT NULL,
        last_error           TEXT,
        bind                 TEXT,                  -- e.g. wavy#2, the bind that sent it
        receipt_stat         TEXT,
        receipt_err          TEXT,
        receipt_unix_ms      INTEGER,
        receipt              TEXT,                  -- the last receipt's details, JSON
        UNIQUE (tracking_id, part_index)
    )
    """,
    # Dispatch: the oldest due queued parts of one provider, in index order (segment_id is the
    # rowid, so ties on next_attempt keep insertion order, i.e. part order). created_unix_ms
    # makes the queue age query index-only.
    """
    CREATE INDEX segments_dispatch
        ON segments(state, provider, next_attempt_unix_ms, segment_id, created_unix_ms)
    """,
    # Receipts come on any bind of the provider: correlate by provider, not by bind.
    "CREATE INDEX segments_receipt ON segments(provider, smsc_message_key)",
    """
    CREATE TABLE events (
        cursor       INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even after deletes
        type         TEXT NOT NULL,                      -- receipt | state | mo
        at_utc       TEXT NOT NULL,                      -- ISO 8601, UTC
        tracking_id  TEXT,
        client_id    TEXT,
        state        TEXT,
        payload      TEXT NOT NULL DEFAULT '{}'
    )
    """,
    "CREATE INDEX events_tracking_id ON events(tracking_id) WHERE tracking_id IS NOT NULL",
    """
    CREATE TABLE unmatched_receipts (
        receipt_id        INTEGER PRIMARY KEY,
        provider          TEXT NOT NULL,
        message_id        TEXT NOT NULL,
        message_key       TEXT NOT NULL,
        receipt           TEXT NOT NULL,             -- the whole ReceiptRecord, JSON
        received_unix_ms  INTEGER NOT NULL,
        matched           INTEGER NOT NULL DEFAULT 0,
        matched_unix_ms   INTEGER
    )
    """,
    "CREATE INDEX unmatched_receipts_open ON unmatched_receipts(receipt_id) WHERE matched = 0",
    # Every lookup key of a parked receipt (the id read in each plausible base).
    """
    CREATE TABLE unmatched_receipt_keys (
        provider     TEXT NOT NULL,
        message_key  TEXT NOT NULL,
        receipt_id   INTEGER NOT NULL
    )
    """,
    "CREATE INDEX unmatched_receipt_keys_key ON unmatched_receipt_keys(provider, message_key)",
    """
    CREATE TABLE mo_parts (
        part_id           INTEGER PRIMARY KEY,
        provider          TEXT NOT NULL,
        source            TEXT NOT NULL,
        destination       TEXT NOT NULL,
        reference         INTEGER NOT NULL,
        total             INTEGER NOT NULL,
        seq               INTEGER NOT NULL,
        data_coding       INTEGER NOT NULL,
        payload           BLOB NOT NULL,
        bind              TEXT,
        received_unix_ms  INTEGER NOT NULL,
        UNIQUE (provider, source, destination, reference, total, seq)
    )
    """,
    """
    CREATE TABLE mo_messages (
        mo_id             INTEGER PRIMARY KEY,
        provider          TEXT NOT NULL,
        source            TEXT NOT NULL,
        destination       TEXT NOT NULL,
        text              TEXT NOT NULL,
        data_coding       INTEGER NOT NULL,
        parts             INTEGER NOT NULL,
        bind              TEXT,
        received_unix_ms  INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE webhook_positions (
        name             TEXT PRIMARY KEY,
        cursor           INTEGER NOT NULL,           -- last event acknowledged by the webhook
        updated_unix_ms  INTEGER NOT NULL
    )
    """,
)

# v2: retries, requeues and cancellations leave a note in the message's history without
# adding an event (apps see state changes and receipts, not every throttled attempt).
_V2: Final[tuple[str, ...]] = (
    """
    CREATE TABLE message_notes (
        note_id      INTEGER PRIMARY KEY,
        tracking_id  TEXT NOT NULL,
        part_index   INTEGER,
        at_unix_ms   INTEGER NOT NULL,
        kind         TEXT NOT NULL,                  -- retry | requeued | cancelled
        detail       TEXT NOT NULL DEFAULT '{}'
    )
    """,
    "CREATE INDEX message_notes_tracking_id ON message_notes(tracking_id)",
)

# v3: partial indexes, so a part's row leaves the queue indexes once it is sent and a message's
# leaves the expiry index once it left 'queued': the later updates of a message (submitted,
# delivered) no longer move index entries. Same queries, same plans, fewer writes.
_V3: Final[tuple[str, ...]] = (
    "DROP INDEX segments_dispatch",
    "CREATE INDEX segments_queued ON segments(provider, next_attempt_unix_ms, segment_id)"
    " WHERE state = 'queued'",
    "CREATE INDEX segments_unsent ON segments(provider, state, created_unix_ms)"
    " WHERE state IN ('queued', 'sending')",
    "DROP INDEX messages_state_validity",
    "CREATE INDEX messages_queued_validity ON messages(valid_until_unix_ms)"
    " WHERE state = 'queued'",
)

# v4: parts submitted without a message id (no receipt can match them), for expire_messages,
# which ends their messages 'unknown' when their validity runs out. Rare: the index is small.
_V4: Final[tuple[str, ...]] = (
    "CREATE INDEX segments_unmatchable ON segments(tracking_id)"
    " WHERE smsc_message_key IS NULL AND state IN ('submitted', 'accepted')",
)

# v5: the operator's commands. The message list walks indexes that end in (created,
# tracking_id), newest first (store/search.py): all messages, per provider, per destination,
# and the messages that ended undelivered, through a column set once when a message ends so
# (its index takes no entry for the common moves queued → submitted → delivered). The queue's
# own index now leads with (created, tracking_id) too, so 'queued' lists from it; the queue
# statistics read the same entries either way. A retry links to the message it retries
# (one retry per message), and keeps the request's own choices to run it again. Pauses are
# rows.
_V5: Final[tuple[str, ...]] = (
    # The state of a message that ended undelivered (UNDELIVERED_STATES), else NULL.
    "ALTER TABLE messages ADD COLUMN undelivered_state TEXT",
    # The tracking id of the message this one is a new attempt of.
    "ALTER TABLE messages ADD COLUMN retry_of TEXT",
    # The request's own choices (NewMessage.request), JSON; NULL: stored before v5.
    "ALTER TABLE messages ADD COLUMN request TEXT",
    "UPDATE messages SET undelivered_state = state"
    " WHERE state IN ('undeliverable', 'expired', 'rejected', 'failed', 'unknown')",
    "CREATE INDEX messages_created ON messages(created_unix_ms, tracking_id)",
    "CREATE INDEX messages_provider ON messages(provider, created_unix_ms, tracking_id)",
    "CREATE INDEX messages_destination ON messages(destination, created_unix_ms, tracking_id)",
    "CREATE INDEX messages_undelivered ON messages(undelivered_state, created_unix_ms,"
    " tracking_id) WHERE undelivered_state IS NOT NULL",
    "CREATE UNIQUE INDEX messages_retry_of ON messages(retry_of) WHERE retry_of IS NOT NULL",
    "DROP INDEX segments_unsent",
    "CREATE INDEX segments_unsent ON segments(created_unix_ms, tracking_id, provider, state)"
    " WHERE state IN ('queued', 'sending')",
    """
    CREATE TABLE provider_pauses (
        provider         TEXT PRIMARY KEY,
        paused_unix_ms   INTEGER NOT NULL
    )
    """,
)

# v6: receipts are correlated per SMSC account (system_id + servers: ProviderConfig.account),
# not per provider table, so a receipt on any bind of the account, whichever table opened
# it, finds its part. A part records the account that answered its submit; a parked receipt
# waits under its account. Rows from before carry their provider's name as account (what
# it was), which the daemon replaces by the provider's account key at start
# (Store.adopt_accounts).
_V6: Final[tuple[str, ...]] = (
    "ALTER TABLE segments ADD COLUMN account TEXT",
    "UPDATE segments SET account = provider WHERE smsc_message_key IS NOT NULL",
    "DROP INDEX segments_receipt",
    "CREATE INDEX segments_receipt ON segments(account, smsc_message_key)",
    "ALTER TABLE unmatched_receipts ADD COLUMN account TEXT",
    "UPDATE unmatched_receipts SET account = provider",
    "ALTER TABLE unmatched_receipt_keys ADD COLUMN account TEXT",
    "UPDATE unmatched_receipt_keys SET account = provider",
    "DROP INDEX unmatched_receipt_keys_key",
    "CREATE INDEX unmatched_receipt_keys_key ON unmatched_receipt_keys(account, message_key)",
)

#: Step N (1-based) takes a database from user_version N-1 to N.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1, _V2, _V3, _V4, _V5, _V6)
SCHEMA_VERSION: Final[int] = len(MIGRATIONS)


def migrate(
    conn: sqlite3.Connection, steps: tuple[tuple[str, ...], ...] = MIGRATIONS
) -> tuple[int, int]:
    """Bring ``conn`` (autocommit mode, no open transaction) to ``len(steps)``.

    Each step runs in its own IMMEDIATE transaction together with the user_version bump, so a
    crash mid-migration leaves the previous version intact. Returns (from, to). Raises
    sqlite3.DatabaseError when the file is newer than ``steps`` know (the caller refuses to
    run rather than write into a schema it does not understand).
    """
    (current,) = conn.execute("PRAGMA user_version").fetchone()
    target = len(steps)
    if current > target:
        raise sqlite3.DatabaseError(
            f"database schema version {current} is newer than this smppgw knows ({target})"
        )
    for version in range(current + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in steps[version - 1]:
                conn.execute(statement)
            # PRAGMA does not take parameters; version is an int we computed.
            conn.execute(f"PRAGMA user_version = {int(version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return current, target
