"""The PostgreSQL schema of the store and its migrations, versioned by the one row of
``smppgw_schema``.

The tables mirror the SQLite schema column for column (same names, same meaning, instants as
bigint unix milliseconds, JSON as text), so both backends read and write the same row shapes.
Append a step to MIGRATIONS to change the schema; never edit a step that has shipped.

Indexes are chosen for HOT updates: no index of ``messages`` covers a column that changes after
the insert (state, updated, attempts, last_error), and the table leaves room in its pages, so a
message's state changes rewrite its row in place instead of adding an entry to every index. The
expiry index lives on ``segments`` (which carry a copy of the validity), whose rows change their
indexed state anyway.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MIGRATIONS", "SCHEMA_LOCK", "SCHEMA_VERSION"]

_V1: Final[tuple[str, ...]] = (
    """
    CREATE TABLE messages (
        tracking_id          text PRIMARY KEY,
        client_id            text UNIQUE,
        provider             text NOT NULL,
        source               text NOT NULL,
        destination          text NOT NULL,
        text                 text NOT NULL,
        flash                integer NOT NULL DEFAULT 0,
        data_coding          integer NOT NULL,
        encoding             text NOT NULL,
        esm_class            integer NOT NULL DEFAULT 0,
        registered_delivery  integer NOT NULL DEFAULT 1,
        tlvs                 text NOT NULL DEFAULT '[]',
        created_unix_ms      bigint NOT NULL,
        updated_unix_ms      bigint NOT NULL,
        valid_until_unix_ms  bigint,
        state                text NOT NULL,
        parts                integer NOT NULL,
        attempts             integer NOT NULL DEFAULT 0,
        last_error           text,
        answer               text NOT NULL
    ) WITH (fillfactor = 70)
    """,
    # Retention walks messages by age.
    "CREATE INDEX messages_created ON messages (created_unix_ms)",
    """
    CREATE TABLE segments (
        segment_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tracking_id          text NOT NULL,
        part_index           integer NOT NULL,
        provider             text NOT NULL,
        short_message        bytea NOT NULL,
        esm_class            integer NOT NULL,
        data_coding          integer NOT NULL,
        tlvs                 text NOT NULL DEFAULT '[]',
        state                text NOT NULL,
        smsc_message_id      text,
        smsc_message_key     text,
        submit_status        text,
        submitted_unix_ms    bigint,
        resp_unix_ms         bigint,
        attempts             integer NOT NULL DEFAULT 0,
        created_unix_ms      bigint NOT NULL,
        next_attempt_unix_ms bigint NOT NULL,
        last_error           text,
        bind                 text,
        receipt_stat         text,
        receipt_err          text,
        receipt_unix_ms      bigint,
        receipt              text,
        valid_until_unix_ms  bigint,               -- the message's, copied for the indexes
        UNIQUE (tracking_id, part_index)
    )
    """,
    # expire_messages: waiting parts by their message's deadline.
    "CREATE INDEX segments_queued_validity ON segments (valid_until_unix_ms)"
    " WHERE state = 'queued' AND valid_until_unix_ms IS NOT NULL",
    # Claims: the oldest due queued parts of one provider (FOR UPDATE SKIP LOCKED walks it).
    "CREATE INDEX segments_dispatch ON segments (provider, next_attempt_unix_ms, segment_id)"
    " WHERE state = 'queued'",
    # Queue statistics read only the unsent parts.
    "CREATE INDEX segments_unsent ON segments (provider, state, created_unix_ms)"
    " WHERE state IN ('queued', 'sending')",
    # Receipts come on any bind of the provider: correlate by provider, not by bind.
    "CREATE INDEX segments_receipt ON segments (provider, smsc_message_key)"
    " WHERE smsc_message_key IS NOT NULL",
    """
    CREATE TABLE events (
        cursor       bigint PRIMARY KEY,       -- from event_counter: gap-free, commit order
        type         text NOT NULL,
        at_utc       text NOT NULL,
        tracking_id  text,
        client_id    text,
        state        text,
        payload      text NOT NULL DEFAULT '{}'
    )
    """,
    "CREATE INDEX events_tracking_id ON events (tracking_id) WHERE tracking_id IS NOT NULL",
    # The last cursor given. A transaction takes this row's lock just before COMMIT to number
    # its events, so cursors are visible in order: no reader ever sees cursor N+1 while N is
    # still uncommitted (a sequence would give numbers that commit out of order).
    """
    CREATE TABLE event_counter (
        id    integer PRIMARY KEY CHECK (id = 1),
        last  bigint NOT NULL
    )
    """,
    "INSERT INTO event_counter (id, last) VALUES (1, 0)",
    """
    CREATE TABLE unmatched_receipts (
        receipt_id        bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        provider          text NOT NULL,
        message_id        text NOT NULL,
        message_key       text NOT NULL,
        receipt           text NOT NULL,
        received_unix_ms  bigint NOT NULL,
        matched           integer NOT NULL DEFAULT 0,
        matched_unix_ms   bigint
    )
    """,
    "CREATE INDEX unmatched_receipts_open ON unmatched_receipts (receipt_id) WHERE matched = 0",
    """
    CREATE TABLE unmatched_receipt_keys (
        provider     text NOT NULL,
        message_key  text NOT NULL,
        receipt_id   bigint NOT NULL
    )
    """,
    "CREATE INDEX unmatched_receipt_keys_key ON unmatched_receipt_keys (provider, message_key)",
    "CREATE INDEX unmatched_receipt_keys_receipt ON unmatched_receipt_keys (receipt_id)",
    """
    CREATE TABLE mo_parts (
        part_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        provider          text NOT NULL,
        source            text NOT NULL,
        destination       text NOT NULL,
        reference         integer NOT NULL,
        total             integer NOT NULL,
        seq               integer NOT NULL,
        data_coding       integer NOT NULL,
        payload           bytea NOT NULL,
        bind              text,
        received_unix_ms  bigint NOT NULL,
        UNIQUE (provider, source, destination, reference, total, seq)
    )
    """,
    """
    CREATE TABLE mo_messages (
        mo_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        provider          text NOT NULL,
        source            text NOT NULL,
        destination       text NOT NULL,
        text              text NOT NULL,
        data_coding       integer NOT NULL,
        parts             integer NOT NULL,
        bind              text,
        received_unix_ms  bigint NOT NULL
    )
    """,
    """
    CREATE TABLE webhook_positions (
        name             text PRIMARY KEY,
        cursor           bigint NOT NULL,
        updated_unix_ms  bigint NOT NULL
    )
    """,
    """
    CREATE TABLE message_notes (
        note_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tracking_id  text NOT NULL,
        part_index   integer,
        at_unix_ms   bigint NOT NULL,
        kind         text NOT NULL,
        detail       text NOT NULL DEFAULT '{}'
    )
    """,
    "CREATE INDEX message_notes_tracking_id ON message_notes (tracking_id)",
)

# v2: parts submitted without a message id (no receipt can match them), by their validity, for
# expire_messages, which ends their messages 'unknown' when it runs out. Rare: a small index.
_V2: Final[tuple[str, ...]] = (
    "CREATE INDEX segments_unmatchable ON segments (valid_until_unix_ms)"
    " WHERE smsc_message_key IS NULL AND state IN ('submitted', 'accepted')",
)

# v3: the operator's commands, as SQLite's v5 (see there). ``undelivered_state`` changes once,
# when a message ends undelivered, so indexing it keeps the other updates of a message HOT (a
# partial index on ``state`` itself would not: a column its predicate reads counts as
# indexed). The destination index compares in "C" order, which the prefix ranges of the list
# use whatever the database's collation.
_V3: Final[tuple[str, ...]] = (
    "ALTER TABLE messages ADD COLUMN undelivered_state text",
    "ALTER TABLE messages ADD COLUMN retry_of text",
    "ALTER TABLE messages ADD COLUMN request text",
    "UPDATE messages SET undelivered_state = state"
    " WHERE state IN ('undeliverable', 'expired', 'rejected', 'failed', 'unknown')",
    "DROP INDEX messages_created",
    "CREATE INDEX messages_created ON messages (created_unix_ms, tracking_id)",
    "CREATE INDEX messages_provider ON messages (provider, created_unix_ms, tracking_id)",
    'CREATE INDEX messages_destination ON messages (destination COLLATE "C", created_unix_ms,'
    " tracking_id)",
    "CREATE INDEX messages_undelivered ON messages (undelivered_state, created_unix_ms,"
    " tracking_id) WHERE undelivered_state IS NOT NULL",
    "CREATE UNIQUE INDEX messages_retry_of ON messages (retry_of) WHERE retry_of IS NOT NULL",
    "DROP INDEX segments_unsent",
    "CREATE INDEX segments_unsent ON segments (created_unix_ms, tracking_id, provider, state)"
    " WHERE state IN ('queued', 'sending')",
    """
    CREATE TABLE provider_pauses (
        provider         text PRIMARY KEY,
        paused_unix_ms   bigint NOT NULL
    )
    """,
)

# v4: receipts are correlated per SMSC account (system_id + servers: ProviderConfig.account),
# not per provider table, so a receipt on any bind of the account, whichever table opened
# it, finds its part. A part records the account that answered its submit; a parked receipt
# waits under its account. Rows from before carry their provider's name as account (what
# it was), which the daemon replaces by the provider's account key at start
# (Store.adopt_accounts).
_V4: Final[tuple[str, ...]] = (
    "ALTER TABLE segments ADD COLUMN account text",
    "UPDATE segments SET account = provider WHERE smsc_message_key IS NOT NULL",
    "DROP INDEX segments_receipt",
    "CREATE INDEX segments_receipt ON segments (account, smsc_message_key)"
    " WHERE smsc_message_key IS NOT NULL",
    "ALTER TABLE unmatched_receipts ADD COLUMN account text",
    "UPDATE unmatched_receipts SET account = provider",
    "ALTER TABLE unmatched_receipt_keys ADD COLUMN account text",
    "UPDATE unmatched_receipt_keys SET account = provider",
    "DROP INDEX unmatched_receipt_keys_key",
    "CREATE INDEX unmatched_receipt_keys_key ON unmatched_receipt_keys (account, message_key)",
)

#: Step N (1-based) takes a database from version N-1 to N.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1, _V2, _V3, _V4)
SCHEMA_VERSION: Final[int] = len(MIGRATIONS)

#: pg_advisory_xact_lock key held while migrating, so two daemons starting at once take turns.
SCHEMA_LOCK: Final = 0x736D7070_67770001   # "smppgw" + 1
