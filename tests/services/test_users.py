"""UserService's rules: who may sign up, see and change what, and the last administrator."""

from collections.abc import Callable

import pytest

from nimbus.domain.errors import Conflict, NotFound, PermissionDenied, RateLimited
from nimbus.domain.principals import Principal
from nimbus.domain.users import Role, User
from nimbus.services.audit import AuditTrail
from nimbus.services.throttle import Throttle
from nimbus.services.users import PASSWORD_CHECKS, UserService
from tests.factories import a_principal, a_refresh_token, a_session
from tests.services.conftest import SIGN_UPS, Clock, CountingHasher
from tests.services.memory import MemoryStorage
from tests.support import PASSWORD


def _admin(users: UserService, username: str = "root") -> tuple[User, Principal]:
    user = users.create(username=username, password=PASSWORD, role=Role.ADMIN)
    return user, a_principal(user)


def _member(users: UserService, username: str, email: str | None = None) -> tuple[User, Principal]:
    user = users.create(username=username, password=PASSWORD, email=email)
    return user, a_principal(user)


# --- sign-up -----------------------------------------------------------------------------------


def test_a_sign_up_makes_a_user_with_a_hashed_password(
    users: UserService, clock: Clock, hasher: CountingHasher
) -> None:
    user = users.sign_up(client="10.0.0.1", username="alice", password=PASSWORD, name="Alice")
    assert (user.username, user.name, user.email, user.role) == ("alice", "Alice", None, Role.USER)
    assert (user.created_at, user.version, user.last_login) == (clock.now, 1, None)
    assert user.password_hash != PASSWORD
    assert hasher.verify(user.password_hash, PASSWORD)
    assert users.check_password("ALICE", PASSWORD)
    assert not users.check_password("alice", "wrong password")


def test_closed_sign_up_is_refused_before_anything_is_counted(
    storage: MemoryStorage,
    hasher: CountingHasher,
    throttle: Throttle,
    clock: Clock,
    audit: AuditTrail,
) -> None:
    closed = UserService(
        storage.users, storage.sessions, hasher, audit=audit, throttle=throttle,
        signup_limit=SIGN_UPS, signup_open=False,
    )  # fmt: skip
    with pytest.raises(PermissionDenied) as refused:
        closed.sign_up(client="10.0.0.1", username="alice", password=PASSWORD)
    assert refused.value.code == "signup_disabled"
    with pytest.raises(PermissionDenied):
        closed.sign_up_with_email(client="10.0.0.1", email="a@example.com", password=PASSWORD)
    # Nothing was counted: a limit of one still has room.
    assert storage.rate_limits.take(SIGN_UPS.key("10.0.0.1"), 1, 60, clock()) is None
    # Operators still make accounts (the command line), whatever sign-up allows.
    assert closed.create(username="alice", password=PASSWORD).username == "alice"


def test_sign_ups_are_limited_per_address_and_an_unknown_one_counts_as_one(
    users: UserService, clock: Clock
) -> None:
    for i in range(3):
        users.sign_up(client="10.0.0.1", username=f"a{i}", password=PASSWORD)
    with pytest.raises(RateLimited) as limited:
        users.sign_up(client="10.0.0.1", username="a3", password=PASSWORD)
    assert limited.value.retry_after == 5 * 60
    users.sign_up(client="10.0.0.2", username="b0", password=PASSWORD)
    for i in range(3):
        users.sign_up(client=None, username=f"c{i}", password=PASSWORD)
    with pytest.raises(RateLimited):
        users.sign_up(client=None, username="c3", password=PASSWORD)
    clock.advance(minutes=5)
    users.sign_up(client="10.0.0.1", username="a3", password=PASSWORD)


@pytest.mark.parametrize(
    ("username", "email", "message"),
    [
        ("ALICE", None, "username"),
        ("alice@example.com", None, "username"),  # logs in to alice as an email would
        ("carol", "Alice@Example.com", "email"),
        ("carol", "alice", "email"),  # an email equal to a username names that account too
    ],
)
def test_a_name_that_would_name_another_account_is_refused_before_any_hash(
    users: UserService, hasher: CountingHasher, username: str, email: str | None, message: str
) -> None:
    users.create(username="alice", password=PASSWORD, email="alice@example.com")
    hashes = hasher.hashes
    with pytest.raises(Conflict, match=message):
        users.sign_up(client="10.0.0.1", username=username, password=PASSWORD, email=email)
    assert hasher.hashes == hashes


