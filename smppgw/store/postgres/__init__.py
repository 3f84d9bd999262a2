"""The PostgreSQL backend (asyncpg): one database, selected by ``[store] url``. Imported only
when configured, so an embedded (SQLite) gateway never loads asyncpg."""

from smppgw.store.postgres.schema import MIGRATIONS, SCHEMA_VERSION
from smppgw.store.postgres.store import PostgresStore, display_url

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresStore", "display_url"]
