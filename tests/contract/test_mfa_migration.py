"""Second factors reach a store made before them, with a user and a session in it, as a store
starts: SQLite's schema version 4 takes version 5 (and those after it), PostgreSQL's revision
0004 takes 0005 (and back), and a DynamoDB deployment without the table gains it. What was
there stays as it was, and the new store works at once."""

import sqlite3
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest

from nimbus.domain.errors import Unavailable
from nimbus.domain.sessions import RefreshToken, Session
from nimbus.domain.users import User
from nimbus.storage import open_storage
from nimbus.storage import sqlite as embedded
from nimbus.storage.base import Storage
from nimbus.storage.dynamodb import DynamoStorage
from nimbus.storage.postgres import PostgresStorage
from tests.backends import database_url
from tests.contract.previous_schema import alembic_downgrade, alembic_head
from tests.contract.test_factor_store import CODES, LATER, STEP
from tests.factories import NOW, a_refresh_token, a_session, a_totp_factor, a_user

NEW_TABLES = {"totp_factors", "recovery_codes"}


class Filled(NamedTuple):
    user: User
    session: Session
    token: RefreshToken


def fill(storage: Storage) -> Filled:
    """A user and a session as the schema before second factors holds them."""
    user = a_user(email="alice@example.com", name="Alice", last_login=NOW, email_verified=True)
    session = a_session(user, user_agent="curl/8", address="192.0.2.1", last_used_at=NOW)
    token = a_refresh_token(session)
    storage.users.add(user)
    storage.sessions.start(session, token)
    return Filled(user, session, token)


def still_there(storage: Storage, before: Filled) -> None:
    assert storage.users.get(before.user.id) == before.user
    assert storage.users.find_by_email("alice@example.com") == before.user
    assert storage.sessions.find_refresh(before.token.id) == (before.token, before.session)
    assert storage.sessions.list_active(before.user.id) == [before.session]


def factors_work(storage: Storage, before: Filled) -> None:
    user_id = before.user.id
    assert storage.factors.get(user_id) is None
    factor = a_totp_factor(before.user)
    storage.factors.begin(factor)
    assert storage.factors.confirm(
        user_id, factor.sealed_secret, step=STEP, recovery_codes=CODES, at=LATER
    )
    assert storage.factors.use_step(user_id, STEP + 1)
    assert storage.factors.use_recovery_code(user_id, CODES[0])
    assert not storage.factors.use_recovery_code(user_id, CODES[0])
    found = storage.factors.get(user_id)
    assert found is not None
    assert (found.confirmed_at, found.last_step, found.recovery_codes_left) == (
        LATER,
        STEP + 1,
        len(CODES) - 1,
    )


def test_a_version_4_sqlite_file_gains_the_factors_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    conn = sqlite3.connect(path)
    for version, script in embedded.MIGRATIONS:
        if version <= 4:
            conn.executescript(script)
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()
    previous = open_storage(f"sqlite:///{path}")
    with pytest.raises(Unavailable, match="no such table: totp_factors"):
        previous.factors.get("someone")
    before = fill(previous)
    previous.close()

    storage = open_storage(f"sqlite:///{path}")
    try:
        storage.create_schema()
        storage.create_schema()  # a second start (another worker) changes nothing
        check = sqlite3.connect(path)
        assert check.execute("PRAGMA user_version").fetchone()[0] == embedded.SCHEMA_VERSION
        assert embedded.SCHEMA_VERSION >= 5
        tables = {name for (name,) in check.execute("SELECT name FROM sqlite_master")}
        check.close()
        assert tables >= NEW_TABLES
        still_there(storage, before)
        factors_work(storage, before)
        storage.users.delete(before.user.id)  # the new tables' keys reach the old users
        assert storage.factors.get(before.user.id) is None
    finally:
        storage.close()


def test_a_postgresql_schema_at_0004_migrates_to_0005_and_back(tmp_path: Path) -> None:
    with database_url("postgresql", tmp_path) as url:
        storage = open_storage(url)
        assert isinstance(storage, PostgresStorage)
        try:
            storage._migrate("0004")
            assert not NEW_TABLES & _postgres_tables(url)
            before = fill(storage)
            storage.create_schema()
            assert _revision(url) == alembic_head()
            assert _postgres_tables(url) >= NEW_TABLES
            still_there(storage, before)
            factors_work(storage, before)

            storage.close()
            alembic_downgrade(url, "0004")  # drops the new tables, keeps the old rows
            assert _revision(url) == "0004"
            assert not NEW_TABLES & _postgres_tables(url)
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
                users = conn.execute("SELECT id FROM users").fetchall()
            assert users == [(before.user.id,)]
            storage = open_storage(url)
            storage.create_schema()  # up again: the factors 0005 held are gone
            still_there(storage, before)
            factors_work(storage, before)
        finally:
            storage.close()


def test_a_dynamodb_deployment_without_the_table_gains_it(tmp_path: Path) -> None:
    with database_url("dynamodb", tmp_path) as url:
        storage = open_storage(url)
        assert isinstance(storage, DynamoStorage)
        try:
            storage.create_schema()
            table = storage.tables.totp_factors
            storage.client.call("DeleteTable", TableName=table)  # as deployed before it
            assert table not in _dynamodb_tables(storage)
            before = fill(storage)
            storage.create_schema()
            assert set(storage.tables.all()) <= _dynamodb_tables(storage)
            still_there(storage, before)
            factors_work(storage, before)
        finally:
            storage.close()


def _revision(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert row is not None
    return str(row[0])


def _postgres_tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
    return {name for (name,) in rows}


def _dynamodb_tables(storage: DynamoStorage) -> set[str]:
    return {name for page in storage.client.pages("ListTables") for name in page["TableNames"]}
