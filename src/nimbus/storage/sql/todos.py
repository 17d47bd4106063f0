import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from nimbus.domain.errors import NotFound, Unauthenticated
from nimbus.domain.paging import Page, decode_cursor
from nimbus.domain.principals import SessionCheck
from nimbus.domain.todos import Todo, TodoChanges, TodoState
from nimbus.storage.sql.base import (
    Condition,
    Database,
    Row,
    page,
    versioned_delete,
    versioned_update,
)
from nimbus.storage.sql.sessions import live_condition, require_live


def _guard(live: SessionCheck | None, joined: str = " AND ") -> tuple[str, Sequence[Any]]:
    """`live` as a term to add to a WHERE clause (after `joined`), and its parameters."""
    if live is None:
        return "", ()
    term, params = live_condition(live)
    return joined + term, params


def _also(live: SessionCheck | None) -> Condition | None:
    return live_condition(live) if live is not None else None


_STATES = {state.value: state for state in TodoState}
_decode = json.JSONDecoder().raw_decode


class SqlTodoStore:
    """Each call given `live` checks the session in its one statement (live_condition):
    only a statement that matched nothing asks again, to tell a dead session from no todo."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, todo: Todo, *, live: SessionCheck | None = None) -> None:
        db = self._db
        where, guard = _guard(live, " WHERE ")
        with db.transaction() as conn:
            added = conn.execute(
                "INSERT INTO todos (owner, uid, username, description, state, metadata,"
                " created_at, updated_at, version) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?" + where,
                (
                    todo.owner,
                    todo.uid,
                    todo.username,
                    todo.description,
                    todo.state.value,
                    db.json(todo.metadata),
                    db.time(todo.created_at),
                    db.time(todo.updated_at),
                    todo.version,
                    *guard,
                ),
            ).rowcount
        if not added:
            raise Unauthenticated()

    def get(self, owner: str, uid: str, *, live: SessionCheck | None = None) -> Todo:
        where, guard = _guard(live)
        row = self._db.query_one(
            "SELECT * FROM todos WHERE owner = ? AND uid = ?" + where,  # noqa: S608 (fixed terms)
            (owner, uid, *guard),
        )
        if row is None:
            require_live(self._db, live)
            raise NotFound("Todo not found")
        return self._todo(row)

    def list(
        self,
        owner: str,
        *,
        state: TodoState | None,
        limit: int,
        cursor: str | None,
        live: SessionCheck | None = None,
    ) -> Page[Todo]:
        where, guard = _guard(live)
        sql = "SELECT * FROM todos WHERE owner = ?" + where  # noqa: S608 (fixed terms)
        params: list[Any] = [owner, *guard]
        if state is not None:
            sql += " AND state = ?"
            params.append(state.value)
        if cursor:
            sql += " AND uid < ?"
            params.append(decode_cursor(cursor, frozenset({"uid"}))["uid"])
        sql += " ORDER BY uid DESC LIMIT ?"
        params.append(limit + 1)
        rows = self._db.query(sql, params)
        if not rows:
            require_live(self._db, live)
        return page(rows, limit, self._todo, "uid")

    def update(
        self,
        owner: str,
        uid: str,
        changes: TodoChanges,
        *,
        expected_version: int | None,
        at: datetime,
        live: SessionCheck | None = None,
    ) -> Todo:
        columns = [
            ("description", changes.description),
            ("state", changes.state.value if changes.state is not None else None),
            ("metadata", self._db.json(changes.metadata) if changes.metadata is not None else None),
        ]
        row = versioned_update(
            self._db,
            "todos",
            [(column, value) for column, value in columns if value is not None],
            [("owner", owner), ("uid", uid)],
            expected_version=expected_version,
            at=at,
            look_up=lambda: self.get(owner, uid, live=live),
            also=_also(live),
        )
        return self._todo(row)

    def delete(
        self,
        owner: str,
        uid: str,
        *,
        expected_version: int | None,
        live: SessionCheck | None = None,
    ) -> None:
        versioned_delete(
            self._db,
            "todos",
            [("owner", owner), ("uid", uid)],
            expected_version=expected_version,
            look_up=lambda: self.get(owner, uid, live=live),
            also=_also(live),
        )

    def _todo(self, row: Row) -> Todo:
        # A page is 50 of these: lookups by table or a builtin, not a call of nimbus's (the
        # enum's constructor, json.loads' checks, read_time's test for None).
        stamp = self._db.read_stamp
        metadata = row["metadata"]
        return Todo(
            uid=row["uid"],
            owner=row["owner"],
            username=row["username"],
            description=row["description"],
            state=_STATES[row["state"]],
            # Text the store wrote with json.dumps: nothing around the document to check.
            metadata=_decode(metadata)[0] if isinstance(metadata, str) else metadata,
            created_at=stamp(row["created_at"]),
            updated_at=stamp(row["updated_at"]),
            version=row["version"],
        )
