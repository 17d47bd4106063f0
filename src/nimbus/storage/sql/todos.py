import json
from datetime import datetime
from typing import Any

from nimbus.domain.errors import NotFound
from nimbus.domain.paging import Page, decode_cursor
from nimbus.domain.todos import Todo, TodoChanges, TodoState
from nimbus.storage.sql.base import (
    Database,
    Row,
    page,
    versioned_delete,
    versioned_update,
)

_STATES = {state.value: state for state in TodoState}
_decode = json.JSONDecoder().raw_decode


class SqlTodoStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, todo: Todo) -> None:
        db = self._db
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO todos (owner, uid, username, description, state, metadata,"
                " created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                ),
            )

    def get(self, owner: str, uid: str) -> Todo:
        row = self._db.query_one("SELECT * FROM todos WHERE owner = ? AND uid = ?", (owner, uid))
        if row is None:
            raise NotFound("Todo not found")
        return self._todo(row)

    def list(
        self, owner: str, *, state: TodoState | None, limit: int, cursor: str | None
    ) -> Page[Todo]:
        sql = "SELECT * FROM todos WHERE owner = ?"
        params: list[Any] = [owner]
        if state is not None:
            sql += " AND state = ?"
            params.append(state.value)
        if cursor:
            sql += " AND uid < ?"
            params.append(decode_cursor(cursor, frozenset({"uid"}))["uid"])
        sql += " ORDER BY uid DESC LIMIT ?"
        params.append(limit + 1)
        rows = self._db.query(sql, params)
        return page(rows, limit, self._todo, "uid")

    def update(
        self,
        owner: str,
        uid: str,
        changes: TodoChanges,
        *,
        expected_version: int | None,
        at: datetime,
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
            look_up=lambda: self.get(owner, uid),
        )
        return self._todo(row)

    def delete(self, owner: str, uid: str, *, expected_version: int | None) -> None:
        versioned_delete(
            self._db,
            "todos",
            [("owner", owner), ("uid", uid)],
            expected_version=expected_version,
            look_up=lambda: self.get(owner, uid),
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
