"""Accounts management reaches a store made before it, with a user and a session in it, as a
store starts: SQLite's schema version 3 becomes 4, PostgreSQL's revision 0003 becomes 0004
(and back), and DynamoDB reads items written without the new attributes. What was there stays
as it was; the new fields read as an unverified email, an account never disabled, and a
session with no client, address or use since its login."""

from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

from nimbus.domain.sessions import RefreshToken, Session
from nimbus.domain.users import User, UserChanges
from nimbus.storage.base import Storage
from tests.contract.previous_schema import (
    add_user,
    dynamodb_store,
    postgres_at,
    postgres_columns,
    postgres_rows,
    sqlite_at,
    sqlite_columns,
    sqlite_started,
    start_session,
)
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
    with sqlite_at(path, 3) as previous:
        before = fill(previous)
    assert not NEW_COLUMNS["users"] & sqlite_columns(path, "users")

    with sqlite_started(path) as storage:
        for table, columns in NEW_COLUMNS.items():
            assert columns <= sqlite_columns(path, table)
        still_there_with_defaults(storage, before)
        the_new_fields_work(storage, before)


def test_a_postgresql_schema_at_0003_migrates_to_0004_and_back(tmp_path: Path) -> None:
    with postgres_at(tmp_path, "0003") as pg:
        before = fill(pg.storage)
        pg.upgrade()
        still_there_with_defaults(pg.storage, before)
        the_new_fields_work(pg.storage, before)

        pg.downgrade()  # drops the columns, not the rows
        for table, columns in NEW_COLUMNS.items():
            assert not columns & postgres_columns(pg.url, table)
        assert postgres_rows(pg.url, "SELECT count(*) FROM sessions") == [(1,)]
        assert postgres_rows(pg.url, "SELECT id FROM users") == [(before.user.id,)]
        pg.upgrade()  # up again: what 0004 held is gone, the defaults are back
        again = pg.storage.users.get(before.user.id)
        assert (again.email_verified, again.disabled_at, again.version) == (False, None, 2)


def test_dynamodb_items_without_the_attributes_read_as_the_defaults(tmp_path: Path) -> None:
    with dynamodb_store(tmp_path) as storage:
        before = fill(storage)  # the items lose the new attributes (checked there)
        still_there_with_defaults(storage, before)
        the_new_fields_work(storage, before)
