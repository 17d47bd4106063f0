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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nimbus import metrics
from nimbus.domain.errors import Conflict, NimbusError, NotFound, Unavailable
from nimbus.storage.base import TABLES
from nimbus.storage.sql import SqlStores
from nimbus.storage.sql.base import READY_PROBE, conflict_message

# Below the 5 s in which a request stalled on the store must have its 503.
BUSY_TIMEOUT_SECONDS = 4.0
READY_WAIT_MS = 500

# The schema as of version 2 (version 1's tables, and messages, products, credentials).
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
    expires_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS rate_limits (
    key TEXT PRIMARY KEY,
    window_start TEXT NOT NULL,
    count INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    author_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_by_author ON messages (author_id);

CREATE TABLE IF NOT EXISTS products (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    stock INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS service_credentials (
    access_key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    sealed_secret TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
) WITHOUT ROWID;
"""

# Version 3: the audit trail. No key to users: an event outlives the account it names.
AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_events (
    id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor_id TEXT,
    subject_id TEXT,
    client TEXT,
    request_id TEXT,
    detail TEXT NOT NULL,
    expires_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_events_by_subject ON audit_events (subject_id, id);
CREATE INDEX IF NOT EXISTS audit_events_by_kind ON audit_events (kind, id);
CREATE INDEX IF NOT EXISTS audit_events_by_expiry ON audit_events (expires_at);
"""

# Version 4: accounts management. Rows from before it read as an unverified email, an
# account never disabled, and a session with no client, address or use since its login.
ACCOUNTS_SCHEMA = """
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN disabled_at TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN address TEXT;
ALTER TABLE sessions ADD COLUMN last_used_at TEXT;
"""

# Version 5: second factors, a user's TOTP factor and its recovery codes' digests.
MFA_SCHEMA = """
CREATE TABLE IF NOT EXISTS totp_factors (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret TEXT NOT NULL,
    created_at TEXT NOT NULL,
    confirmed_at TEXT,
    last_step INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    used_at TEXT,
    PRIMARY KEY (user_id, digest)
) WITHOUT ROWID;
"""

# Version 6: the access-token signing keys `nimbus keys rotate` makes, sealed.
SIGNING_KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS signing_keys (
    kid TEXT PRIMARY KEY,
    sealed_key TEXT NOT NULL,
    created_at TEXT NOT NULL
) WITHOUT ROWID;
"""

# Version 7: passkeys, each account's WebAuthn credentials.
PASSKEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS passkeys (
    credential_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    public_key TEXT NOT NULL,
    sign_count INTEGER NOT NULL,
    transports TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS passkeys_by_user ON passkeys (user_id, created_at);
"""

# Each version's statements, applied in order to a file below it (PRAGMA user_version) when
# a store starts, all in one IMMEDIATE transaction that reads the version under the write
# lock: a crash leaves the file at its old version, and another worker waits, then finds the
# file migrated. (So an ALTER, which has no IF NOT EXISTS, runs once.)
MIGRATIONS = (
    (2, SCHEMA),
    (3, AUDIT_SCHEMA),
    (4, ACCOUNTS_SCHEMA),
    (5, MFA_SCHEMA),
    (6, SIGNING_KEYS_SCHEMA),
    (7, PASSKEYS_SCHEMA),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


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
        conn = self.take()
        try:
            yield conn
        finally:
            self.give(conn)

    def take(self) -> sqlite3.Connection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._connect()

    def give(self, conn: sqlite3.Connection) -> None:
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


class SqliteStorage(SqlStores):
    embedded = True
    inline_reads = True
    read_stamp = staticmethod(datetime.fromisoformat)

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = _Pool(path)
        self._wire_stores()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        # Deferred: every multi-statement block here writes first, so it takes the write
        # lock (waiting up to the busy timeout) before it reads anything.
        with _translated(), self._pool.connection() as conn:
            conn.execute("BEGIN")
            yield conn
            conn.execute("COMMIT")

    # The reads of one statement run in autocommit mode, where a lone statement is its own
    # transaction, and take a connection without a context manager: BEGIN, COMMIT and the
    # context managers were half the cost of a read by primary key.
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        conn = None
        try:
            conn = self._pool.take()
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            error = _domain_error(exc)
            if error is None:
                raise
            raise error from exc
        finally:
            if conn is not None:
                self._pool.give(conn)

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def time(self, value: datetime | None) -> str | None:
        # UTC at a fixed width, so text comparisons in SQL are comparisons in time.
        if value is None:
            return None
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def read_time(self, value: Any) -> datetime | None:
        return datetime.fromisoformat(value) if value is not None else None

    def json(self, value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    def create_schema(self) -> list[str]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"cannot create {self.path.parent}: {exc.strerror}") from exc
        with _translated(), self._pool.connection() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            for version, script in MIGRATIONS:
                if current < version:
                    for statement in script.split(";"):
                        if statement.strip():
                            conn.execute(statement)
            if current < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        return list(TABLES)

    def drop_schema(self) -> list[str]:
        with _translated(), self._pool.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            for table in TABLES:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute("PRAGMA user_version = 0")
            conn.execute("COMMIT")
        return list(TABLES)

    def ping(self) -> None:
        # A write, waiting briefly: a full disk, or the write lock held by another process,
        # makes the store unready, though reads would still answer.
        with _translated(), self._pool.connection() as conn:
            conn.execute(f"PRAGMA busy_timeout = {READY_WAIT_MS}")
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(READY_PROBE, (self.time(datetime.now(UTC)),))
                conn.execute("COMMIT")
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")

    def close(self) -> None:
        self._pool.close()


@contextmanager
def _translated() -> Iterator[None]:
    """Driver errors become domain errors here, at the storage boundary."""
    try:
        yield
    except sqlite3.Error as exc:
        error = _domain_error(exc)
        if error is None:
            raise
        raise error from exc


def _domain_error(exc: sqlite3.Error) -> NimbusError | None:
    """The domain error for a driver error; None for a misuse of the driver (a bug)."""
    if isinstance(exc, sqlite3.IntegrityError):
        if "FOREIGN KEY" in str(exc):
            return NotFound("The owner no longer exists")
        return Conflict(conflict_message(str(exc)))
    if isinstance(exc, sqlite3.DatabaseError):  # OperationalError and the rest
        metrics.store_error("busy" if "locked" in str(exc) else type(exc).__name__)
        return Unavailable(f"storage error: {exc}")
    return None
