from datetime import UTC, datetime, timedelta

from nimbus.domain.errors import Unauthenticated
from nimbus.domain.principals import SessionCheck
from nimbus.domain.sessions import RefreshToken, Session
from nimbus.storage.sql.base import Condition, Connection, Database, Row, required

# Revocations are kept this long past the token's expiry, beyond any verifier's leeway.
REVOCATION_MARGIN = timedelta(hours=1)

# An access token is good while its session (if it has one) and the token itself are not
# revoked: a term for the WHERE of the statement that serves the token's request.
_LIVE = (
    "(CAST(? AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM sessions"
    " WHERE id = ? AND revoked_at IS NULL))"
    " AND NOT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?)"
)


def live_condition(check: SessionCheck) -> Condition:
    return _LIVE, (check.session_id, check.session_id, check.token_id)


def is_live(db: Database, check: SessionCheck) -> bool:
    term, params = live_condition(check)
    row = db.query_one(f"SELECT {term} AS active", params)
    return bool(row["active"])


def require_live(db: Database, check: SessionCheck | None) -> None:
    """Unauthenticated unless the token `check` names is good: for a statement that served
    nothing, to tell a dead session from a missing row."""
    if check is not None and not is_live(db, check):
        raise Unauthenticated()


class SqlSessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def start(self, session: Session, token: RefreshToken) -> None:
        db = self._db
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO sessions (id, user_id, scope, created_at, revoked_at, user_agent,"
                " address, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.id,
                    session.user_id,
                    " ".join(sorted(session.scopes)),
                    db.time(session.created_at),
                    db.time(session.revoked_at),
                    session.user_agent,
                    session.address,
                    db.time(session.last_used_at),
                ),
            )
            self._insert_token(conn, token)

    def find_refresh(self, token_id: str) -> tuple[RefreshToken, Session] | None:
        row = self._db.query_one(
            "SELECT t.*, s.user_id, s.scope, s.created_at AS session_created_at,"
            " s.revoked_at, s.user_agent, s.address, s.last_used_at"
            " FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.id = ?",
            (token_id,),
        )
        if row is None:
            return None
        when = self._db.read_time
        token = RefreshToken(
            id=row["id"],
            session_id=row["session_id"],
            secret_hash=row["secret_hash"],
            created_at=required(when(row["created_at"])),
            expires_at=required(when(row["expires_at"])),
            used_at=when(row["used_at"]),
        )
        return token, self._session(
            row, id_column="session_id", created_column="session_created_at"
        )

    def rotate(self, used_id: str, replacement: RefreshToken, at: datetime) -> bool:
        now = self._db.time(at)
        with self._db.transaction() as conn:
            claimed = conn.execute(
                "UPDATE refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL"
                " AND session_id IN (SELECT id FROM sessions WHERE revoked_at IS NULL)"
                " RETURNING session_id",
                (now, used_id),
            ).fetchone()
            if claimed is None:
                return False
            conn.execute(
                "UPDATE sessions SET last_used_at = ? WHERE id = ?", (now, claimed["session_id"])
            )
            self._insert_token(conn, replacement)
            return True

    def revoke(self, session_id: str, at: datetime) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (self._db.time(at), session_id),
            )

    def revoke_all(self, user_id: str, at: datetime, *, keep: str | None = None) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL"
                " AND id <> COALESCE(?, '')",
                (self._db.time(at), user_id, keep),
            )

    def list_active(self, user_id: str) -> list[Session]:
        # One range of the index sessions_by_user; the few a user has are sorted after it.
        rows = self._db.query(
            "SELECT * FROM sessions WHERE user_id = ? AND revoked_at IS NULL"
            " ORDER BY COALESCE(last_used_at, created_at) DESC, id DESC",
            (user_id,),
        )
        return [self._session(row) for row in rows]

    def revoke_access_token(self, jti: str, expires_at: datetime, at: datetime) -> None:
        db = self._db
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?)"
                " ON CONFLICT (jti) DO NOTHING",
                (jti, db.time(expires_at)),
            )
            conn.execute(
                "DELETE FROM revoked_tokens WHERE expires_at < ?",
                (db.time(at - REVOCATION_MARGIN),),
            )

    def is_active(self, session_id: str | None, jti: str, at: datetime) -> bool:
        return is_live(self._db, SessionCheck(session_id, jti))

    def _session(
        self, row: Row, *, id_column: str = "id", created_column: str = "created_at"
    ) -> Session:
        when = self._db.read_time
        return Session(
            id=row[id_column],
            user_id=row["user_id"],
            scopes=frozenset(row["scope"].split()),
            created_at=required(when(row[created_column])),
            revoked_at=when(row["revoked_at"]),
            user_agent=row["user_agent"],
            address=row["address"],
            last_used_at=when(row["last_used_at"]),
        )

    def _insert_token(self, conn: Connection, token: RefreshToken) -> None:
        db = self._db
        conn.execute(
            "INSERT INTO refresh_tokens (id, session_id, secret_hash, created_at, expires_at,"
            " used_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                token.id,
                token.session_id,
                token.secret_hash,
                db.time(token.created_at),
                db.time(token.expires_at),
                db.time(token.used_at),
            ),
        )


class SqlRateLimitStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def take(self, key: str, limit: int, window_seconds: int, at: datetime) -> datetime | None:
        db = self._db
        now, cutoff = db.time(at), db.time(at - timedelta(seconds=window_seconds))
        with db.transaction() as conn:
            # One statement: a new window, or one more in the current one while there is room.
            counted = conn.execute(
                "INSERT INTO rate_limits AS r (key, window_start, count) VALUES (?, ?, 1)"
                " ON CONFLICT (key) DO UPDATE SET"
                "  count = CASE WHEN r.window_start <= ? THEN 1 ELSE r.count + 1 END,"
                "  window_start = CASE WHEN r.window_start <= ? THEN ? ELSE r.window_start END"
                " WHERE r.window_start <= ? OR r.count < ?"
                " RETURNING count",
                (key, now, cutoff, cutoff, now, cutoff, limit),
            ).fetchone()
            if counted is not None:
                return None
            row = conn.execute(
                "SELECT window_start FROM rate_limits WHERE key = ?", (key,)
            ).fetchone()
        return required(db.read_time(row["window_start"])).astimezone(UTC)

    def give_back(self, key: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE rate_limits SET count = count - 1 WHERE key = ? AND count > 0", (key,)
            )

    def clear(self, key: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM rate_limits WHERE key = ?", (key,))
