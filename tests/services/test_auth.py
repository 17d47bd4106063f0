"""AuthService's login, refresh and logout over the in-memory store: what each counts, grants
and ends."""

import pytest

from nimbus.domain.errors import InvalidCredentials, InvalidInput, RateLimited, Unauthenticated
from nimbus.domain.users import NO_PASSWORD, Role, User, UserChanges
from nimbus.security.passwords import PasswordHasher
from nimbus.services.auth import AuthService, TokenPair
from tests.factories import a_user
from tests.services.conftest import GRACE, LOGIN_LIMITS, Clock, CountingHasher
from tests.services.memory import MemoryStorage
from tests.support import PASSWORD


@pytest.fixture
def member(storage: MemoryStorage, hasher: CountingHasher) -> User:
    """The account these tests log in to, stored with its password hashed."""
    user = a_user(username="Alice", email="alice@example.com", password_hash=hasher.hash(PASSWORD))
    storage.users.add(user)
    return user


def _live(storage: MemoryStorage, pair: TokenPair, clock: Clock) -> bool:
    """Whether the session and access token of a pair are still good, as the store says."""
    claims = pair.access.claims
    return storage.sessions.is_active(claims["sid"], claims["jti"], clock())


# --- login -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Alice", " alice ", "ALICE@example.com"])
def test_a_username_or_email_as_typed_logs_in(
    auth: AuthService, storage: MemoryStorage, member: User, clock: Clock, name: str
) -> None:
    pair = auth.login(name=name, password=PASSWORD, client="10.0.0.1")
    assert pair.access.claims["sub"] == member.id
    assert pair.scopes == frozenset({"profile", "todos", "messages"})
    assert pair.device is not None
    assert _live(storage, pair, clock)
    assert storage.users.get(member.id).last_login == clock.now
    assert auth.authenticate(pair.access.token).user_id == member.id


@pytest.mark.usefixtures("member")
@pytest.mark.parametrize(("name", "password"), [("alice", "wrong"), ("nobody", PASSWORD)])
def test_a_wrong_password_and_an_unknown_account_fail_alike(
    auth: AuthService, name: str, password: str
) -> None:
    with pytest.raises(InvalidCredentials):
        auth.login(name=name, password=password, client="10.0.0.1")


def test_an_account_without_a_password_never_logs_in_with_one(
    auth: AuthService, storage: MemoryStorage
) -> None:
    storage.users.add(a_user(username="external", password_hash=NO_PASSWORD))
    with pytest.raises(InvalidCredentials):
        auth.login(name="external", password=NO_PASSWORD, client=None)


@pytest.mark.usefixtures("member")
def test_failures_are_limited_per_client_and_a_success_starts_the_count_again(
    auth: AuthService,
) -> None:
    for _ in range(LOGIN_LIMITS.per_client - 1):
        with pytest.raises(InvalidCredentials):
            auth.login(name="alice", password="wrong", client="10.0.0.1")
    auth.login(name="alice", password=PASSWORD, client="10.0.0.1")
    for _ in range(LOGIN_LIMITS.per_client):
        with pytest.raises(InvalidCredentials):
            auth.login(name="alice", password="wrong", client="10.0.0.1")
    with pytest.raises(RateLimited):
        auth.login(name="alice", password=PASSWORD, client="10.0.0.1")
    auth.login(name="alice", password=PASSWORD, client="10.0.0.2")


@pytest.mark.usefixtures("member")
def test_strangers_exhausting_the_account_leave_its_owners_device_its_own_allowance(
    auth: AuthService, clock: Clock
) -> None:
    device = auth.login(name="alice", password=PASSWORD, client="10.0.0.1").device
    for i in range(LOGIN_LIMITS.per_account):
        with pytest.raises(InvalidCredentials):
            auth.login(name="alice", password="guess", client=f"192.0.2.{i}")
    with pytest.raises(RateLimited) as limited:
        auth.login(name="alice", password=PASSWORD, client="10.0.0.1")
    assert limited.value.retry_after == LOGIN_LIMITS.window_seconds
    again = auth.login(name="alice", password=PASSWORD, client="10.0.0.1", device=device)
    assert again.device is not None
    assert again.device.partition(".")[0] == (device or "").partition(".")[0]
    clock.advance(seconds=LOGIN_LIMITS.window_seconds)
    auth.login(name="alice", password=PASSWORD, client="10.0.0.1")


def test_a_scope_beyond_the_role_is_refused_and_a_narrower_one_granted(
    auth: AuthService, storage: MemoryStorage, member: User
) -> None:
    with pytest.raises(InvalidInput) as refused:
        auth.login(name="alice", password=PASSWORD, client=None, scopes=frozenset({"admin"}))
    assert refused.value.code == "invalid_scope"
    pair = auth.login(name="alice", password=PASSWORD, client=None, scopes=frozenset({"todos"}))
    assert pair.scopes == frozenset({"todos"})
    assert pair.access.claims["scope"] == "todos"
    assert auth.refresh(pair.refresh_token).scopes == frozenset({"todos"})
    storage.users.update(member.id, _admin(), expected_version=None, at=member.updated_at)
    wide = auth.login(name="alice", password=PASSWORD, client=None)
    assert "admin" in wide.scopes


