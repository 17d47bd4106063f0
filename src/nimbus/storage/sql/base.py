"""The interface a relational backend implements, and helpers every SQL store uses."""

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, TypeVar

from nimbus.domain.paging import Page, encode_cursor

T = TypeVar("T")


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
