"""Stores as an earlier release left them, for the migration tests: a SQLite file at an older
schema version, a PostgreSQL schema at an older Alembic revision, a DynamoDB deployment without
a newer table; the records put in them; and what each backend holds once a store has started on
them and migrated.

Records written as the stores wrote them before accounts management (SQLite schema 4,
Alembic 0004): a user without email_verified and disabled_at, a session without user_agent,
address and last_used_at. On SQL the rows name only the columns of schema 3, so they go into
a schema 3 as well; on DynamoDB the new attributes are removed from the items."""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast

import psycopg

from nimbus import aws
from nimbus.domain.credentials import ServiceCredential
from nimbus.domain.sessions import RefreshToken, Session
from nimbus.domain.todos import Todo
from nimbus.domain.users import User, email_key, username_key
from nimbus.storage import open_storage
from nimbus.storage import sqlite as embedded
from nimbus.storage.base import Storage
from nimbus.storage.dynamodb import DynamoStorage, Tables
from nimbus.storage.dynamodb.items import string
from nimbus.storage.postgres import PostgresStorage, _sqlalchemy_url
from nimbus.storage.sql import SqlStores
from nimbus.storage.sql.base import Database
from tests.backends import database_url
from tests.factories import a_credential, a_todo, a_user

if TYPE_CHECKING:
    from alembic.config import Config


def add_user(storage: Storage, user: User) -> None:
    if isinstance(storage, DynamoStorage):
        storage.users.add(user)
        _remove(storage, storage.tables.users, user.id, "email_verified", "disabled_at")
        return
    db = _database(storage)
    with db.transaction() as conn:
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
                db.time(user.created_at),
                db.time(user.updated_at),
                db.time(user.last_login),
                user.version,
                user.external_subject,
            ),
        )


def start_session(storage: Storage, session: Session, token: RefreshToken) -> None:
    if isinstance(storage, DynamoStorage):
        storage.sessions.start(session, token)
        table = storage.tables.sessions
        _remove(storage, table, session.id, "user_agent", "address", "last_used_at")
        return
    db = _database(storage)
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO sessions (id, user_id, scope, created_at, revoked_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                session.id,
                session.user_id,
                " ".join(sorted(session.scopes)),
                db.time(session.created_at),
                db.time(session.revoked_at),
            ),
        )
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


def alembic_config() -> "Config":
    """Alembic's configuration as PostgresStorage._migrate makes it."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("nimbus.storage") / "migrations"))
    return config


def alembic_downgrade(url: str, target: str) -> None:
    """Alembic's downgrade to `target`, as PostgresStorage._migrate runs an upgrade."""
    from alembic import command
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(_sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, target)
            connection.commit()
    finally:
        engine.dispose()


