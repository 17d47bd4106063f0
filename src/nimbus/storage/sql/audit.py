import json
from datetime import datetime
from typing import Any

from nimbus.domain.audit import AuditEvent, AuditKind
from nimbus.domain.paging import Page, decode_cursor
from nimbus.storage.sql.base import Database, Row, page, required


class SqlAuditStore:
    """The trail in one table, with no key to the users: an event outlives its account."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def append(self, event: AuditEvent, *, expires_at: datetime) -> None:
        db = self._db
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO audit_events (id, at, kind, actor_id, subject_id, client,"
                " request_id, detail, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.id,
                    db.time(event.at),
                    event.kind.value,
                    event.actor,
                    event.subject,
                    event.client,
                    event.request_id,
                    db.json(dict(event.detail)),
                    db.time(expires_at),
                ),
            )

    def list(
        self,
        *,
        subject: str | None,
        kind: AuditKind | None,
        limit: int,
        cursor: str | None,
    ) -> Page[AuditEvent]:
        where, params = list[str](), list[Any]()
        if subject is not None:
            where.append("subject_id = ?")
            params.append(subject)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind.value)
        if cursor:
            where.append("id < ?")
            params.append(decode_cursor(cursor, frozenset({"id"}))["id"])
        sql = "SELECT * FROM audit_events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit + 1)
        return page(self._db.query(sql, params), limit, self._event, "id")

    def prune(self, now: datetime, *, limit: int) -> int:
        with self._db.transaction() as conn:
            removed: int = conn.execute(
                "DELETE FROM audit_events WHERE id IN"
                " (SELECT id FROM audit_events WHERE expires_at <= ? LIMIT ?)",
                (self._db.time(now), limit),
            ).rowcount
        return removed

    def _event(self, row: Row) -> AuditEvent:
        detail = row["detail"]
        return AuditEvent(
            id=row["id"],
            at=required(self._db.read_time(row["at"])),
            kind=AuditKind(row["kind"]),
            actor=row["actor_id"],
            subject=row["subject_id"],
            client=row["client"],
            request_id=row["request_id"],
            detail=json.loads(detail) if isinstance(detail, str) else detail,
        )
