"""The audit trail reaches a store made before it, with data in it, as a store starts: SQLite's
schema version 2 takes version 3 (and those after it), PostgreSQL's revision 0002 takes 0003
(and on, to the head), and a DynamoDB deployment without the table gains it (with its TTL).
What was there stays as it was."""

from pathlib import Path
from typing import NamedTuple

import pytest

from nimbus.domain.audit import AuditKind
from nimbus.domain.credentials import ServiceCredential
from nimbus.domain.errors import Unavailable
from nimbus.domain.messages import Message
from nimbus.domain.products import Product
from nimbus.domain.todos import Todo
from nimbus.domain.users import User
from nimbus.storage.base import Storage
from nimbus.storage.dynamodb import TTL_ATTRIBUTE
from tests.contract.previous_schema import (
    add_user,
    delete_table,
    dynamodb_started,
    dynamodb_store,
    postgres_at,
    postgres_tables,
    sqlite_at,
    sqlite_started,
)
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
    with sqlite_at(path, 2) as previous:
        with pytest.raises(Unavailable, match="no such table: audit_events"):
            previous.audit.list(subject=None, kind=None, limit=1, cursor=None)
        before = fill(previous)

    with sqlite_started(path) as storage:
        still_there(storage, before)
        audits(storage)


def test_a_postgresql_schema_at_0002_migrates_to_the_trail_and_back(tmp_path: Path) -> None:
    with postgres_at(tmp_path, "0002") as pg:
        before = fill(pg.storage)
        pg.upgrade()
        still_there(pg.storage, before)
        audits(pg.storage)
        pg.storage.drop_schema()  # every revision's downgrade, 0003's too
        assert postgres_tables(pg.url) == set()


def test_a_dynamodb_deployment_without_the_table_gains_it(tmp_path: Path) -> None:
    with dynamodb_store(tmp_path) as storage:
        table = storage.tables.audit_events
        delete_table(storage, table)  # as deployed before it
        before = fill(storage)
        dynamodb_started(storage)
        still_there(storage, before)
        ttl = storage.client.call("DescribeTimeToLive", TableName=table)
        assert ttl["TimeToLiveDescription"] == {
            "TimeToLiveStatus": "ENABLED",
            "AttributeName": TTL_ATTRIBUTE,
        }
        audits(storage)
