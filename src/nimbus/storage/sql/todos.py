import json
from datetime import datetime
from typing import Any, NoReturn

from nimbus.domain.errors import NotFound, PreconditionFailed
from nimbus.domain.paging import Page, decode_cursor
from nimbus.domain.todos import Todo, TodoChanges, TodoState
from nimbus.storage.sql.base import Database, Row, page, required


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
        db = self._db
        sql = (
            "UPDATE todos SET description = COALESCE(?, description), state = COALESCE(?, state),"
            " metadata = COALESCE(?, metadata), updated_at = ?, version = version + 1"
            " WHERE owner = ? AND uid = ?"
        )
        params: list[Any] = [
            changes.description,
            changes.state.value if changes.state is not None else None,
            db.json(changes.metadata) if changes.metadata is not None else None,
            db.time(at),
            owner,
            uid,
        ]
        if expected_version is not None:
            sql += " AND version = ?"
            params.append(expected_version)
        with db.transaction() as conn:
            row = conn.execute(sql + " RETURNING *", params).fetchone()
        if row is None:
            self._explain_miss(owner, uid)
        return self._todo(row)

    def delete(self, owner: str, uid: str, *, expected_version: int | None) -> None:
        sql = "DELETE FROM todos WHERE owner = ? AND uid = ?"
        params: list[Any] = [owner, uid]
        if expected_version is not None:
            sql += " AND version = ?"
            params.append(expected_version)
        with self._db.transaction() as conn:
            deleted = conn.execute(sql, params).rowcount
        if not deleted:
            self._explain_miss(owner, uid)

    def _explain_miss(self, owner: str, uid: str) -> NoReturn:
        """A conditional write matched nothing: the todo is gone, or its version moved on."""
        self.get(owner, uid)
        raise PreconditionFailed()

    def _todo(self, row: Row) -> Todo:
        when = self._db.read_time
        metadata = row["metadata"]
        return Todo(
            uid=row["uid"],
            owner=row["owner"],
            username=row["username"],
            description=row["description"],
            state=TodoState(row["state"]),
            metadata=json.loads(metadata) if isinstance(metadata, str) else metadata,
            created_at=required(when(row["created_at"])),
            updated_at=required(when(row["updated_at"])),
            version=row["version"],
        )
