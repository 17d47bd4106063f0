"""PostgreSQL, for several workers or replicas: a connection pool, Alembic migrations, and
the same single-statement conditional writes as the SQLite backend.

Each `with self._pool.connection()` block is one transaction: psycopg commits when the block
ends and rolls back if it raises.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, NoReturn, cast

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from nimbus.domain.errors import Conflict, NotFound, PreconditionFailed, Unavailable
from nimbus.domain.paging import Page, decode_cursor
from nimbus.domain.sessions import RefreshToken, Session
from nimbus.domain.todos import Todo, TodoChanges, TodoState
from nimbus.domain.users import User, UserChanges, email_key, username_key
from nimbus.storage.base import TABLES
from nimbus.storage.sql import Row, page, to_todo, to_user, user_assignments

POOL_MAX = 10
CONNECT_TIMEOUT_SECONDS = 5
POOL_WAIT_SECONDS = 10
MIGRATION_LOCK = 0x6E696D62  # "nimb": one migrator at a time across workers


def open_url(url: str) -> "PostgresStorage":
    return PostgresStorage(url)


class PostgresStorage:
    def __init__(self, url: str, *, max_size: int = POOL_MAX) -> None:
        self.url = url
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
            configure=_use_utc,
            timeout=POOL_WAIT_SECONDS,
            check=ConnectionPool.check_connection,  # a restarted server's dead sockets are dropped
            open=False,
        )
        self._opened = False
        self.users = PostgresUserStore(self)
        self.todos = PostgresTodoStore(self)
        self.sessions = PostgresSessionStore(self)
        self.rate_limits = PostgresRateLimitStore(self)

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A pooled connection inside one transaction, with driver errors translated."""
        if not self._opened:
            self._pool.open(wait=False)
            self._opened = True
        try:
            with self._pool.connection() as conn:
                yield cast(psycopg.Connection[dict[str, Any]], conn)
        except pg_errors.UniqueViolation as exc:
            raise Conflict(_conflict_message(exc)) from None
        except pg_errors.ForeignKeyViolation:
            raise NotFound("The owner no longer exists") from None
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise Unavailable(f"storage error: {exc}") from None

    def create_schema(self) -> None:
        """Bring the schema to the newest migration, under an advisory lock."""
        self._migrate("head")

    def drop_schema(self) -> list[str]:
        """Undo every migration, which drops every table."""
        self._migrate("base")
        return list(TABLES)

    def _migrate(self, target: str) -> None:
        # Imported here: only a migrating process needs Alembic and SQLAlchemy.
        from alembic import command
        from alembic.config import Config
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import OperationalError
        from sqlalchemy.pool import NullPool

        engine = create_engine(_sqlalchemy_url(self.url), poolclass=NullPool)
        config = Config()
        config.set_main_option(
            "script_location", str(resources.files("nimbus.storage") / "migrations")
        )
        try:
            with engine.connect() as connection:
                connection.execute(text(f"SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                try:
                    config.attributes["connection"] = connection
                    if target == "base":
                        command.downgrade(config, target)
                        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
                    else:
                        command.upgrade(config, target)
                    connection.commit()
                finally:
                    connection.execute(text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                    connection.commit()
        except OperationalError as exc:
            raise Unavailable(f"cannot reach PostgreSQL: {exc.orig}") from None
        finally:
            engine.dispose()

    def ping(self) -> None:
        with self.transaction() as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        if self._opened:
            self._pool.close()
            self._opened = False


def _use_utc(conn: psycopg.Connection[Any]) -> None:
    # Timestamps then come back in UTC whatever the server's zone, as every backend returns them.
    conn.execute("SET TIME ZONE 'UTC'")
    conn.commit()


def _sqlalchemy_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else url


def _conflict_message(exc: pg_errors.UniqueViolation) -> str:
    constraint = exc.diag.constraint_name or ""
    if "username" in constraint:
        return "That username is taken"
    if "email" in constraint:
        return "That email is already registered"
    return "The record already exists"


class PostgresUserStore:
    def __init__(self, db: PostgresStorage) -> None:
        self._db = db

    def add(self, user: User) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO users (id, username, username_key, email, email_key, name, role,"
                " password_hash, created_at, updated_at, last_login, version, external_subject)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    user.id,
                    user.username,
                    username_key(user.username),
                    user.email,
                    email_key(user.email) if user.email else None,
                    user.name,
                    user.role.value,
                    user.password_hash,
                    user.created_at,
                    user.updated_at,
                    user.last_login,
                    user.version,
                    user.external_subject,
                ),
            )

    def get(self, user_id: str) -> User:
        user = self._one("SELECT * FROM users WHERE id = %s", user_id)
        if user is None:
            raise NotFound("User not found")
        return user

    def find_by_username(self, username: str) -> User | None:
        return self._one("SELECT * FROM users WHERE username_key = %s", username_key(username))

    def find_by_email(self, email: str) -> User | None:
        return self._one("SELECT * FROM users WHERE email_key = %s", email_key(email))

    def find_by_external_subject(self, subject: str) -> User | None:
        return self._one("SELECT * FROM users WHERE external_subject = %s", subject)

    def list(self, *, limit: int, cursor: str | None) -> Page[User]:
        after = decode_cursor(cursor, frozenset({"id"}))["id"] if cursor else ""
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM users WHERE id > %s ORDER BY id LIMIT %s", (after, limit + 1)
            ).fetchall()
        return page(rows, limit, _user, "id")

    def record_login(self, user_id: str, at: datetime, password_hash: str | None) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE users SET last_login = %s, password_hash = COALESCE(%s, password_hash)"
                " WHERE id = %s",
                (at, password_hash, user_id),
            )

    def update(
        self, user_id: str, changes: UserChanges, *, expected_version: int | None, at: datetime
    ) -> User:
        pairs = user_assignments(changes)
        assignments = ["updated_at = %s", "version = version + 1"]
        assignments += [f"{column} = %s" for column, _ in pairs]
        params: list[Any] = [at, *(value for _, value in pairs)]
        sql = f"UPDATE users SET {', '.join(assignments)} WHERE id = %s"  # noqa: S608 (fixed columns)
        params.append(user_id)
        if expected_version is not None:
            sql += " AND version = %s"
            params.append(expected_version)
        with self._db.transaction() as conn:
            row = conn.execute(sql + " RETURNING *", params).fetchone()
        if row is None:
            self.get(user_id)
            raise PreconditionFailed()
        return _user(row)

    def delete(self, user_id: str) -> None:
        # Foreign keys cascade to todos, sessions and refresh tokens, and lock the user row
        # against a concurrent insert, so no todo outlives its owner.
        with self._db.transaction() as conn:
            if not conn.execute("DELETE FROM users WHERE id = %s", (user_id,)).rowcount:
                raise NotFound("User not found")

    def _one(self, sql: str, *params: Any) -> User | None:
        with self._db.transaction() as conn:
            row = conn.execute(sql, params).fetchone()
        return _user(row) if row is not None else None


