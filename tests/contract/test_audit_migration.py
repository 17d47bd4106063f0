"""The audit trail reaches a store made before it, with data in it, as a store starts: SQLite's
schema version 2 takes version 3 (and those after it), PostgreSQL's revision 0002 takes 0003
(and on, to the head), and a DynamoDB deployment without the table gains it (with its TTL).
What was there stays as it was."""

import sqlite3
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest

from nimbus.domain.audit import AuditKind
from nimbus.domain.credentials import ServiceCredential
from nimbus.domain.errors import Unavailable
from nimbus.domain.messages import Message
from nimbus.domain.products import Product
from nimbus.domain.todos import Todo
from nimbus.domain.users import User
from nimbus.storage import open_storage
from nimbus.storage import sqlite as embedded
from nimbus.storage.base import Storage
from nimbus.storage.dynamodb import TTL_ATTRIBUTE, DynamoStorage
from nimbus.storage.postgres import PostgresStorage
from tests.backends import database_url
from tests.contract.previous_schema import add_user, alembic_head
from tests.contract.test_audit_store import KEPT, an_event
from tests.factories import a_credential, a_message, a_product, a_todo, a_user

SUBJECT = "0193a0b4-0000-7000-8000-000000000001"


class Filled(NamedTuple):
    user: User
    todo: Todo
    message: Message
    product: Product
    credential: ServiceCredential


def fill(storage: Storage) -> Filled:
    """One record of each kind the previous schema held (a user as it held users then)."""
    user = a_user(email="alice@example.com")
    add_user(storage, user)
    filled = Filled(
        user, a_todo(user, metadata={"n": 1}), a_message(user), a_product(), a_credential()
    )
    storage.todos.add(filled.todo)
    storage.messages.add(filled.message)
    storage.products.add(filled.product)
    storage.credentials.add(filled.credential)
    return filled


def still_there(storage: Storage, before: Filled) -> None:
    assert storage.users.get(before.user.id) == before.user
    assert storage.todos.get(before.user.id, before.todo.uid) == before.todo
    assert list(storage.messages.list(limit=5, cursor=None).items) == [before.message]
    assert storage.products.get(before.product.id) == before.product
    assert storage.credentials.get(before.credential.access_key_id) == before.credential


def audits(storage: Storage) -> None:
    """The new store works at once: filtered, newest first."""
    first = an_event(AuditKind.SIGNUP, subject=SUBJECT)
    second = an_event(AuditKind.LOGIN_OK, subject=SUBJECT)
    for event in (first, second):
        storage.audit.append(event, expires_at=KEPT)
    page = storage.audit.list(subject=SUBJECT, kind=None, limit=5, cursor=None)
    assert list(page.items) == [second, first]


def test_a_version_2_sqlite_file_gains_the_trail_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    conn = sqlite3.connect(path)
    for version, script in embedded.MIGRATIONS:
        if version <= 2:
            conn.executescript(script)
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    previous = open_storage(f"sqlite:///{path}")
    with pytest.raises(Unavailable, match="no such table: audit_events"):
        previous.audit.list(subject=None, kind=None, limit=1, cursor=None)
    before = fill(previous)
    previous.close()

    storage = open_storage(f"sqlite:///{path}")
    try:
        storage.create_schema()
        storage.create_schema()  # a second start (another worker) changes nothing
        check = sqlite3.connect(path)
        assert check.execute("PRAGMA user_version").fetchone()[0] == embedded.SCHEMA_VERSION
        check.close()
        still_there(storage, before)
        audits(storage)
    finally:
        storage.close()


def test_a_postgresql_schema_at_0002_migrates_to_the_trail_and_back(tmp_path: Path) -> None:
    with database_url("postgresql", tmp_path) as url:
        storage = open_storage(url)
        assert isinstance(storage, PostgresStorage)
        try:
            storage._migrate("0002")
            assert _revision(url) == "0002"
            before = fill(storage)
            storage.create_schema()
            assert _revision(url) == alembic_head()
            still_there(storage, before)
            audits(storage)
            storage.drop_schema()  # every revision's downgrade, 0003's too
            assert _tables(url) == set()
        finally:
            storage.close()


def test_a_dynamodb_deployment_without_the_table_gains_it(tmp_path: Path) -> None:
    with database_url("dynamodb", tmp_path) as url:
        storage = open_storage(url)
        assert isinstance(storage, DynamoStorage)
        try:
            storage.create_schema()
            table = storage.tables.audit_events
            storage.client.call("DeleteTable", TableName=table)  # as deployed before it
            assert table not in storage.client.call("ListTables")["TableNames"]
            before = fill(storage)
            storage.create_schema()
            still_there(storage, before)
            ttl = storage.client.call("DescribeTimeToLive", TableName=table)
            assert ttl["TimeToLiveDescription"] == {
                "TimeToLiveStatus": "ENABLED",
                "AttributeName": TTL_ATTRIBUTE,
            }
            audits(storage)
        finally:
            storage.close()


def _revision(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert row is not None
    return str(row[0])


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
    return {name for (name,) in rows}
