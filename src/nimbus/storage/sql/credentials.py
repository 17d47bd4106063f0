from datetime import datetime

from nimbus.domain.credentials import ServiceCredential
from nimbus.domain.errors import NotFound
from nimbus.storage.sql.base import Database, Row, required


class SqlCredentialStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, credential: ServiceCredential) -> None:
        db = self._db
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO service_credentials (access_key_id, name, sealed_secret,"
                " created_at, revoked_at) VALUES (?, ?, ?, ?, ?)",
                (
                    credential.access_key_id,
                    credential.name,
                    credential.sealed_secret,
                    db.time(credential.created_at),
                    db.time(credential.revoked_at),
                ),
            )

    def get(self, access_key_id: str) -> ServiceCredential | None:
        row = self._db.query_one(
            "SELECT * FROM service_credentials WHERE access_key_id = ?", (access_key_id,)
        )
        return self._credential(row) if row is not None else None

    def list(self) -> list[ServiceCredential]:
        rows = self._db.query(
            "SELECT * FROM service_credentials ORDER BY created_at, access_key_id"
        )
        return [self._credential(row) for row in rows]

    def revoke(self, access_key_id: str, at: datetime) -> ServiceCredential:
        with self._db.transaction() as conn:
            row = conn.execute(
                "UPDATE service_credentials SET revoked_at = COALESCE(revoked_at, ?)"
                " WHERE access_key_id = ? RETURNING *",
                (self._db.time(at), access_key_id),
            ).fetchone()
        if row is None:
            raise NotFound("Credential not found")
        return self._credential(row)

    def _credential(self, row: Row) -> ServiceCredential:
        when = self._db.read_time
        return ServiceCredential(
            access_key_id=row["access_key_id"],
            name=row["name"],
            sealed_secret=row["sealed_secret"],
            created_at=required(when(row["created_at"])),
            revoked_at=when(row["revoked_at"]),
        )
