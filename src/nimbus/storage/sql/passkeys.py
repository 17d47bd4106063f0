"""Passkeys: one row per WebAuthn credential (passkeys), keyed by its credential id."""

from datetime import datetime

from nimbus.domain.errors import Conflict
from nimbus.domain.passkeys import Passkey
from nimbus.storage.sql.base import Database, Row, required

TAKEN = "This passkey is registered already"


class SqlPasskeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, passkey: Passkey) -> None:
        db = self._db
        # A taken id writes nothing (and is told apart from a missing user, whose foreign
        # key fails with NotFound).
        with db.transaction() as conn:
            stored = conn.execute(
                "INSERT INTO passkeys (credential_id, user_id, public_key, sign_count,"
                " transports, name, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (credential_id) DO NOTHING RETURNING credential_id",
                (
                    passkey.credential_id,
                    passkey.user_id,
                    passkey.public_key,
                    passkey.sign_count,
                    ",".join(passkey.transports),
                    passkey.name,
                    db.time(passkey.created_at),
                    db.time(passkey.last_used_at),
                ),
            ).fetchone()
        if stored is None:
            raise Conflict(TAKEN, code="passkey_registered")

    def list_for(self, user_id: str) -> list[Passkey]:
        rows = self._db.query(
            "SELECT * FROM passkeys WHERE user_id = ? ORDER BY created_at, credential_id",
            (user_id,),
        )
        return [self._passkey(row) for row in rows]

    def get(self, credential_id: str) -> Passkey | None:
        row = self._db.query_one("SELECT * FROM passkeys WHERE credential_id = ?", (credential_id,))
        return self._passkey(row) if row is not None else None

    def record_use(self, credential_id: str, sign_count: int, at: datetime) -> bool:
        with self._db.transaction() as conn:
            recorded = conn.execute(
                "UPDATE passkeys SET sign_count = ?, last_used_at = ?"
                " WHERE credential_id = ? AND (sign_count < ? OR (sign_count = 0 AND ? = 0))",
                (sign_count, self._db.time(at), credential_id, sign_count, sign_count),
            ).rowcount
        return bool(recorded)

    def remove(self, user_id: str, credential_id: str) -> bool:
        with self._db.transaction() as conn:
            removed = conn.execute(
                "DELETE FROM passkeys WHERE credential_id = ? AND user_id = ?",
                (credential_id, user_id),
            ).rowcount
        return bool(removed)

    def _passkey(self, row: Row) -> Passkey:
        when = self._db.read_time
        return Passkey(
            credential_id=row["credential_id"],
            user_id=row["user_id"],
            public_key=row["public_key"],
            sign_count=int(row["sign_count"]),
            transports=tuple(t for t in row["transports"].split(",") if t),
            name=row["name"],
            created_at=required(when(row["created_at"])),
            last_used_at=when(row["last_used_at"]),
        )
