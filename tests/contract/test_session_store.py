from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import pytest

from nimbus.domain.errors import Conflict, NotFound, PreconditionFailed
from nimbus.domain.users import Role, UserChanges
from nimbus.storage.base import Storage
from tests.contract.conftest import stored_user
from tests.factories import NOW, a_refresh_token, a_session, a_todo, a_user

LATER = NOW + timedelta(minutes=1)
STEP = timedelta(seconds=10)


def test_a_session_and_its_token_read_back_together(storage: Storage) -> None:
    user = stored_user(storage)
    session = a_session(user, scopes=frozenset({"todos", "profile"}))
    token = a_refresh_token(session)
    storage.sessions.start(session, token)
    assert storage.sessions.find_refresh(token.id) == (token, session)
    assert storage.sessions.find_refresh("missing") is None


def test_rotate_succeeds_once_per_token(storage: Storage) -> None:
    session = a_session(stored_user(storage))
    first = a_refresh_token(session)
    storage.sessions.start(session, first)
    second, third = a_refresh_token(session), a_refresh_token(session)
    assert storage.sessions.rotate(first.id, second, LATER)
    assert not storage.sessions.rotate(first.id, third, LATER)
    found = storage.sessions.find_refresh(first.id)
    assert found is not None
    assert found[0].used_at == LATER
    assert storage.sessions.find_refresh(third.id) is None


def test_concurrent_rotations_of_one_token_have_one_winner(storage: Storage) -> None:
    session = a_session(stored_user(storage))
    token = a_refresh_token(session)
    storage.sessions.start(session, token)
    replacements = [a_refresh_token(session) for _ in range(16)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda r: storage.sessions.rotate(token.id, r, LATER), replacements)
        )
    assert results.count(True) == 1


def test_a_revoked_session_rotates_nothing_and_is_inactive(storage: Storage) -> None:
    session = a_session(stored_user(storage))
    token = a_refresh_token(session)
    storage.sessions.start(session, token)
    assert storage.sessions.is_active(session.id, "jti-1", LATER)
    storage.sessions.revoke(session.id, LATER)
    assert not storage.sessions.is_active(session.id, "jti-1", LATER)
    assert not storage.sessions.rotate(token.id, a_refresh_token(session), LATER)


def test_revoke_all_ends_only_that_users_sessions(storage: Storage) -> None:
    alice, bob = stored_user(storage), stored_user(storage)
    mine = [a_session(alice) for _ in range(2)]
    theirs = a_session(bob)
    for session in [*mine, theirs]:
        storage.sessions.start(session, a_refresh_token(session))
    storage.sessions.revoke_all(alice.id, LATER)
    assert not any(storage.sessions.is_active(s.id, "j", LATER) for s in mine)
    assert storage.sessions.is_active(theirs.id, "j", LATER)


def test_a_sessions_client_address_and_last_use_read_back(storage: Storage) -> None:
    user = stored_user(storage)
    session = a_session(
        user,
        user_agent="Mozilla/5.0 (X11) Firefox/128.0",
        address="2001:db8::7",
        last_used_at=LATER,
    )
    token = a_refresh_token(session)
    storage.sessions.start(session, token)
    assert storage.sessions.find_refresh(token.id) == (token, session)
    assert storage.sessions.list_active(user.id) == [session]


def test_rotate_sets_the_sessions_last_use_and_a_refused_one_does_not(storage: Storage) -> None:
    session = a_session(stored_user(storage), user_agent="cli", address="10.0.0.1")
    first = a_refresh_token(session)
    storage.sessions.start(session, first)
    second = a_refresh_token(session)
    assert storage.sessions.rotate(first.id, second, LATER)
    found = storage.sessions.find_refresh(second.id)
    assert found is not None
    assert found[1] == replace(session, last_used_at=LATER)
    # A replay, then a rotation in a revoked session: neither is a use.
    assert not storage.sessions.rotate(first.id, a_refresh_token(session), LATER + STEP)
    storage.sessions.revoke(session.id, LATER + STEP)
    assert not storage.sessions.rotate(second.id, a_refresh_token(session), LATER + 2 * STEP)
    found = storage.sessions.find_refresh(second.id)
    assert found is not None
    assert found[1].last_used_at == LATER


def test_revoke_all_keeps_the_session_named(storage: Storage) -> None:
    alice, bob = stored_user(storage), stored_user(storage)
    current, *others = [a_session(alice) for _ in range(3)]
    theirs = a_session(bob)
    for session in [current, *others, theirs]:
        storage.sessions.start(session, a_refresh_token(session))
    storage.sessions.revoke_all(alice.id, LATER, keep=current.id)
    assert storage.sessions.is_active(current.id, "j", LATER)
    assert not any(storage.sessions.is_active(s.id, "j", LATER) for s in others)
    assert storage.sessions.is_active(theirs.id, "j", LATER)
    assert storage.sessions.list_active(alice.id) == [current]
    storage.sessions.revoke_all(alice.id, LATER, keep="unknown-session")
    assert storage.sessions.list_active(alice.id) == []
    assert storage.sessions.list_active(bob.id) == [theirs]