def _user(row: Row) -> User:
    return to_user(row, _as_is)


class PostgresTodoStore:
    def __init__(self, db: PostgresStorage) -> None:
        self._db = db

    def add(self, todo: Todo) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO todos (owner, uid, username, description, state, metadata,"
                " created_at, updated_at, version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    todo.owner,
                    todo.uid,
                    todo.username,
                    todo.description,
                    todo.state.value,
                    Jsonb(todo.metadata),
                    todo.created_at,
                    todo.updated_at,
                    todo.version,
                ),
            )

    def get(self, owner: str, uid: str) -> Todo:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM todos WHERE owner = %s AND uid = %s", (owner, uid)
            ).fetchone()
        if row is None:
            raise NotFound("Todo not found")
        return _todo(row)

    def list(
        self, owner: str, *, state: TodoState | None, limit: int, cursor: str | None
    ) -> Page[Todo]:
        sql = "SELECT * FROM todos WHERE owner = %s"
        params: list[Any] = [owner]
        if state is not None:
            sql += " AND state = %s"
            params.append(state.value)
        if cursor:
            sql += " AND uid < %s"
            params.append(decode_cursor(cursor, frozenset({"uid"}))["uid"])
        sql += " ORDER BY uid DESC LIMIT %s"
        params.append(limit + 1)
        with self._db.transaction() as conn:
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
            "UPDATE todos SET description = COALESCE(%s, description),"
            " state = COALESCE(%s, state), metadata = COALESCE(%s, metadata),"
            " updated_at = %s, version = version + 1 WHERE owner = %s AND uid = %s"
        )
        params: list[Any] = [
            changes.description,
            changes.state.value if changes.state is not None else None,
            Jsonb(changes.metadata) if changes.metadata is not None else None,
            at,
            owner,
            uid,
        ]
        if expected_version is not None:
            sql += " AND version = %s"
            params.append(expected_version)
        with self._db.transaction() as conn:
            row = conn.execute(sql + " RETURNING *", params).fetchone()
        if row is None:
            self._explain_miss(owner, uid)
        return _todo(row)

    def delete(self, owner: str, uid: str, *, expected_version: int | None) -> None:
        sql = "DELETE FROM todos WHERE owner = %s AND uid = %s"
        params: list[Any] = [owner, uid]
        if expected_version is not None:
            sql += " AND version = %s"
            params.append(expected_version)
        with self._db.transaction() as conn:
            deleted = conn.execute(sql, params).rowcount
        if not deleted:
            self._explain_miss(owner, uid)

    def _explain_miss(self, owner: str, uid: str) -> NoReturn:
        self.get(owner, uid)
        raise PreconditionFailed()


