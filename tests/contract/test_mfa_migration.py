"""Second factors reach a store made before them, with a user and a session in it, as a store
starts: SQLite's schema version 4 takes version 5 (and those after it), PostgreSQL's revision
0004 takes 0005 (and back), and a DynamoDB deployment without the table gains it. What was
there stays as it was, and the new store works at once."""

from pathlib import Path
from typing import NamedTuple

import pytest

from nimbus.domain.errors import Unavailable
from nimbus.domain.sessions import RefreshToken, Session
from nimbus.domain.users import User
from nimbus.storage import sqlite as embedded
from nimbus.storage.base import Storage
from tests.contract.previous_schema import (
    delete_table,
    dynamodb_started,
    dynamodb_store,
    postgres_at,
    postgres_rows,
    postgres_tables,
    sqlite_at,
    sqlite_started,
    sqlite_tables,
)
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
    with sqlite_at(path, 4) as previous:
        with pytest.raises(Unavailable, match="no such table: totp_factors"):
            previous.factors.get("someone")
        before = fill(previous)

    with sqlite_started(path) as storage:
        assert embedded.SCHEMA_VERSION >= 5
        assert sqlite_tables(path) >= NEW_TABLES
        still_there(storage, before)
        factors_work(storage, before)
        storage.users.delete(before.user.id)  # the new tables' keys reach the old users
        assert storage.factors.get(before.user.id) is None


def test_a_postgresql_schema_at_0004_migrates_to_0005_and_back(tmp_path: Path) -> None:
    with postgres_at(tmp_path, "0004") as pg:
        assert not NEW_TABLES & postgres_tables(pg.url)
        before = fill(pg.storage)
        pg.upgrade()
        assert postgres_tables(pg.url) >= NEW_TABLES
        still_there(pg.storage, before)
        factors_work(pg.storage, before)

        pg.downgrade()  # drops the new tables, keeps the old rows
        assert not NEW_TABLES & postgres_tables(pg.url)
        assert postgres_rows(pg.url, "SELECT count(*) FROM sessions") == [(1,)]
        assert postgres_rows(pg.url, "SELECT id FROM users") == [(before.user.id,)]
        pg.upgrade()  # up again: the factors 0005 held are gone
        still_there(pg.storage, before)
        factors_work(pg.storage, before)


def test_a_dynamodb_deployment_without_the_table_gains_it(tmp_path: Path) -> None:
    with dynamodb_store(tmp_path) as storage:
        delete_table(storage, storage.tables.totp_factors)  # as deployed before it
        before = fill(storage)
        dynamodb_started(storage)
        still_there(storage, before)
        factors_work(storage, before)
