"""The passkeys' table reaches a store made before it, with data in it, as a store starts:
SQLite's schema version 6 takes version 7 (and those after it), PostgreSQL's revision 0006
takes 0007 (and back), and a DynamoDB deployment without the table gains it. What was there
stays as it was, and passkeys can be stored and listed at once."""

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import psycopg

from nimbus.domain.credentials import ServiceCredential
from nimbus.domain.todos import Todo
from nimbus.domain.users import User
from nimbus.storage import open_storage
from nimbus.storage import sqlite as embedded
from nimbus.storage.base import Storage
from nimbus.storage.dynamodb import DynamoStorage
from nimbus.storage.postgres import PostgresStorage
from tests.backends import database_url
from tests.contract.previous_schema import alembic_downgrade, alembic_head
from tests.contract.test_passkey_store import a_passkey
from tests.factories import NOW, a_credential, a_todo, a_user


class Filled(NamedTuple):
    user: User
    todo: Todo
    credential: ServiceCredential


def fill(storage: Storage) -> Filled:
    user = a_user(email="alice@example.com")
    storage.users.add(user)
    filled = Filled(user, a_todo(user), a_credential())
    storage.todos.add(filled.todo)
    storage.credentials.add(filled.credential)
    return filled


def still_there(storage: Storage, before: Filled) -> None:
    assert storage.users.get(before.user.id) == before.user
    assert storage.todos.get(before.user.id, before.todo.uid) == before.todo
    assert storage.credentials.get(before.credential.access_key_id) == before.credential


def passkeys_work(storage: Storage, user: User) -> None:
    assert storage.passkeys.list_for(user.id) == []
    second = a_passkey(user, created_at=NOW + timedelta(minutes=1))
    first = a_passkey(user)
    storage.passkeys.add(second)
    storage.passkeys.add(first)
    assert storage.passkeys.list_for(user.id) == [first, second]
    assert storage.passkeys.record_use(first.credential_id, 1, NOW)


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    finally:
        conn.close()


def test_a_version_6_sqlite_file_gains_the_table_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    conn = sqlite3.connect(path)
    for version, script in embedded.MIGRATIONS:
        if version <= 6:
            conn.executescript(script)
    conn.execute("PRAGMA user_version = 6")
    conn.commit()
    conn.close()
    previous = open_storage(f"sqlite:///{path}")
    before = fill(previous)
    previous.close()
    assert "passkeys" not in _tables(path)

    storage = open_storage(f"sqlite:///{path}")
    try:
        storage.create_schema()
        storage.create_schema()  # a second start (another worker) changes nothing
        check = sqlite3.connect(path)
        assert check.execute("PRAGMA user_version").fetchone()[0] == embedded.SCHEMA_VERSION
        assert embedded.SCHEMA_VERSION >= 7
        check.close()
        still_there(storage, before)
        passkeys_work(storage, before.user)
    finally:
        storage.close()


def test_a_postgresql_schema_at_0006_migrates_to_0007_and_back(tmp_path: Path) -> None:
    with database_url("postgresql", tmp_path) as url:
        storage = open_storage(url)
        assert isinstance(storage, PostgresStorage)
        try:
            storage._migrate("0006")
            before = fill(storage)
            storage.create_schema()
            assert _revision(url) == alembic_head()
            still_there(storage, before)
            passkeys_work(storage, before.user)

            storage.close()
            alembic_downgrade(url, "0006")  # drops the passkeys' table, nothing else
            assert _revision(url) == "0006"
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT to_regclass('passkeys')").fetchone() == (None,)
            storage = open_storage(url)
            still_there(storage, before)
            storage.create_schema()  # up again: an empty table
            assert storage.passkeys.list_for(before.user.id) == []
        finally:
            storage.close()


def test_a_dynamodb_deployment_without_the_table_gains_it(tmp_path: Path) -> None:
    with database_url("dynamodb", tmp_path) as url:
        storage = open_storage(url)
        assert isinstance(storage, DynamoStorage)
        try:
            storage.create_schema()
            table = storage.tables.passkeys
            storage.client.call("DeleteTable", TableName=table)  # as deployed before it
            before = fill(storage)
            storage.create_schema()
            assert table in storage.client.call("ListTables")["TableNames"]
            still_there(storage, before)
            passkeys_work(storage, before.user)
        finally:
            storage.close()


def _revision(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert row is not None
    return str(row[0])
