"""The services on their own, over the in-memory store: no server, no database, no HTTP."""

from datetime import UTC, datetime, timedelta

import pytest

from nimbus.security.authenticator import Authenticator
from nimbus.security.devices import DeviceCookies
from nimbus.security.macs import Mac
from nimbus.security.passwords import PasswordHasher
from nimbus.security.tokens import AccessTokens
from nimbus.services.audit import AuditTrail
from nimbus.services.auth import AuthService, LoginLimits
from nimbus.services.throttle import Limit, Throttle
from nimbus.services.users import UserService
from tests.services.memory import MemoryStorage

KEY = b"s" * 32  # the services' signing key: tokens, device cookies, sealed secrets
GRACE = timedelta(seconds=10)
LOGIN_LIMITS = LoginLimits(per_client=3, per_account=5, per_address=8, refreshes_per_address=4)
SIGN_UPS = Limit("signup:address", 3, 5 * 60)


class Clock:
    """A clock a test moves by hand; it starts at the real time, so tokens verify."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class CountingHasher(PasswordHasher):
    """argon2 at its cheapest, counting the hashes it makes."""

    def __init__(self) -> None:
        super().__init__(max_concurrent=1, memory_kib=8, time_cost=1)
        self.hashes = 0

    def hash(self, password: str) -> str:
        self.hashes += 1
        return super().hash(password)


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def audit(storage: MemoryStorage, clock: Clock) -> AuditTrail:
    return AuditTrail(storage.audit, retention=timedelta(days=90), clock=clock)


@pytest.fixture
def throttle(storage: MemoryStorage, clock: Clock) -> Throttle:
    return Throttle(storage.rate_limits, clock)


@pytest.fixture
def login_limits() -> LoginLimits:
    """The login limits `auth` is built with; a test module may override it."""
    return LOGIN_LIMITS


@pytest.fixture
def signup_limit() -> Limit:
    """The sign-up limit `users` is built with; a test module may override it."""
    return SIGN_UPS


@pytest.fixture
def users(
    storage: MemoryStorage,
    hasher: CountingHasher,
    throttle: Throttle,
    clock: Clock,
    audit: AuditTrail,
    signup_limit: Limit,
) -> UserService:
    return UserService(
        storage.users,
        storage.sessions,
        hasher,
        audit=audit,
        throttle=throttle,
        signup_limit=signup_limit,
        clock=clock,
    )


@pytest.fixture
def auth(
    storage: MemoryStorage,
    throttle: Throttle,
    hasher: CountingHasher,
    clock: Clock,
    audit: AuditTrail,
    login_limits: LoginLimits,
) -> AuthService:
    tokens = AccessTokens(KEY, issuer="nimbus", audience="nimbus", ttl=timedelta(minutes=15))
    return AuthService(
        users=storage.users,
        sessions=storage.sessions,
        throttle=throttle,
        hasher=hasher,
        tokens=tokens,
        authenticator=Authenticator(tokens),
        devices=DeviceCookies(Mac(KEY, purpose="devices")),
        rotation=Mac(KEY, purpose="rotation"),
        audit=audit,
        refresh_ttl=timedelta(days=30),
        reuse_grace=GRACE,
        limits=login_limits,
        clock=clock,
    )
