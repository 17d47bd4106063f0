from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import pytest

from nimbus.domain.errors import Conflict, NotFound
from nimbus.domain.users import Role, UserChanges
from nimbus.storage.base import Storage
from tests.factories import NOW, a_user


def test_a_stored_user_reads_back_field_for_field(storage: Storage) -> None:
    user = a_user(email="a@example.com", name="Ann", last_login=NOW)
    storage.users.add(user)
    assert storage.users.get(user.id) == user


def test_an_unknown_id_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFound):
        storage.users.get("no-such-id")


def test_usernames_are_unique_whatever_their_case(storage: Storage) -> None:
    storage.users.add(a_user(username="Alice"))
    with pytest.raises(Conflict, match="username"):
        storage.users.add(a_user(username="alice"))


def test_emails_are_unique_whatever_their_case(storage: Storage) -> None:
    storage.users.add(a_user(email="a@example.com"))
    with pytest.raises(Conflict, match="email"):
        storage.users.add(a_user(email="A@Example.com"))


def test_many_users_may_have_no_email(storage: Storage) -> None:
    storage.users.add(a_user())
    storage.users.add(a_user())


def test_find_by_username_and_email_ignore_case(storage: Storage) -> None:
    user = a_user(username="Alice", email="alice@example.com")
    storage.users.add(user)
    assert storage.users.find_by_username("ALICE") == user
    assert storage.users.find_by_email("Alice@Example.com") == user
    assert storage.users.find_by_username("bob") is None
    assert storage.users.find_by_email("bob@example.com") is None


def test_list_pages_through_every_user_oldest_first(storage: Storage) -> None:
    made = [a_user() for _ in range(5)]
    for user in made:
        storage.users.add(user)
    seen, cursor = [], None
    while True:
        page = storage.users.list(limit=2, cursor=cursor)
        seen += [user.id for user in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [user.id for user in made]


def test_record_login_sets_the_time_and_may_replace_the_hash(storage: Storage) -> None:
    user = a_user()
    storage.users.add(user)
    storage.users.record_login(user.id, NOW + timedelta(hours=1), None)
    after = storage.users.get(user.id)
    assert after.last_login == NOW + timedelta(hours=1)
    assert after.password_hash == user.password_hash
    storage.users.record_login(user.id, NOW + timedelta(hours=2), "$argon2id$new")
    assert storage.users.get(user.id).password_hash == "$argon2id$new"


def test_concurrent_sign_ups_for_one_name_have_one_winner(storage: Storage) -> None:
    def add(i: int) -> bool:
        try:
            storage.users.add(a_user(username="Popular" if i % 2 else "popular"))
            return True
        except Conflict:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(add, range(24)))
    assert results.count(True) == 1


def test_a_verified_and_disabled_user_reads_back_the_same_from_every_look_up(
    storage: Storage,
) -> None:
    user = a_user(
        email="v@example.com",
        external_subject="https://issuer.example|v",
        email_verified=True,
        disabled_at=NOW + timedelta(minutes=3),
    )
    storage.users.add(user)
    assert user.disabled
    assert storage.users.get(user.id) == user
    assert storage.users.find_by_username(user.username) == user
    assert storage.users.find_by_email("V@example.com") == user
    assert storage.users.find_by_external_subject("https://issuer.example|v") == user
    assert list(storage.users.list(limit=5, cursor=None).items) == [user]


def test_update_sets_and_clears_email_verified_and_disabled_at(storage: Storage) -> None:
    user = a_user(email="a@example.com", name="Ann")
    storage.users.add(user)
    later, disabled = NOW + timedelta(minutes=1), NOW + timedelta(minutes=2)
    verified = storage.users.update(
        user.id, UserChanges(email_verified=True), expected_version=1, at=later
    )
    assert (verified.email_verified, verified.disabled_at, verified.version) == (True, None, 2)
    off = storage.users.update(
        user.id, UserChanges(disabled_at=disabled), expected_version=2, at=later
    )
    assert (off.email_verified, off.disabled_at, off.disabled) == (True, disabled, True)
    # A change to other fields leaves both as they are.
    renamed = storage.users.update(user.id, UserChanges(name="Anne"), expected_version=3, at=later)
    assert (renamed.name, renamed.email_verified, renamed.disabled_at) == ("Anne", True, disabled)
    cleared = storage.users.update(
        user.id,
        UserChanges(email_verified=False, disabled_at=None),
        expected_version=4,
        at=later,
    )
    assert (cleared.email_verified, cleared.disabled_at, cleared.disabled) == (False, None, False)
    assert cleared == replace(user, name="Anne", updated_at=later, version=5)
    assert storage.users.get(user.id) == cleared


def test_other_admin_exists_counts_enabled_administrators_only(storage: Storage) -> None:
    root = a_user(username="root", role=Role.ADMIN)
    storage.users.add(root)
    assert not storage.users.other_admin_exists(root.id)
    second = a_user(username="second", role=Role.ADMIN)
    storage.users.add(second)
    storage.users.add(a_user(username="member"))
    assert storage.users.other_admin_exists(root.id)
    disabled = UserChanges(disabled_at=NOW)
    storage.users.update(second.id, disabled, expected_version=None, at=NOW)
    assert not storage.users.other_admin_exists(root.id)
    enabled = UserChanges(disabled_at=None)
    storage.users.update(second.id, enabled, expected_version=None, at=NOW)
    assert storage.users.other_admin_exists(root.id)
    assert storage.users.other_admin_exists(second.id)
