"""PostgreSQL, for several workers or replicas: a connection pool, Alembic migrations, and
the stores shared with SQLite (nimbus.storage.sql).

Connections are in autocommit mode: a read (`query`, `query_one`) is its one statement, one
round trip, with no BEGIN and COMMIT around it; each `transaction()` block is one transaction,
committed when the block ends and rolled back if it raises. A pooled connection is not pinged
when it is taken: one found dead by its first statement (the server restarted, its backend was
ended) is dropped and that statement run once more on a live one. That first statement is a
read's only one, or a transaction's BEGIN: whatever it met, nothing was written.
"""

import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from functools import lru_cache, partial
from importlib import resources
from typing import Any, TypeVar, cast

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

T = TypeVar("T")
_PgConnection = psycopg.Connection[dict[str, Any]]

# The driver's errors that mean something to a caller, translated by _translated.
DRIVER_ERRORS = (
    pg_errors.UniqueViolation,
    pg_errors.ForeignKeyViolation,
    pg_errors.DataError,
    psycopg.OperationalError,
    PoolTimeout,
)


def open_url(url: str, *, timeout: float = TIMEOUT_SECONDS) -> "PostgresStorage":
    return PostgresStorage(url, timeout=timeout)


class PostgresStorage(SqlStores):
    embedded = False
    inline_reads = False
    read_stamp = staticmethod(partial(datetime.astimezone, tz=UTC))

    def __init__(
        self, url: str, *, max_size: int = POOL_MAX, timeout: float = TIMEOUT_SECONDS
    ) -> None:
        self.url = url
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            # libpq counts whole seconds, and treats anything under 2 as 2.
            kwargs={
                "row_factory": dict_row,
                "connect_timeout": max(2, math.ceil(timeout)),
                "autocommit": True,
            },
            configure=partial(_configure, lock_timeout=timeout),
            timeout=timeout,
            open=False,
        )
        self._opened = False
        self._wire_stores()

    @contextmanager
    def transaction(self) -> Iterator["_Connection"]:
        """A pooled connection inside one transaction, with driver errors translated."""
        try:
            with self._connection(_begin) as (conn, _):
                try:
                    yield _Connection(conn)
                except BaseException:
                    _roll_back(conn)
                    raise
                conn.execute("COMMIT")
        except DRIVER_ERRORS as exc:
            raise _translated(exc) from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            with self._connection(partial(_fetch_all, psycopg_sql(sql), params)) as (_, rows):
                return rows
        except DRIVER_ERRORS as exc:
            raise _translated(exc) from exc

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        try:
            with self._connection(partial(_fetch_one, psycopg_sql(sql), params)) as (_, row):
                return row
        except DRIVER_ERRORS as exc:
            raise _translated(exc) from exc

    @contextmanager
    def _connection(self, first: Callable[[_PgConnection], T]) -> Iterator[tuple[_PgConnection, T]]:
        """A pooled connection, and what its first statement `first(conn)` returned. Taking a
        connection costs no ping: one that `first` finds dead (a connection-level error that
        leaves it broken) is dropped and `first` runs once more on a live one. Only the first
        statement is retried (a read, or a BEGIN, which write nothing): a later one follows
        statements that may have run, and a failed COMMIT may have committed."""
        if not self._opened:
            self._pool.open(wait=False)
            self._opened = True
            metrics.pool_size(self._pool.max_size)
        for last_try in (False, True):
            with self._pool.connection() as pooled:
                conn = cast(_PgConnection, pooled)
                metrics.pool_in_use(1)
                try:
                    try:
                        result = first(conn)
                    except psycopg.OperationalError:
                        if last_try or not conn.broken:
                            raise
                    else:
                        yield conn, result
                        return
                finally:
                    metrics.pool_in_use(-1)
            # The pool drops the broken connection as it comes back. A server that restarted
            # left every idle one dead: they are tested now, once, so that the retry gets a
            # live one (or a new one) rather than the next dead one.
            self._pool.check()

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


def _translated(exc: Exception) -> Exception:
    """The domain error one of DRIVER_ERRORS means."""
    if isinstance(exc, pg_errors.UniqueViolation):
        return Conflict(conflict_message(exc.diag.constraint_name or ""))
    if isinstance(exc, pg_errors.ForeignKeyViolation):
        return NotFound("The owner no longer exists")
    if isinstance(exc, pg_errors.DataError):
        # A value PostgreSQL cannot hold (a NUL character, say) that the API let through.
        return InvalidInput("A value in this request cannot be stored")
    metrics.store_error("pool_timeout" if isinstance(exc, PoolTimeout) else "connection")
    return Unavailable(f"storage error: {exc}")


def _begin(conn: _PgConnection) -> None:
    conn.execute("BEGIN")


def _fetch_all(sql: str, params: Sequence[Any], conn: _PgConnection) -> list[dict[str, Any]]:
    return conn.execute(sql, params).fetchall()


def _fetch_one(sql: str, params: Sequence[Any], conn: _PgConnection) -> dict[str, Any] | None:
    return conn.execute(sql, params).fetchone()


def _roll_back(conn: _PgConnection) -> None:
    """End a transaction whose block raised; a broken connection has none left to end (the
    server rolls it back), and the pool drops it."""
    if conn.broken:
        return
    with suppress(psycopg.Error):  # the block's own error is the one to raise
        conn.execute("ROLLBACK")


def _configure(conn: psycopg.Connection[Any], *, lock_timeout: float) -> None:
    # Timestamps then come back in UTC whatever the server's zone, as every backend returns them.
    conn.execute("SET TIME ZONE 'UTC'")
    # A request stuck behind a lock or a runaway statement gets a 503 in bounded time, and
    # gives its connection back for the routes that do not touch what is stalled.
    conn.execute(f"SET lock_timeout = {int(lock_timeout * 1000)}")
    conn.execute(f"SET statement_timeout = {int(lock_timeout * 2000)}")


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
