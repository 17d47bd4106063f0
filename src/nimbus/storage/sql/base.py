"""The interface a relational backend implements, and helpers every SQL store uses."""

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

from nimbus.domain.errors import PreconditionFailed
from nimbus.domain.paging import Page, encode_cursor

T = TypeVar("T")

# A term of a WHERE clause and its parameters.
Condition = tuple[str, Sequence[Any]]


class Row(Protocol):
    """A fetched row, read by column name (sqlite3.Row and psycopg's dict rows both are)."""

    def __getitem__(self, key: str, /) -> Any: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...


class Database(Protocol):
    def transaction(self) -> AbstractContextManager[Connection]:
        """A connection whose statements commit together when the block ends, or not at all."""

    def query(self, sql: str, params: Sequence[Any] = ...) -> list[Any]:
        """The rows of one read-only statement, which needs no transaction around it."""

    def query_one(self, sql: str, params: Sequence[Any] = ...) -> Any:
        """The first row of one read-only statement, or None."""

    def time(self, value: datetime | None) -> Any:
        """A datetime as a statement parameter."""

    def read_time(self, value: Any) -> datetime | None:
        """A datetime as it comes back in a row."""

    # A NOT NULL time column's value as it comes back in a row: a plain callable, for readers
    # that build many objects a request (on SQLite, datetime.fromisoformat itself).
    read_stamp: Callable[[Any], datetime]

    def json(self, value: Any) -> Any:
        """A JSON document as a statement parameter."""


# The readiness check's write: a row of its own in a table every backend has.
READY_PROBE = (
    "INSERT INTO rate_limits (key, window_start, count) VALUES ('ready:probe', ?, 0)"
    " ON CONFLICT (key) DO UPDATE SET window_start = excluded.window_start"
)


def page(rows: Sequence[Row], limit: int, convert: Callable[[Row], T], key: str) -> Page[T]:
    """A page of `limit` items from `limit + 1` fetched rows; the extra row means "more"."""
    items = [convert(row) for row in rows[:limit]]
    more = len(rows) > limit
    return Page(items, encode_cursor({key: getattr(items[-1], key)}) if more else None)


def versioned_update(
    db: Database,
    table: str,
    columns: Sequence[tuple[str, Any]],
    key: Sequence[tuple[str, Any]],
    *,
    expected_version: int | None,
    at: datetime,
    look_up: Callable[[], object],
    also: Condition | None = None,
) -> Row:
    """Set `columns` on the row `key` names and move its version on, only while it is at
    `expected_version` (when one is given) and `also` holds; returns the row as written.
    When nothing matched, `look_up()` raises (NotFound if the row is gone, or what `also`
    failing means); else its version moved on."""
    where, where_params = _where(key, expected_version, also)
    sql = (
        f"UPDATE {table} SET updated_at = ?, version = version + 1"  # noqa: S608 (fixed names)
        + "".join(f", {column} = ?" for column, _ in columns)
        + f" WHERE {where} RETURNING *"
    )
    params = [db.time(at), *(value for _, value in columns), *where_params]
    with db.transaction() as conn:
        row = conn.execute(sql, params).fetchone()
    if row is None:
        look_up()
        raise PreconditionFailed()
    return cast(Row, row)


def versioned_delete(
    db: Database,
    table: str,
    key: Sequence[tuple[str, Any]],
    *,
    expected_version: int | None,
    look_up: Callable[[], object],
    also: Condition | None = None,
) -> None:
    """Delete the row `key` names, only while it is at `expected_version` (when one is
    given) and `also` holds; as versioned_update when nothing matched."""
    where, params = _where(key, expected_version, also)
    with db.transaction() as conn:
        deleted = conn.execute(
            f"DELETE FROM {table} WHERE {where}",  # noqa: S608 (fixed names)
            params,
        ).rowcount
    if not deleted:
        look_up()
        raise PreconditionFailed()


def _where(
    key: Sequence[tuple[str, Any]], expected_version: int | None, also: Condition | None
) -> tuple[str, list[Any]]:
    pairs = [*key, *([("version", expected_version)] if expected_version is not None else [])]
    terms = [f"{column} = ?" for column, _ in pairs]
    params = [value for _, value in pairs]
    if also is not None:
        terms.append(also[0])
        params.extend(also[1])
    return " AND ".join(terms), params


def conflict_message(detail: str) -> str:
    """What a unique clash means, from the constraint or column the driver's error names."""
    if "username" in detail:
        return "That username is taken"
    if "email" in detail:
        return "That email is already registered"
    if "service_credentials" in detail:
        return "The access key already exists"
    return "The record already exists"


def required(value: datetime | None) -> datetime:
    assert value is not None
    return value