def test_a_sign_up_by_email_takes_its_username_from_the_email(users: UserService) -> None:
    user = users.sign_up_with_email(
        client=None, email="Ann.Lee+news@example.com", password=PASSWORD
    )
    assert (user.username, user.email) == ("ann.lee+news", "Ann.Lee+news@example.com")


def test_a_sign_up_by_email_whose_name_is_taken_gets_a_suffix(users: UserService) -> None:
    users.create(username="ann", password=PASSWORD)
    user = users.sign_up_with_email(client=None, email="ann@example.com", password=PASSWORD)
    base, _, suffix = user.username.partition("-")
    assert (base, len(suffix)) == ("ann", 6)


def test_a_sign_up_by_a_registered_email_is_refused_at_once(
    users: UserService, hasher: CountingHasher
) -> None:
    users.create(username="someone", password=PASSWORD, email="ann@example.com")
    hashes = hasher.hashes
    with pytest.raises(Conflict, match="email"):
        users.sign_up_with_email(client=None, email="ANN@example.com", password=PASSWORD)
    assert hasher.hashes == hashes


# --- who sees what -----------------------------------------------------------------------------


def test_a_user_sees_itself_and_no_one_else_an_administrator_everyone(
    users: UserService,
) -> None:
    alice, as_alice = _member(users, "alice")
    bob, _ = _member(users, "bob")
    _, as_root = _admin(users)
    assert users.get(as_alice, alice.id) == alice
    with pytest.raises(PermissionDenied):
        users.get(as_alice, bob.id)
    # Refused the same whether the id exists or not: the answer tells nothing.
    with pytest.raises(PermissionDenied):
        users.get(as_alice, "no-such-id")
    assert users.get(as_root, bob.id) == bob
    with pytest.raises(NotFound):
        users.get(as_root, "no-such-id")
    with pytest.raises(PermissionDenied):
        users.list(as_alice, limit=10, cursor=None)
    assert {u.username for u in users.list(as_root, limit=10, cursor=None).items} == {
        "alice",
        "bob",
        "root",
    }


def test_an_account_is_found_by_email_only_by_its_owner_or_an_administrator(
    users: UserService,
) -> None:
    alice, as_alice = _member(users, "alice", email="alice@example.com")
    bob, _ = _member(users, "bob", email="bob@example.com")
    _, as_root = _admin(users)
    assert users.id_for_email(as_alice, " ALICE@example.com ") == alice.id
    for other in ("bob@example.com", "nobody@example.com"):
        with pytest.raises(PermissionDenied):
            users.id_for_email(as_alice, other)
    assert users.id_for_email(as_root, "bob@example.com") == bob.id
    with pytest.raises(NotFound):
        users.id_for_email(as_root, "nobody@example.com")
    assert users.get_by_username("Bob") == bob
    with pytest.raises(NotFound):
        users.get_by_username("nobody")


# --- changes -----------------------------------------------------------------------------------


def test_only_an_administrator_changes_a_role(users: UserService) -> None:
    alice, as_alice = _member(users, "alice")
    _, as_root = _admin(users)
    with pytest.raises(PermissionDenied) as refused:
        users.update(as_alice, alice.id, role=Role.ADMIN)
    assert refused.value.code == "role_change_forbidden"
    promoted = users.update(as_root, alice.id, role=Role.ADMIN)
    assert (promoted.role, promoted.version) == (Role.ADMIN, 2)


def test_your_own_password_or_email_needs_the_current_password(users: UserService) -> None:
    alice, as_alice = _member(users, "alice", email="alice@example.com")
    for change in ({"password": "a new password"}, {"email": "new@example.com"}):
        with pytest.raises(PermissionDenied) as refused:
            users.update(as_alice, alice.id, **change)  # type: ignore[arg-type]
        assert refused.value.code == "current_password_required"
        with pytest.raises(PermissionDenied) as refused:
            users.update(as_alice, alice.id, current_password="wrong", **change)  # type: ignore[arg-type]
        assert refused.value.code == "current_password_invalid"
    # The same email again, or a name, is no change that needs it.
    users.update(as_alice, alice.id, email="alice@example.com", name="Alice")
    changed = users.update(as_alice, alice.id, password="a new password", current_password=PASSWORD)
    assert users.check_password("alice", "a new password")
    assert changed.version == 3


