"""The passkeys' table reaches a store made before it, with data in it, as a store starts:
SQLite's schema version 6 takes version 7 (and those after it), PostgreSQL's revision 0006
takes 0007 (and back), and a DynamoDB deployment without the table gains it. What was there
stays as it was, and passkeys can be stored and listed at once."""

from datetime import timedelta
from pathlib import Path

from nimbus.domain.users import User
from nimbus.storage import sqlite as embedded
from nimbus.storage.base import Storage
from tests.contract.previous_schema import (
    add_records,
    delete_table,
    dynamodb_started,
    dynamodb_store,
    postgres_at,
    postgres_rows,
    records_kept,
    sqlite_at,
    sqlite_started,
    sqlite_tables,
)
from tests.contract.test_passkey_store import a_passkey
from tests.factories import NOW


def passkeys_work(storage: Storage, user: User) -> None:
    assert storage.passkeys.list_for(user.id) == []
    second = a_passkey(user, created_at=NOW + timedelta(minutes=1))
    first = a_passkey(user)
    storage.passkeys.add(second)
    storage.passkeys.add(first)
    assert storage.passkeys.list_for(user.id) == [first, second]
    assert storage.passkeys.record_use(first.credential_id, 1, NOW)


def test_a_version_6_sqlite_file_gains_the_table_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with sqlite_at(path, 6) as previous:
        before = add_records(previous)
    assert "passkeys" not in sqlite_tables(path)

    with sqlite_started(path) as storage:
        assert embedded.SCHEMA_VERSION >= 7
        records_kept(storage, before)
        passkeys_work(storage, before.user)


def test_a_postgresql_schema_at_0006_migrates_to_0007_and_back(tmp_path: Path) -> None:
    with postgres_at(tmp_path, "0006") as pg:
        before = add_records(pg.storage)
        pg.upgrade()
        records_kept(pg.storage, before)
        passkeys_work(pg.storage, before.user)

        pg.downgrade()  # drops the passkeys' table, nothing else
        assert postgres_rows(pg.url, "SELECT to_regclass('passkeys')") == [(None,)]
        records_kept(pg.storage, before)
        pg.upgrade()  # up again: an empty table
        assert pg.storage.passkeys.list_for(before.user.id) == []


def test_a_dynamodb_deployment_without_the_table_gains_it(tmp_path: Path) -> None:
    with dynamodb_store(tmp_path) as storage:
        delete_table(storage, storage.tables.passkeys)  # as deployed before it
        before = add_records(storage)
        dynamodb_started(storage)
        records_kept(storage, before)
        passkeys_work(storage, before.user)