def _as_is(value: Any) -> Any:
    return value


def _todo(row: Row) -> Todo:
    return to_todo(row, _as_is)


class PostgresSessionStore:
    def __init__(self, db: PostgresStorage) -> None:
        self._db = db

    def start(self, session: Session, token: RefreshToken) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO sessions (id, user_id, scope, created_at, revoked_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (
                    session.id,
                    session.user_id,
                    " ".join(sorted(session.scopes)),
                    session.created_at,
                    session.revoked_at,
                ),
            )
            _insert_token(conn, token)

    def find_refresh(self, token_id: str) -> tuple[RefreshToken, Session] | None:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT t.*, s.user_id, s.scope, s.created_at AS session_created_at,"
                " s.revoked_at FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id"
                " WHERE t.id = %s",
                (token_id,),
            ).fetchone()
        if row is None:
            return None
        token = RefreshToken(
            id=row["id"],
            session_id=row["session_id"],
            secret_hash=row["secret_hash"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            used_at=row["used_at"],
        )
        session = Session(
            id=row["session_id"],
            user_id=row["user_id"],
            scopes=frozenset(row["scope"].split()),
            created_at=row["session_created_at"],
            revoked_at=row["revoked_at"],
        )
        return token, session

    def rotate(self, used_id: str, replacement: RefreshToken, at: datetime) -> bool:
        with self._db.transaction() as conn:
            claimed = conn.execute(
                "UPDATE refresh_tokens SET used_at = %s WHERE id = %s AND used_at IS NULL"
                " AND session_id IN (SELECT id FROM sessions WHERE revoked_at IS NULL)",
                (at, used_id),
            ).rowcount
            if not claimed:
                return False
            _insert_token(conn, replacement)
            return True

    def revoke(self, session_id: str, at: datetime) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE sessions SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL",
                (at, session_id),
            )

    def revoke_all(self, user_id: str, at: datetime) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE sessions SET revoked_at = %s WHERE user_id = %s AND revoked_at IS NULL",
                (at, user_id),
            )

    def revoke_access_token(self, jti: str, expires_at: datetime, at: datetime) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES (%s, %s)"
                " ON CONFLICT (jti) DO NOTHING",
                (jti, expires_at),
            )
            conn.execute(
                "DELETE FROM revoked_tokens WHERE expires_at < %s - interval '1 hour'", (at,)
            )

    def is_active(self, session_id: str | None, jti: str, at: datetime) -> bool:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT (%(sid)s::text IS NULL OR EXISTS (SELECT 1 FROM sessions"
                "  WHERE id = %(sid)s AND revoked_at IS NULL))"
                " AND NOT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = %(jti)s) AS active",
                {"sid": session_id, "jti": jti},
            ).fetchone()
        return bool(row and row["active"])


def _insert_token(conn: psycopg.Connection[dict[str, Any]], token: RefreshToken) -> None:
    conn.execute(
        "INSERT INTO refresh_tokens (id, session_id, secret_hash, created_at, expires_at,"
        " used_at) VALUES (%s, %s, %s, %s, %s, %s)",
        (
            token.id,
            token.session_id,
            token.secret_hash,
            token.created_at,
            token.expires_at,
            token.used_at,
        ),
    )


class PostgresRateLimitStore:
    def __init__(self, db: PostgresStorage) -> None:
        self._db = db

    def hit(self, key: str, window_seconds: int, at: datetime) -> tuple[int, datetime]:
        with self._db.transaction() as conn:
            row = conn.execute(
                "INSERT INTO rate_limits AS r (key, window_start, count)"
                " VALUES (%(key)s, %(at)s, 1)"
                " ON CONFLICT (key) DO UPDATE SET"
                "  count = CASE WHEN r.window_start <= %(cutoff)s THEN 1 ELSE r.count + 1 END,"
                "  window_start = CASE WHEN r.window_start <= %(cutoff)s THEN %(at)s"
                "   ELSE r.window_start END"
                " RETURNING count, window_start",
                {"key": key, "at": at, "cutoff": at - _seconds(window_seconds)},
            ).fetchone()
        assert row is not None
        return row["count"], row["window_start"].astimezone(UTC)

    def peek(self, key: str, window_seconds: int, at: datetime) -> tuple[int, datetime]:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT count, window_start FROM rate_limits WHERE key = %s AND window_start > %s",
                (key, at - _seconds(window_seconds)),
            ).fetchone()
        if row is None:
            return 0, at
        return row["count"], row["window_start"].astimezone(UTC)

    def clear(self, key: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM rate_limits WHERE key = %s", (key,))


def _seconds(count: int) -> timedelta:
    return timedelta(seconds=count)