def test_list_active_is_the_live_sessions_most_recently_used_first(storage: Storage) -> None:
    alice, bob = stored_user(storage), stored_user(storage)
    oldest, middle, newest, revoked = (
        a_session(alice, created_at=NOW + n * STEP) for n in range(4)
    )
    tokens = {}
    for session in (oldest, middle, newest, revoked, a_session(bob)):
        tokens[session.id] = a_refresh_token(session)
        storage.sessions.start(session, tokens[session.id])
    storage.sessions.revoke(revoked.id, LATER)
    assert storage.sessions.list_active(alice.id) == [newest, middle, oldest]
    # A refresh makes the oldest the most recently used; one never refreshed counts as used
    # when it was created.
    assert storage.sessions.rotate(tokens[oldest.id].id, a_refresh_token(oldest), LATER)
    assert [s.id for s in storage.sessions.list_active(alice.id)] == [
        oldest.id,
        newest.id,
        middle.id,
    ]
    assert storage.sessions.list_active(alice.id)[0].last_used_at == LATER
    assert storage.sessions.list_active("unknown-user") == []


def test_a_revoked_access_token_is_inactive_with_or_without_a_session(storage: Storage) -> None:
    session = a_session(stored_user(storage))
    storage.sessions.start(session, a_refresh_token(session))
    storage.sessions.revoke_access_token("jti-1", LATER + timedelta(minutes=15), LATER)
    assert not storage.sessions.is_active(session.id, "jti-1", LATER)
    assert not storage.sessions.is_active(None, "jti-1", LATER)
    assert storage.sessions.is_active(None, "jti-2", LATER)
    assert not storage.sessions.is_active("unknown-session", "jti-2", LATER)


def test_update_user_sets_given_fields_and_bumps_the_version(storage: Storage) -> None:
    user = a_user(email="a@example.com", name="A")
    storage.users.add(user)
    changed = storage.users.update(
        user.id, UserChanges(name=None, role=Role.ADMIN), expected_version=1, at=LATER
    )
    assert (changed.name, changed.email, changed.role) == (None, "a@example.com", Role.ADMIN)
    assert (changed.version, changed.updated_at) == (2, LATER)
    with pytest.raises(PreconditionFailed):
        storage.users.update(user.id, UserChanges(name="B"), expected_version=1, at=LATER)
    with pytest.raises(NotFound):
        storage.users.update("missing", UserChanges(name="B"), expected_version=None, at=LATER)


def test_update_user_email_keeps_uniqueness(storage: Storage) -> None:
    alice, bob = a_user(email="a@example.com"), a_user(email="b@example.com")
    storage.users.add(alice)
    storage.users.add(bob)
    with pytest.raises(Conflict):
        storage.users.update(
            bob.id, UserChanges(email="A@example.com"), expected_version=None, at=LATER
        )
    storage.users.update(alice.id, UserChanges(email=None), expected_version=None, at=LATER)
    moved = storage.users.update(
        bob.id, UserChanges(email="a@example.com"), expected_version=None, at=LATER
    )
    assert moved.email == "a@example.com"
    assert storage.users.find_by_email("A@EXAMPLE.COM") == moved


def test_deleting_a_user_cascades_to_todos_and_sessions(storage: Storage) -> None:
    alice, bob = stored_user(storage), stored_user(storage)
    for user in (alice, bob):
        storage.todos.add(a_todo(user))
    session = a_session(alice)
    token = a_refresh_token(session)
    storage.sessions.start(session, token)
    storage.users.delete(alice.id)
    with pytest.raises(NotFound):
        storage.users.get(alice.id)
    assert storage.todos.list(alice.id, state=None, limit=10, cursor=None).items == []
    assert storage.sessions.find_refresh(token.id) is None
    assert not storage.sessions.is_active(session.id, "j", LATER)
    assert len(storage.todos.list(bob.id, state=None, limit=10, cursor=None).items) == 1
    with pytest.raises(NotFound):
        storage.users.delete(alice.id)


def test_rate_limit_takes_up_to_the_limit_within_a_window_and_restarts_after(
    storage: Storage,
) -> None:
    limits = storage.rate_limits
    assert limits.take("k", 2, 60, NOW) is None
    assert limits.take("k", 2, 60, NOW + timedelta(seconds=30)) is None
    # Full: nothing more is counted, and the answer says when the window started.
    assert limits.take("k", 2, 60, NOW + timedelta(seconds=59)) == NOW
    assert limits.take("k", 2, 60, NOW + timedelta(seconds=61)) is None
    assert limits.take("k", 2, 60, NOW + timedelta(seconds=62)) is None
    assert limits.take("k", 2, 60, NOW + timedelta(seconds=63)) == NOW + timedelta(seconds=61)
    limits.clear("k")
    assert limits.take("k", 1, 60, NOW + timedelta(seconds=64)) is None


def test_rate_limit_give_back_makes_room_for_one_more(storage: Storage) -> None:
    limits = storage.rate_limits
    assert limits.take("k", 1, 60, NOW) is None
    assert limits.take("k", 1, 60, NOW) == NOW
    limits.give_back("k")
    assert limits.take("k", 1, 60, NOW) is None
    limits.give_back("k")
    limits.give_back("k")  # never below nothing
    limits.give_back("absent")
    assert limits.take("k", 1, 60, NOW) is None
    assert limits.take("k", 1, 60, NOW) == NOW


def test_rate_limit_takes_from_many_threads_never_pass_the_limit(storage: Storage) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: storage.rate_limits.take("k", 25, 60, NOW), range(40)))
    assert answers.count(None) == 25
    assert answers.count(NOW) == 15
