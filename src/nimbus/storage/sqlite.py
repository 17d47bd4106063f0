"""The embedded default: one SQLite file in WAL mode, shared safely by several workers.

Writers serialise on SQLite's lock (busy_timeout waits for it); every write is a single
statement or an IMMEDIATE transaction, so there is no read-modify-write window. With
synchronous=NORMAL in WAL mode a committed write survives the process being killed; only a
power cut may lose the last transactions.
"""

import json
import queue
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from nimbus.domain.errors import Conflict, NotFound, PreconditionFailed, Unavailable
from nimbus.domain.paging import Page, decode_cursor
from nimbus.domain.sessions import RefreshToken, Session
from nimbus.domain.todos import Todo, TodoChanges, TodoState
from nimbus.domain.users import User, UserChanges, email_key, username_key
from nimbus.storage.base import TABLES
from nimbus.storage.sql import Row, page, to_todo, to_user, user_assignments

BUSY_TIMEOUT_SECONDS = 10.0

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    username_key TEXT NOT NULL UNIQUE,
    email TEXT,
    email_key TEXT UNIQUE,
    name TEXT,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    last_login TEXT,
    version INTEGER NOT NULL,
    external_subject TEXT UNIQUE
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS todos (
    owner TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    uid TEXT NOT NULL,
    username TEXT NOT NULL,
    description TEXT NOT NULL,
    state TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (owner, uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS todos_by_state ON todos (owner, state, uid);

CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id);

CREATE TABLE IF NOT EXISTS refresh_tokens (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refresh_tokens_by_session ON refresh_tokens (session_id);

CREATE TABLE IF NOT EXISTS revoked_tokens (
    jti TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS rate_limits (
    key TEXT PRIMARY KEY,
    window_start REAL NOT NULL,
    count INTEGER NOT NULL
) WITHOUT ROWID;
"""


def open_url(url: str) -> "SqliteStorage":
    path = url.removeprefix("sqlite:///")
    if path in ("", ":memory:") or path == url:
        raise ValueError(
            "a SQLite URL names a file: sqlite:///relative/path.db or sqlite:////abs.db"
        )
    return SqliteStorage(Path(path))


class _Pool:
    """Connections handed to one thread at a time; sqlite3 objects are not thread-safe."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.rollback()
            self._idle.put(conn)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,  # autocommit; transactions are explicit BEGINs
            check_same_thread=False,
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        with self._lock:
            self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._idle = queue.SimpleQueue()


class SqliteStorage:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = _Pool(path)
        self.users = SqliteUserStore(self._pool)
        self.todos = SqliteTodoStore(self._pool)
        self.sessions = SqliteSessionStore(self._pool)
        self.rate_limits = SqliteRateLimitStore(self._pool)

    def create_schema(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"cannot create {self.path.parent}: {exc.strerror}") from None
        with _translated(), self._pool.connection() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")

    def drop_schema(self) -> list[str]:
        with _translated(), self._pool.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            for table in TABLES:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute("PRAGMA user_version = 0")
            conn.execute("COMMIT")
        return list(TABLES)

    def ping(self) -> None:
        with _translated(), self._pool.connection() as conn:
            conn.execute("SELECT 1 FROM users LIMIT 1").fetchall()

    def close(self) -> None:
        self._pool.close()


@contextmanager
def _translated() -> Iterator[None]:
    """Driver errors become domain errors here, at the storage boundary."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "FOREIGN KEY" in str(exc):
            raise NotFound("The owner no longer exists") from None
        raise Conflict(_conflict_message(str(exc))) from None
    except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
        raise Unavailable(f"storage error: {exc}") from None


def _conflict_message(detail: str) -> str:
    if "username_key" in detail:
        return "That username is taken"
    if "email_key" in detail:
        return "That email is already registered"
    return "The record already exists"


def _ts(value: datetime | None) -> str | None:
    # A fixed width keeps text comparisons in time order.
    return value.isoformat(timespec="microseconds") if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


class SqliteUserStore:
    def __init__(self, pool: _Pool) -> None:
        self._pool = pool

    def add(self, user: User) -> None:
        with _translated(), self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO users (id, username, username_key, email, email_key, name, role,"
                " password_hash, created_at, updated_at, last_login, version, external_subject)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    user.id,
                    user.username,
                    username_key(user.username),
                    user.email,
                    email_key(user.email) if user.email else None,
                    user.name,
                    user.role.value,
                    user.password_hash,
                    _ts(user.created_at),
                    _ts(user.updated_at),
                    _ts(user.last_login),
                    user.version,
                    user.external_subject,
                ),
            )

    def get(self, user_id: str) -> User:
        user = self._one("SELECT * FROM users WHERE id = ?", user_id)
        if user is None:
            raise NotFound("User not found")
        return user

    def find_by_username(self, username: str) -> User | None:
        return self._one("SELECT * FROM users WHERE username_key = ?", username_key(username))

    def find_by_email(self, email: str) -> User | None:
        return self._one("SELECT * FROM users WHERE email_key = ?", email_key(email))

    def find_by_external_subject(self, subject: str) -> User | None:
        return self._one("SELECT * FROM users WHERE external_subject = ?", subject)

    def list(self, *, limit: int, cursor: str | None) -> Page[User]:
        after = decode_cursor(cursor, frozenset({"id"}))["id"] if cursor else ""
        with _translated(), self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM users WHERE id > ? ORDER BY id LIMIT ?", (after, limit + 1)
            ).fetchall()
        return page(rows, limit, _user, "id")

    def record_login(self, user_id: str, at: datetime, password_hash: str | None) -> None:
        with _translated(), self._pool.connection() as conn:
            conn.execute(
                "UPDATE users SET last_login = ?, password_hash = COALESCE(?, password_hash)"
                " WHERE id = ?",
                (_ts(at), password_hash, user_id),
            )

    def update(
        self, user_id: str, changes: UserChanges, *, expected_version: int | None, at: datetime
    ) -> User:
        pairs = user_assignments(changes)
        assignments = ["updated_at = ?", "version = version + 1"]
        assignments += [f"{column} = ?" for column, _ in pairs]
        params: list[Any] = [_ts(at), *(value for _, value in pairs)]
        sql = f"UPDATE users SET {', '.join(assignments)} WHERE id = ?"  # noqa: S608 (fixed columns)
        params.append(user_id)
        if expected_version is not None:
            sql += " AND version = ?"
            params.append(expected_version)
        with _translated(), self._pool.connection() as conn:
            row = conn.execute(sql + " RETURNING *", params).fetchone()
        if row is None:
            self.get(user_id)
            raise PreconditionFailed()
        return _user(row)

    def delete(self, user_id: str) -> None:
        # Foreign keys cascade to todos, sessions and refresh tokens in the same statement, and
        # make a todo added concurrently for this user fail rather than outlive it.
        with _translated(), self._pool.connection() as conn:
            if not conn.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount:
                raise NotFound("User not found")

    def _one(self, sql: str, *params: Any) -> User | None:
        with _translated(), self._pool.connection() as conn:
            row = conn.execute(sql, params).fetchone()
        return _user(row) if row is not None else None


def _user(row: Row) -> User:
    return to_user(row, _dt)


class SqliteTodoStore:
    def __init__(self, pool: _Pool) -> None:
        self._pool = pool

    def add(self, todo: Todo) -> None:
        with _translated(), self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO todos (owner, uid, username, description, state, metadata,"
                " created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    todo.owner,
                    todo.uid,
                    todo.username,
                    todo.description,
                    todo.state.value,
                    _json(todo.metadata),
                    _ts(todo.created_at),
                    _ts(todo.updated_at),
                    todo.version,
                ),
            )

    def get(self, owner: str, uid: str) -> Todo:
        with _translated(), self._pool.connection() as conn:
            row = conn.execute(
                "SELECT * FROM todos WHERE owner = ? AND uid = ?", (owner, uid)
            ).fetchone()
        if row is None:
            raise NotFound("Todo not found")
        return _todo(row)

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
        with _translated(), self._pool.connection() as conn:
            rows = conn.execute(sql, params).fetchall()
        return page(rows, limit, _todo, "uid")

    def update(
        self,
        owner: str,
        uid: str,
        changes: TodoChanges,
        *,
        expected_version: int | None,
        at: datetime,
    ) -> Todo:
        sql = (
            "UPDATE todos SET description = COALESCE(?, description), state = COALESCE(?, state),"
            " metadata = COALESCE(?, metadata), updated_at = ?, version = version + 1"
            " WHERE owner = ? AND uid = ?"
        )
        params: list[Any] = [
            changes.description,
            changes.state.value if changes.state is not None else None,
            _json(changes.metadata) if changes.metadata is not None else None,
            _ts(at),
            owner,
            uid,
        ]
        if expected_version is not None:
            sql += " AND version = ?"
            params.append(expected_version)
        with _translated(), self._pool.connection() as conn:
            row = conn.execute(sql + " RETURNING *", params).fetchone()
        if row is None:
            self._explain_miss(owner, uid)
        return _todo(row)

    def delete(self, owner: str, uid: str, *, expected_version: int | None) -> None:
        sql = "DELETE FROM todos WHERE owner = ? AND uid = ?"
        params: list[Any] = [owner, uid]
        if expected_version is not None:
            sql += " AND version = ?"
            params.append(expected_version)
        with _translated(), self._pool.connection() as conn:
            deleted = conn.execute(sql, params).rowcount
        if not deleted:
            self._explain_miss(owner, uid)

    def _explain_miss(self, owner: str, uid: str) -> NoReturn:
        """A conditional write matched nothing: the todo is gone, or its version moved on."""
        self.get(owner, uid)
        raise PreconditionFailed()


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _todo(row: Row) -> Todo:
    return to_todo(row, _dt)


class SqliteSessionStore:
    def __init__(self, pool: _Pool) -> None:
        self._pool = pool

    def start(self, session: Session, token: RefreshToken) -> None:
        with _translated(), self._pool.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO sessions (id, user_id, scope, created_at, revoked_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    session.id,
                    session.user_id,
                    " ".join(sorted(session.scopes)),
                    _ts(session.created_at),
                    _ts(session.revoked_at),
                ),
            )
            self._insert_token(conn, token)
            conn.execute("COMMIT")

    def find_refresh(self, token_id: str) -> tuple[RefreshToken, Session] | None:
        with _translated(), self._pool.connection() as conn:
            row = conn.execute(
                "SELECT t.*, s.user_id, s.scope, s.created_at AS session_created_at, s.revoked_at"
                " FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.id = ?",
                (token_id,),
            ).fetchone()
        if row is None:
            return None
        token = RefreshToken(
            id=row["id"],
            session_id=row["session_id"],
            secret_hash=row["secret_hash"],
            created_at=datetime.fromisoformat(row["created_at"]),
            expires_at=datetime.fromisoformat(row["expires_at"]),
            used_at=_dt(row["used_at"]),
        )
        session = Session(
            id=row["session_id"],
            user_id=row["user_id"],
            scopes=frozenset(row["scope"].split()),
            created_at=datetime.fromisoformat(row["session_created_at"]),
            revoked_at=_dt(row["revoked_at"]),
        )
        return token, session

    def rotate(self, used_id: str, replacement: RefreshToken, at: datetime) -> bool:
        with _translated(), self._pool.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            claimed = conn.execute(
                "UPDATE refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL"
                " AND session_id IN (SELECT id FROM sessions WHERE revoked_at IS NULL)",
                (_ts(at), used_id),
            ).rowcount
            if not claimed:
                conn.execute("ROLLBACK")
                return False
            self._insert_token(conn, replacement)
            conn.execute("COMMIT")
            return True

    def revoke(self, session_id: str, at: datetime) -> None:
        with _translated(), self._pool.connection() as conn:
            conn.execute(
                "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (_ts(at), session_id),
            )

    def revoke_all(self, user_id: str, at: datetime) -> None:
        with _translated(), self._pool.connection() as conn:
            conn.execute(
                "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                (_ts(at), user_id),
            )

    def revoke_access_token(self, jti: str, expires_at: datetime, at: datetime) -> None:
        with _translated(), self._pool.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT OR IGNORE INTO revoked_tokens (jti, expires_at) VALUES (?, ?)",
                (jti, expires_at.timestamp()),
            )
            # Entries are only needed until the token would have expired anyway (plus a margin
            # for the verifier's leeway).
            conn.execute(
                "DELETE FROM revoked_tokens WHERE expires_at < ?", (at.timestamp() - 3600,)
            )
            conn.execute("COMMIT")

    def is_active(self, session_id: str | None, jti: str, at: datetime) -> bool:
        with _translated(), self._pool.connection() as conn:
            row = conn.execute(
                "SELECT (? IS NULL OR EXISTS (SELECT 1 FROM sessions"
                "  WHERE id = ? AND revoked_at IS NULL))"
                " AND NOT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ?)",
                (session_id, session_id, jti),
            ).fetchone()
        return bool(row[0])

    @staticmethod
    def _insert_token(conn: sqlite3.Connection, token: RefreshToken) -> None:
        conn.execute(
            "INSERT INTO refresh_tokens (id, session_id, secret_hash, created_at, expires_at,"
            " used_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                token.id,
                token.session_id,
                token.secret_hash,
                _ts(token.created_at),
                _ts(token.expires_at),
                _ts(token.used_at),
            ),
        )


class SqliteRateLimitStore:
    def __init__(self, pool: _Pool) -> None:
        self._pool = pool

    def hit(self, key: str, window_seconds: int, at: datetime) -> tuple[int, datetime]:
        now = at.timestamp()
        with _translated(), self._pool.connection() as conn:
            count, start = conn.execute(
                "INSERT INTO rate_limits (key, window_start, count) VALUES (?, ?, 1)"
                " ON CONFLICT (key) DO UPDATE SET"
                "  count = CASE WHEN window_start <= ? THEN 1 ELSE count + 1 END,"
                "  window_start = CASE WHEN window_start <= ? THEN ? ELSE window_start END"
                " RETURNING count, window_start",
                (key, now, now - window_seconds, now - window_seconds, now),
            ).fetchone()
        return count, datetime.fromtimestamp(start, UTC)

    def peek(self, key: str, window_seconds: int, at: datetime) -> tuple[int, datetime]:
        with _translated(), self._pool.connection() as conn:
            row = conn.execute(
                "SELECT count, window_start FROM rate_limits WHERE key = ? AND window_start > ?",
                (key, at.timestamp() - window_seconds),
            ).fetchone()
        if row is None:
            return 0, at
        return row["count"], datetime.fromtimestamp(row["window_start"], UTC)

    def clear(self, key: str) -> None:
        with _translated(), self._pool.connection() as conn:
            conn.execute("DELETE FROM rate_limits WHERE key = ?", (key,))