def _admin() -> UserChanges:
    return UserChanges(role=Role.ADMIN)


def test_a_hash_made_with_other_settings_is_replaced_at_login(
    auth: AuthService, storage: MemoryStorage
) -> None:
    other = PasswordHasher(max_concurrent=1, memory_kib=16, time_cost=1)
    user = a_user(username="old", password_hash=other.hash(PASSWORD))
    storage.users.add(user)
    auth.login(name="old", password=PASSWORD, client=None)
    upgraded = storage.users.get(user.id).password_hash
    assert upgraded != user.password_hash
    auth.login(name="old", password=PASSWORD, client=None)
    assert storage.users.get(user.id).password_hash == upgraded


# --- refresh and logout ------------------------------------------------------------------------


@pytest.mark.usefixtures("member")
def test_a_refresh_token_is_used_once_for_a_new_pair_in_the_same_session(
    auth: AuthService, storage: MemoryStorage, clock: Clock
) -> None:
    first = auth.login(name="alice", password=PASSWORD, client=None)
    clock.advance(seconds=1)
    second = auth.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.access.claims["sid"] == first.access.claims["sid"]
    assert second.access.claims["jti"] != first.access.claims["jti"]
    third = auth.refresh(second.refresh_token)
    assert _live(storage, third, clock)


@pytest.mark.usefixtures("member")
def test_a_second_use_within_the_grace_is_the_same_clients_and_gets_the_same_pair(
    auth: AuthService, storage: MemoryStorage, clock: Clock
) -> None:
    login = auth.login(name="alice", password=PASSWORD, client=None)
    first = auth.refresh(login.refresh_token)
    clock.advance(seconds=GRACE.total_seconds() - 1)
    again = auth.refresh(login.refresh_token)
    assert (again.refresh_token, again.access.token) == (first.refresh_token, first.access.token)
    assert _live(storage, again, clock)


@pytest.mark.usefixtures("member")
def test_a_reuse_after_the_grace_is_a_stolen_copy_and_ends_the_session(
    auth: AuthService, storage: MemoryStorage, clock: Clock
) -> None:
    login = auth.login(name="alice", password=PASSWORD, client=None)
    current = auth.refresh(login.refresh_token)
    clock.advance(seconds=GRACE.total_seconds() + 1)
    with pytest.raises(Unauthenticated, match="reused") as refused:
        auth.refresh(login.refresh_token)
    assert refused.value.code == "invalid_grant"
    assert not _live(storage, current, clock)
    with pytest.raises(Unauthenticated, match="ended"):
        auth.refresh(current.refresh_token)


@pytest.mark.usefixtures("member")
@pytest.mark.parametrize(
    "token", ["", "no-dot", ".secret", "id.", "0190b5c4-0000-7000-8000-000000000000.secret"]
)
def test_a_refresh_token_not_issued_here_is_refused(auth: AuthService, token: str) -> None:
    with pytest.raises(Unauthenticated, match="Invalid refresh token"):
        auth.refresh(token)


@pytest.mark.usefixtures("member")
def test_a_refresh_token_with_a_wrong_secret_or_past_its_time_is_refused(
    auth: AuthService, clock: Clock
) -> None:
    login = auth.login(name="alice", password=PASSWORD, client=None)
    token_id, _, secret = login.refresh_token.partition(".")
    with pytest.raises(Unauthenticated, match="Invalid refresh token"):
        auth.refresh(f"{token_id}.{secret[:-1]}x")
    clock.advance(days=30)
    with pytest.raises(Unauthenticated, match="expired"):
        auth.refresh(login.refresh_token)


def test_refreshes_are_limited_per_address(auth: AuthService) -> None:
    for _ in range(LOGIN_LIMITS.refreshes_per_address):
        with pytest.raises(Unauthenticated):
            auth.refresh("x.y", client="10.0.0.9")
    with pytest.raises(RateLimited):
        auth.refresh("x.y", client="10.0.0.9")
    with pytest.raises(Unauthenticated):
        auth.refresh("x.y", client="10.0.0.10")


@pytest.mark.usefixtures("member")
def test_logout_ends_the_session_and_its_access_token(
    auth: AuthService, storage: MemoryStorage, clock: Clock
) -> None:
    pair = auth.login(name="alice", password=PASSWORD, client=None)
    other = auth.login(name="alice", password=PASSWORD, client=None)
    auth.logout(auth.authenticate(pair.access.token))
    assert not _live(storage, pair, clock)
    with pytest.raises(Unauthenticated):
        auth.authenticate(pair.access.token)
    with pytest.raises(Unauthenticated, match="ended"):
        auth.refresh(pair.refresh_token)
    assert _live(storage, other, clock)