def test_an_administrator_changes_anothers_password_without_it(users: UserService) -> None:
    alice, _ = _member(users, "alice")
    _, as_root = _admin(users)
    users.update(as_root, alice.id, password="set by root")
    assert users.check_password("alice", "set by root")


def test_wrong_current_passwords_are_limited_and_a_right_one_clears_the_count(
    users: UserService,
) -> None:
    alice, as_alice = _member(users, "alice")
    for _ in range(PASSWORD_CHECKS.count - 1):
        with pytest.raises(PermissionDenied):
            users.update(as_alice, alice.id, password="guess", current_password="wrong")
    users.update(as_alice, alice.id, name="A", password="next password", current_password=PASSWORD)
    for _ in range(PASSWORD_CHECKS.count):
        with pytest.raises(PermissionDenied):
            users.update(as_alice, alice.id, password="guess", current_password="wrong")
    with pytest.raises(RateLimited):
        users.update(as_alice, alice.id, password="guess", current_password="next password")


def test_a_new_password_or_role_ends_the_accounts_sessions(
    users: UserService, storage: MemoryStorage
) -> None:
    alice, as_alice = _member(users, "alice")
    _, as_root = _admin(users)
    sessions = storage.sessions
    changes: list[Callable[[], User]] = [
        lambda: users.update(as_root, alice.id, password="another one"),
        lambda: users.update(as_root, alice.id, role=Role.USER),
    ]
    for change in changes:
        session = a_session(alice)
        sessions.start(session, a_refresh_token(session))
        change()
        assert not sessions.is_active(session.id, "jti", session.created_at)
    session = a_session(alice)
    sessions.start(session, a_refresh_token(session))
    users.update(as_alice, alice.id, name="Only a name")
    assert sessions.is_active(session.id, "jti", session.created_at)


def test_an_email_taken_by_another_account_or_its_username_is_refused(
    users: UserService,
) -> None:
    alice, as_alice = _member(users, "alice", email="alice@example.com")
    _member(users, "bob", email="bob@example.com")
    for taken in ("BOB@example.com", "bob"):
        with pytest.raises(Conflict, match="email"):
            users.update(as_alice, alice.id, email=taken, current_password=PASSWORD)
    assert users.get(as_alice, alice.id).email == "alice@example.com"


# --- the last administrator --------------------------------------------------------------------


def test_the_last_administrator_can_be_neither_demoted_nor_removed(users: UserService) -> None:
    root, as_root = _admin(users)
    for attempt in (
        lambda: users.update(as_root, root.id, role=Role.USER),
        lambda: users.delete(as_root, root.id, current_password=PASSWORD),
    ):
        with pytest.raises(Conflict) as refused:
            attempt()
        assert refused.value.code == "last_admin"
    other, as_other = _admin(users, "second")
    assert users.update(as_root, root.id, role=Role.USER).role is Role.USER
    with pytest.raises(Conflict):
        users.delete(as_other, other.id, current_password=PASSWORD)


def test_a_user_removes_itself_and_what_it_owns(users: UserService, storage: MemoryStorage) -> None:
    alice, as_alice = _member(users, "alice")
    bob, _ = _member(users, "bob")
    session = a_session(alice)
    storage.sessions.start(session, a_refresh_token(session))
    with pytest.raises(PermissionDenied):
        users.delete(as_alice, bob.id)
    with pytest.raises(PermissionDenied) as refused:
        users.delete(as_alice, alice.id)  # your own account needs your password
    assert refused.value.code == "current_password_required"
    users.delete(as_alice, alice.id, current_password=PASSWORD)
    with pytest.raises(NotFound):
        storage.users.get(alice.id)
    assert not storage.sessions.is_active(session.id, "jti", session.created_at)
    assert users.list_all(limit=10, cursor=None).items == [bob]
