from nimbus.domain.signing_keys import SigningKey
from nimbus.storage.sql.base import Database, Row, required


class SqlSigningKeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, key: SigningKey) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO signing_keys (kid, sealed_key, created_at) VALUES (?, ?, ?)",
                (key.kid, key.sealed_key, self._db.time(key.created_at)),
            )

    def list(self) -> list[SigningKey]:
        rows = self._db.query("SELECT * FROM signing_keys ORDER BY created_at, kid")
        return [self._key(row) for row in rows]

    def _key(self, row: Row) -> SigningKey:
        return SigningKey(
            kid=row["kid"],
            sealed_key=row["sealed_key"],
            created_at=required(self._db.read_time(row["created_at"])),
        )
