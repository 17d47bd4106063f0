"""What the relational backends share: turning rows into domain objects, pages, and the
columns an update sets. The backends differ in placeholders (`?` or `%s`) and in what a row
holds: SQLite gives text for times and JSON, psycopg gives datetimes and dicts."""

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from nimbus.domain.paging import Page, encode_cursor
from nimbus.domain.todos import Todo, TodoState
from nimbus.domain.users import Role, Unset, User, UserChanges, email_key

T = TypeVar("T")


class Row(Protocol):
    """A fetched row, read by column name (sqlite3.Row and psycopg's dict rows both are)."""

    def __getitem__(self, key: str, /) -> Any: ...


def page(rows: Sequence[Row], limit: int, convert: Callable[[Row], T], key: str) -> Page[T]:
    """A page of `limit` items from `limit + 1` fetched rows; the extra row means "more"."""
    items = [convert(row) for row in rows[:limit]]
    more = len(rows) > limit
    return Page(items, encode_cursor({key: getattr(items[-1], key)}) if more else None)


def user_assignments(changes: UserChanges) -> list[tuple[str, Any]]:
    """The (column, value) pairs an update of these changes writes."""
    pairs: list[tuple[str, Any]] = []
    if not isinstance(changes.email, Unset):
        key = email_key(changes.email) if changes.email else None
        pairs += [("email", changes.email), ("email_key", key)]
    if not isinstance(changes.name, Unset):
        pairs.append(("name", changes.name))
    if not isinstance(changes.role, Unset):
        pairs.append(("role", changes.role.value))
    if not isinstance(changes.password_hash, Unset):
        pairs.append(("password_hash", changes.password_hash))
    return pairs


def to_user(row: Row, when: Callable[[Any], datetime | None]) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        email=row["email"],
        name=row["name"],
        role=Role(row["role"]),
        password_hash=row["password_hash"],
        created_at=_required(when(row["created_at"])),
        updated_at=_required(when(row["updated_at"])),
        last_login=when(row["last_login"]),
        version=row["version"],
        external_subject=row["external_subject"],
    )


def to_todo(row: Row, when: Callable[[Any], datetime | None]) -> Todo:
    metadata = row["metadata"]
    return Todo(
        uid=row["uid"],
        owner=row["owner"],
        username=row["username"],
        description=row["description"],
        state=TodoState(row["state"]),
        metadata=json.loads(metadata) if isinstance(metadata, str) else metadata,
        created_at=_required(when(row["created_at"])),
        updated_at=_required(when(row["updated_at"])),
        version=row["version"],
    )


def _required(value: datetime | None) -> datetime:
    assert value is not None
    return value
