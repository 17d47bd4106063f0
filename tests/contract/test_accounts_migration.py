"""Accounts management reaches a store made before it, with a user and a session in it, as a
store starts: SQLite's schema version 3 becomes 4, PostgreSQL's revision 0003 becomes 0004
(and back), and DynamoDB reads items written without the new attributes. What was there stays
as it was; the new fields read as an unverified email, an account never disabled, and a
session with no client, address or use since its login."""

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import psycopg

from nimbus.domain.sessions import RefreshToken, Session
from nimbus.domain.users import User, UserChanges
from nimbus.storage import open_storage
from nimbus.storage import sqlite as embedded
from nimbus.storage.base import Storage
from nimbus.storage.dynamodb import DynamoStorage
from nimbus.storage.postgres import PostgresStorage
from tests.backends import database_url
from tests.contract.previous_schema import add_user, alembic_downgrade, alembic_head, start_session
from tests.factories import NOW, a_refresh_token, a_session, a_user

LATER = NOW + timedelta(minutes=5)
NEW_COLUMNS = {
    "users": {"email_verified", "disabled_at"},
    "sessions": {"user_agent", "address", "last_used_at"},
}


class Filled(NamedTuple):
    user: User
    session: Session
    token: RefreshToken


def fill(storage: Storage) -> Filled:
    user = a_user(email="alice@example.com", name="Alice", last_login=NOW)
    session = a_session(user, scopes=frozenset({"todos", "profile"}))
    token = a_refresh_token(session)
    add_user(storage, user)
    start_session(storage, session, token)
    return Filled(user, session, token)


def still_there_with_defaults(storage: Storage, before: Filled) -> None:
    user = storage.users.get(before.user.id)
    assert user == before.user
    assert (user.email_verified, user.disabled_at) == (False, None)
    assert storage.users.find_by_email("alice@example.com") == before.user
    assert list(storage.users.list(limit=5, cursor=None).items) == [before.user]
    found = storage.sessions.find_refresh(before.token.id)
    assert found is not None
    assert found == (before.token, before.session)
    assert (found[1].user_agent, found[1].address, found[1].last_used_at) == (None, None, None)
    assert storage.sessions.list_active(before.user.id) == [before.session]


def the_new_fields_work(storage: Storage, before: Filled) -> None:
    changed = storage.users.update(
        before.user.id,
        UserChanges(email_verified=True, disabled_at=LATER),
        expected_version=before.user.version,
        at=LATER,
    )
    assert (changed.email_verified, changed.disabled_at, changed.name) == (True, LATER, "Alice")
    assert storage.users.get(before.user.id) == changed
    assert storage.sessions.rotate(before.token.id, a_refresh_token(before.session), LATER)
    [session] = storage.sessions.list_active(before.user.id)
    assert session.last_used_at == LATER


def test_a_version_3_sqlite_file_gains_the_columns_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    conn = sqlite3.connect(path)
    for version, script in embedded.MIGRATIONS:
        if version <= 3:
            conn.executescript(script)
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    previous = open_storage(f"sqlite:///{path}")
    before = fill(previous)
    previous.close()
    assert not NEW_COLUMNS["users"] & _sqlite_columns(path, "users")

    storage = open_storage(f"sqlite:///{path}")
    try:
        storage.create_schema()
        storage.create_schema()  # a second start (another worker) adds nothing twice
        check = sqlite3.connect(path)
        assert check.execute("PRAGMA user_version").fetchone()[0] == embedded.SCHEMA_VERSION
        check.close()
        for table, columns in NEW_COLUMNS.items():
            assert columns <= _sqlite_columns(path, table)
        still_there_with_defaults(storage, before)
        the_new_fields_work(storage, before)
    finally:
        storage.close()


def test_a_postgresql_schema_at_0003_migrates_to_0004_and_back(tmp_path: Path) -> None:
    with database_url("postgresql", tmp_path) as url:
        storage = open_storage(url)
        assert isinstance(storage, PostgresStorage)
        try:
            storage._migrate("0003")
            before = fill(storage)
            storage.create_schema()
            assert _revision(url) == alembic_head()
            still_there_with_defaults(storage, before)
            the_new_fields_work(storage, before)

            storage.close()
            alembic_downgrade(url, "0003")  # drops the columns, not the rows
            assert _revision(url) == "0003"
            for table, columns in NEW_COLUMNS.items():
                assert not columns & _postgres_columns(url, table)
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
                users = conn.execute("SELECT id FROM users").fetchall()
            assert users == [(before.user.id,)]
            storage = open_storage(url)
            storage.create_schema()  # up again: what 0004 held is gone, the defaults are back
            again = storage.users.get(before.user.id)
            assert (again.email_verified, again.disabled_at, again.version) == (False, None, 2)
        finally:
            storage.close()


def test_dynamodb_items_without_the_attributes_read_as_the_defaults(tmp_path: Path) -> None:
    with database_url("dynamodb", tmp_path) as url:
        storage = open_storage(url)
        assert isinstance(storage, DynamoStorage)
        try:
            storage.create_schema()
            before = fill(storage)  # the items lose the new attributes (checked there)
            still_there_with_defaults(storage, before)
            the_new_fields_work(storage, before)
        finally:
            storage.close()


def _sqlite_columns(path: Path, table: str) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    finally:
        conn.close()


def _postgres_columns(url: str, table: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        ).fetchall()
    return {name for (name,) in rows}


def _revision(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert row is not None
    return str(row[0])