def alembic_head() -> str:
    """The newest Alembic revision, where create_schema brings PostgreSQL."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


class Records(NamedTuple):
    user: User
    todo: Todo
    credential: ServiceCredential


def add_records(storage: Storage) -> Records:
    """A user, a todo of theirs and a service credential, as every schema since 2 holds them."""
    user = a_user(email="alice@example.com")
    storage.users.add(user)
    records = Records(user, a_todo(user), a_credential())
    storage.todos.add(records.todo)
    storage.credentials.add(records.credential)
    return records


def records_kept(storage: Storage, before: Records) -> None:
    assert storage.users.get(before.user.id) == before.user
    assert storage.todos.get(before.user.id, before.todo.uid) == before.todo
    assert storage.credentials.get(before.credential.access_key_id) == before.credential


# SQLite


@contextmanager
def sqlite_at(path: Path, version: int) -> Iterator[Storage]:
    """A new SQLite file at schema `version`, open as a store that has not migrated it (as the
    release before the next version left it), and closed afterwards."""
    conn = sqlite3.connect(path)
    for number, script in embedded.MIGRATIONS:
        if number <= version:
            conn.executescript(script)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()
    previous = open_storage(f"sqlite:///{path}")
    try:
        yield previous
    finally:
        previous.close()


@contextmanager
def sqlite_started(path: Path) -> Iterator[Storage]:
    """The file open as a store starts on it: migrated to the newest version, twice over."""
    storage = open_storage(f"sqlite:///{path}")
    try:
        storage.create_schema()
        storage.create_schema()  # a second start (another worker) changes nothing
        assert sqlite_rows(path, "PRAGMA user_version") == [(embedded.SCHEMA_VERSION,)]
        yield storage
    finally:
        storage.close()


def sqlite_rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def sqlite_tables(path: Path) -> set[str]:
    return {
        name for (name,) in sqlite_rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'")
    }


def sqlite_columns(path: Path, table: str) -> set[str]:
    return {row[1] for row in sqlite_rows(path, f"PRAGMA table_info({table})")}


# PostgreSQL


class PostgresAt:
    """A private PostgreSQL schema migrated to `revision`, with a store open on it."""

    def __init__(self, url: str, revision: str) -> None:
        self.url = url
        self.revision = revision
        storage = open_storage(url)
        assert isinstance(storage, PostgresStorage)
        self.storage: Storage = storage
        storage._migrate(revision)
        assert alembic_revision(url) == revision

    def upgrade(self) -> None:
        """As a store starts: up to the newest revision."""
        self.storage.create_schema()
        assert alembic_revision(self.url) == alembic_head()

    def downgrade(self) -> None:
        """Back to `revision` with the store closed, then a store open on it again (which does
        not migrate until it is told to)."""
        self.storage.close()
        alembic_downgrade(self.url, self.revision)
        assert alembic_revision(self.url) == self.revision
        self.storage = open_storage(self.url)


@contextmanager
def postgres_at(tmp_path: Path, revision: str) -> Iterator[PostgresAt]:
    with database_url("postgresql", tmp_path) as url:
        at = PostgresAt(url, revision)
        try:
            yield at
        finally:
            at.storage.close()


def postgres_rows(url: str, query: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params or None).fetchall()


def postgres_tables(url: str) -> set[str]:
    rows = postgres_rows(
        url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()",
    )
    return {name for (name,) in rows}


def postgres_columns(url: str, table: str) -> set[str]:
    rows = postgres_rows(
        url,
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s",
        table,
    )
    return {name for (name,) in rows}


def alembic_revision(url: str) -> str:
    """The revision the schema at `url` is at."""
    [(revision,)] = postgres_rows(url, "SELECT version_num FROM alembic_version")
    return str(revision)


# DynamoDB


class DynamoStore(Storage, Protocol):
    """A DynamoStorage as the Storage it is: its stores, and its tables and client too."""

    tables: Tables

    @property
    def client(self) -> aws.JsonApi: ...


@contextmanager
def dynamodb_store(tmp_path: Path) -> Iterator[DynamoStore]:
    """A new DynamoDB deployment with every table, closed and removed afterwards."""
    with database_url("dynamodb", tmp_path) as url:
        storage = open_storage(url)
        assert isinstance(storage, DynamoStorage)
        try:
            storage.create_schema()
            yield storage
        finally:
            storage.close()


def delete_table(storage: DynamoStore, table: str) -> None:
    """The deployment as made before `table` was."""
    storage.client.call("DeleteTable", TableName=table)
    assert table not in dynamodb_tables(storage)


def dynamodb_started(storage: DynamoStore) -> None:
    """As a store starts on the deployment: every table it needs is there afterwards."""
    storage.create_schema()
    assert set(storage.tables.all()) <= dynamodb_tables(storage)


def dynamodb_tables(storage: DynamoStore) -> set[str]:
    return {name for page in storage.client.pages("ListTables") for name in page["TableNames"]}


def _database(storage: Storage) -> Database:
    assert isinstance(storage, SqlStores), storage
    return cast(Database, storage)


def _remove(storage: DynamoStorage, table: str, item_id: str, *names: str) -> None:
    storage.client.call(
        "UpdateItem",
        TableName=table,
        Key={"id": string(item_id)},
        UpdateExpression="REMOVE " + ", ".join(names),
    )
    item = storage.client.call(
        "GetItem", TableName=table, Key={"id": string(item_id)}, ConsistentRead=True
    )["Item"]
    assert not set(names) & set(item), item  # written as before: without them
