from datetime import datetime
from typing import Any

from nimbus.domain.errors import NotFound
from nimbus.domain.paging import Page, decode_cursor
from nimbus.domain.users import Role, Unset, User, UserChanges, email_key, username_key
from nimbus.storage.sql.base import Database, Row, page, required, versioned_update

COLUMNS = (
    "id, username, username_key, email, email_key, name, role, password_hash, created_at,"
    " updated_at, last_login, version, external_subject, email_verified, disabled_at"
)


class SqlUserStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, user: User) -> None:
        db = self._db
        with db.transaction() as conn:
            conn.execute(
                f"INSERT INTO users ({COLUMNS})"  # noqa: S608 (fixed names)
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    user.id,
                    user.username,
                    username_key(user.username),
                    user.email,
                    email_key(user.email) if user.email else None,
                    user.name,
                    user.role.value,
                    user.password_hash,
                    db.time(user.created_at),
                    db.time(user.updated_at),
                    db.time(user.last_login),
                    user.version,
                    user.external_subject,
                    user.email_verified,
                    db.time(user.disabled_at),
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

    def other_admin_exists(self, user_id: str) -> bool:
        row = self._db.query_one(
            "SELECT 1 FROM users WHERE role = ? AND disabled_at IS NULL AND id <> ? LIMIT 1",
            (Role.ADMIN.value, user_id),
        )
        return row is not None

    def list(self, *, limit: int, cursor: str | None) -> Page[User]:
        after = decode_cursor(cursor, frozenset({"id"}))["id"] if cursor else ""
        rows = self._db.query(
            "SELECT * FROM users WHERE id > ? ORDER BY id LIMIT ?", (after, limit + 1)
        )
        return page(rows, limit, self._user, "id")

    def record_login(self, user_id: str, at: datetime, password_hash: str | None) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE users SET last_login = ?, password_hash = COALESCE(?, password_hash)"
                " WHERE id = ?",
                (self._db.time(at), password_hash, user_id),
            )

    def update(
        self, user_id: str, changes: UserChanges, *, expected_version: int | None, at: datetime
    ) -> User:
        row = versioned_update(
            self._db,
            "users",
            _assignments(changes, self._db),
            [("id", user_id)],
            expected_version=expected_version,
            at=at,
            look_up=lambda: self.get(user_id),
        )
        return self._user(row)

    def delete(self, user_id: str) -> None:
        # Foreign keys cascade to todos, sessions and refresh tokens, and make a todo added
        # concurrently for this user fail rather than outlive it.
        with self._db.transaction() as conn:
            if not conn.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount:
                raise NotFound("User not found")

    def _one(self, sql: str, *params: Any) -> User | None:
        row = self._db.query_one(sql, params)
        return self._user(row) if row is not None else None

    def _user(self, row: Row) -> User:
        when = self._db.read_time
        return User(
            id=row["id"],
            username=row["username"],
            email=row["email"],
            name=row["name"],
            role=Role(row["role"]),
            password_hash=row["password_hash"],
            created_at=required(when(row["created_at"])),
            updated_at=required(when(row["updated_at"])),
            last_login=when(row["last_login"]),
            version=row["version"],
            external_subject=row["external_subject"],
            email_verified=bool(row["email_verified"]),  # SQLite's is 0 or 1
            disabled_at=when(row["disabled_at"]),
        )


def _assignments(changes: UserChanges, db: Database) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    if not isinstance(changes.email, Unset):
        key = email_key(changes.email) if changes.email else None
        pairs += [("email", changes.email), ("email_key", key)]
    if not isinstance(changes.name, Unset):
        pairs.append(("name", changes.name))
    if not isinstance(changes.role, Unset):
        pairs.append(("role", changes.role.value))
    if not isinstance(changes.password_hash, Unset):
        pairs.append(("password_hash", changes.password_hash))
    if not isinstance(changes.email_verified, Unset):
        pairs.append(("email_verified", changes.email_verified))
    if not isinstance(changes.disabled_at, Unset):
        pairs.append(("disabled_at", db.time(changes.disabled_at)))
    return pairs
