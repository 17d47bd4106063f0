"""Second factors: one TOTP factor per user (totp_factors) and its recovery codes' digests
(recovery_codes), each change one statement or one transaction that writes first."""

from collections.abc import Sequence
from datetime import UTC, datetime

from nimbus.domain.errors import Conflict
from nimbus.domain.mfa import TotpFactor
from nimbus.storage.sql.base import Database, Row, required

CONFIRMED_EXISTS = "The account has a second factor already"


class SqlFactorStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def begin(self, factor: TotpFactor) -> None:
        db = self._db
        with db.transaction() as conn:
            # Replaces a pending factor only; a missing user fails the foreign key (NotFound).
            stored = conn.execute(
                "INSERT INTO totp_factors AS f (user_id, sealed_secret, created_at,"
                " confirmed_at, last_step) VALUES (?, ?, ?, NULL, ?)"
                " ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret,"
                "  created_at = excluded.created_at, confirmed_at = NULL,"
                "  last_step = excluded.last_step"
                " WHERE f.confirmed_at IS NULL"
                " RETURNING user_id",
                (
                    factor.user_id,
                    factor.sealed_secret,
                    db.time(factor.created_at),
                    factor.last_step,
                ),
            ).fetchone()
            if stored is not None:
                conn.execute("DELETE FROM recovery_codes WHERE user_id = ?", (factor.user_id,))
        if stored is None:
            raise Conflict(CONFIRMED_EXISTS)

    def get(self, user_id: str) -> TotpFactor | None:
        row = self._db.query_one(
            "SELECT f.*, (SELECT count(*) FROM recovery_codes c"
            "  WHERE c.user_id = f.user_id AND c.used_at IS NULL) AS codes_left"
            " FROM totp_factors f WHERE f.user_id = ?",
            (user_id,),
        )
        return self._factor(row) if row is not None else None

    def confirm(
        self,
        user_id: str,
        sealed_secret: str,
        *,
        step: int,
        recovery_codes: Sequence[str],
        at: datetime,
    ) -> bool:
        digests = list(dict.fromkeys(recovery_codes))  # one row per code, whatever was passed
        with self._db.transaction() as conn:
            confirmed = conn.execute(
                "UPDATE totp_factors SET confirmed_at = ?, last_step = ?"
                " WHERE user_id = ? AND sealed_secret = ? AND confirmed_at IS NULL",
                (self._db.time(at), step, user_id, sealed_secret),
            ).rowcount
            if not confirmed:
                return False
            conn.execute("DELETE FROM recovery_codes WHERE user_id = ?", (user_id,))
            if digests:
                conn.execute(
                    "INSERT INTO recovery_codes (user_id, digest, used_at) VALUES "  # noqa: S608 (placeholders only)
                    + ", ".join("(?, ?, NULL)" for _ in digests),
                    [value for digest in digests for value in (user_id, digest)],
                )
            return True

    def use_step(self, user_id: str, step: int) -> bool:
        with self._db.transaction() as conn:
            accepted = conn.execute(
                "UPDATE totp_factors SET last_step = ?"
                " WHERE user_id = ? AND confirmed_at IS NOT NULL AND last_step < ?",
                (step, user_id, step),
            ).rowcount
        return bool(accepted)

    def use_recovery_code(self, user_id: str, digest: str) -> bool:
        # The Protocol passes no time; the moment it is spent is only kept for the record.
        with self._db.transaction() as conn:
            spent = conn.execute(
                "UPDATE recovery_codes SET used_at = ?"
                " WHERE user_id = ? AND digest = ? AND used_at IS NULL AND EXISTS"
                "  (SELECT 1 FROM totp_factors WHERE user_id = ? AND confirmed_at IS NOT NULL)",
                (self._db.time(datetime.now(UTC)), user_id, digest, user_id),
            ).rowcount
        return bool(spent)

    def remove(self, user_id: str) -> bool:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM recovery_codes WHERE user_id = ?", (user_id,))
            removed = conn.execute(
                "DELETE FROM totp_factors WHERE user_id = ?", (user_id,)
            ).rowcount
        return bool(removed)

    def _factor(self, row: Row) -> TotpFactor:
        when = self._db.read_time
        return TotpFactor(
            user_id=row["user_id"],
            sealed_secret=row["sealed_secret"],
            created_at=required(when(row["created_at"])),
            confirmed_at=when(row["confirmed_at"]),
            last_step=int(row["last_step"]),
            recovery_codes_left=int(row["codes_left"]),
        )
