from typing import Any

from nimbus.domain.messages import Message
from nimbus.domain.paging import Page, decode_cursor
from nimbus.storage.sql.base import Database, Row, page, required


class SqlMessageStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, message: Message) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO messages (id, author_id, author, text, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    message.id,
                    message.author_id,
                    message.author,
                    message.text,
                    self._db.time(message.created_at),
                ),
            )

    def list(self, *, limit: int, cursor: str | None) -> Page[Message]:
        sql, params = "SELECT * FROM messages", list[Any]()
        if cursor:
            sql += " WHERE id < ?"
            params.append(decode_cursor(cursor, frozenset({"id"}))["id"])
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit + 1)
        rows = self._db.query(sql, params)
        return page(rows, limit, self._message, "id")

    def _message(self, row: Row) -> Message:
        return Message(
            id=row["id"],
            author_id=row["author_id"],
            author=row["author"],
            text=row["text"],
            created_at=required(self._db.read_time(row["created_at"])),
        )
