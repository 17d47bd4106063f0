"""PostgreSQL, for several workers or replicas: a connection pool, Alembic migrations, and
the stores shared with SQLite (nimbus.storage.sql).

Each `transaction()` block is one transaction: psycopg commits when the block ends and rolls
back if it raises.
"""

import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache, partial
from importlib import resources
from typing import Any, cast

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from nimbus import metrics
from nimbus.domain.errors import Conflict, InvalidInput, NotFound, Unavailable
from nimbus.storage.base import TABLES
from nimbus.storage.sql import SqlStores
from nimbus.storage.sql.base import READY_PROBE, conflict_message

POOL_MAX = 10
# How long a request may wait to connect or for a pooled connection; past it, 503. Short, so
# an outage fails requests at once rather than holding every worker thread.
TIMEOUT_SECONDS = 2.0
MIGRATION_LOCK = 0x6E696D62  # "nimb": one migrator at a time across workers


def open_url(url: str, *, timeout: float = TIMEOUT_SECONDS) -> "PostgresStorage":
    return PostgresStorage(url, timeout=timeout)


class PostgresStorage(SqlStores):
    embedded = False
    inline_reads = False

    def __init__(
        self, url: str, *, max_size: int = POOL_MAX, timeout: float = TIMEOUT_SECONDS
    ) -> None:
        self.url = url
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            # libpq counts whole seconds, and treats anything under 2 as 2.
            kwargs={"row_factory": dict_row, "connect_timeout": max(2, math.ceil(timeout))},
            configure=partial(_configure, lock_timeout=timeout),
            timeout=timeout,
            check=ConnectionPool.check_connection,  # a restarted server's dead sockets are dropped
            open=False,
        )
        self._opened = False
        self._wire_stores()

    @contextmanager
    def transaction(self) -> Iterator["_Connection"]:
        """A pooled connection inside one transaction, with driver errors translated."""
        if not self._opened:
            self._pool.open(wait=False)
            self._opened = True
            metrics.pool_size(self._pool.max_size)
        try:
            with self._pool.connection() as conn:
                metrics.pool_in_use(1)
                try:
                    yield _Connection(cast(psycopg.Connection[dict[str, Any]], conn))
                finally:
                    metrics.pool_in_use(-1)
        except pg_errors.UniqueViolation as exc:
            raise Conflict(conflict_message(exc.diag.constraint_name or "")) from exc
        except pg_errors.ForeignKeyViolation as exc:
            raise NotFound("The owner no longer exists") from exc
        except pg_errors.DataError as exc:
            # A value PostgreSQL cannot hold (a NUL character, say) that the API let through.
            raise InvalidInput("A value in this request cannot be stored") from exc
        except (psycopg.OperationalError, PoolTimeout) as exc:
            metrics.store_error("pool_timeout" if isinstance(exc, PoolTimeout) else "connection")
            raise Unavailable(f"storage error: {exc}") from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.transaction() as conn:
            return conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        with self.transaction() as conn:
            return conn.execute(sql, params).fetchone()

    def create_schema(self) -> list[str]:
        """Bring the schema to the newest migration, under an advisory lock."""
        self._migrate("head")
        return list(TABLES)

    def drop_schema(self) -> list[str]:
        """Undo every migration, which drops every table."""
        self._migrate("base")
        return list(TABLES)

    def _migrate(self, target: str) -> None:
        # Imported here: only a migrating process needs Alembic and SQLAlchemy.
        from alembic import command
        from alembic.config import Config
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import OperationalError
        from sqlalchemy.pool import NullPool

        engine = create_engine(_sqlalchemy_url(self.url), poolclass=NullPool)
        config = Config()
        config.set_main_option(
            "script_location", str(resources.files("nimbus.storage") / "migrations")
        )
        try:
            with engine.connect() as connection:
                connection.execute(text(f"SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                try:
                    config.attributes["connection"] = connection
                    if target == "base":
                        command.downgrade(config, target)
                        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
                    else:
                        command.upgrade(config, target)
                    connection.commit()
                finally:
                    connection.execute(text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                    connection.commit()
        except OperationalError as exc:
            raise Unavailable(f"cannot reach PostgreSQL: {exc.orig}") from exc
        finally:
            engine.dispose()

    def time(self, value: datetime | None) -> datetime | None:
        return value

    def read_time(self, value: Any) -> datetime | None:
        return value if value is None else value.astimezone(UTC)

    def json(self, value: Any) -> Jsonb:
        return Jsonb(value)

    def ping(self) -> None:
        # A write: a server that answers but cannot write (a full disk, a read-only replica
        # after a failover) is not ready.
        with self.transaction() as conn:
            conn.execute(READY_PROBE, (datetime.now(UTC),))

    def close(self) -> None:
        if self._opened:
            self._pool.close()
            self._opened = False


def _configure(conn: psycopg.Connection[Any], *, lock_timeout: float) -> None:
    # Timestamps then come back in UTC whatever the server's zone, as every backend returns them.
    conn.execute("SET TIME ZONE 'UTC'")
    # A request stuck behind a lock or a runaway statement gets a 503 in bounded time, and
    # gives its connection back for the routes that do not touch what is stalled.
    conn.execute(f"SET lock_timeout = {int(lock_timeout * 1000)}")
    conn.execute(f"SET statement_timeout = {int(lock_timeout * 2000)}")
    conn.commit()


def _sqlalchemy_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else url


class _Connection:
    """psycopg behind the `?` placeholders the shared SQL stores write."""

    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> psycopg.Cursor[dict[str, Any]]:
        return self._conn.execute(psycopg_sql(sql), params)


_LITERAL_OR_MARK = re.compile(r"'(?:[^']|'')*'|[?%]")


@lru_cache(maxsize=512)  # the stores' SQL is a few hundred constant strings
def psycopg_sql(sql: str) -> str:
    """SQLite's placeholders in psycopg's: each `?` outside a quoted literal becomes `%s`, and
    every `%` is doubled, in literals too (psycopg reads them all). The shared SQL never uses
    jsonb's `?` operators, which would read as placeholders: jsonb_exists() says the same."""

    def translated(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "?":
            return "%s"
        return text.replace("%", "%%")

    return _LITERAL_OR_MARK.sub(translated, sql)
