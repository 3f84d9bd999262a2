"""The SQLite backend: one file in WAL mode under state_dir, a writer thread with group commit,
a reader thread. The embedded default: nothing to set up."""

from smppgw.store.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from smppgw.store.sqlite.store import DB_FILENAME, LOCK_FILENAME, SqliteStore

__all__ = ["DB_FILENAME", "LOCK_FILENAME", "MIGRATIONS", "SCHEMA_VERSION", "SqliteStore"]
