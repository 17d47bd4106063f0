"""The signing keys' table reaches a store made before it, with data in it, as a store starts:
SQLite's schema version 5 takes version 6 (and those after it), PostgreSQL's revision 0005
takes 0006 (and back), and a DynamoDB deployment without the table gains it. What was there
stays as it was, and keys can be stored and listed at once."""

from datetime import timedelta
from pathlib import Path

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
from tests.factories import NOW, a_signing_key


def keys_work(storage: Storage) -> None:
    assert storage.signing_keys.list() == []
    second = a_signing_key(created_at=NOW + timedelta(minutes=1))
    first = a_signing_key()
    storage.signing_keys.add(second)
    storage.signing_keys.add(first)
    assert storage.signing_keys.list() == [first, second]


def test_a_version_5_sqlite_file_gains_the_table_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with sqlite_at(path, 5) as previous:
        before = add_records(previous)
    assert "signing_keys" not in sqlite_tables(path)

    with sqlite_started(path) as storage:
        assert embedded.SCHEMA_VERSION >= 6
        records_kept(storage, before)
        keys_work(storage)


def test_a_postgresql_schema_at_0005_migrates_to_0006_and_back(tmp_path: Path) -> None:
    with postgres_at(tmp_path, "0005") as pg:
        before = add_records(pg.storage)
        pg.upgrade()
        records_kept(pg.storage, before)
        keys_work(pg.storage)

        pg.downgrade()  # drops the keys' table, nothing else
        assert postgres_rows(pg.url, "SELECT to_regclass('signing_keys')") == [(None,)]
        records_kept(pg.storage, before)
        pg.upgrade()  # up again: an empty table
        assert pg.storage.signing_keys.list() == []


def test_a_dynamodb_deployment_without_the_table_gains_it(tmp_path: Path) -> None:
    with dynamodb_store(tmp_path) as storage:
        delete_table(storage, storage.tables.signing_keys)  # as deployed before it
        before = add_records(storage)
        dynamodb_started(storage)
        records_kept(storage, before)
        keys_work(storage)
