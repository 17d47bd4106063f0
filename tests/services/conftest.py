"""The services on their own, over the in-memory store: no server, no database, no HTTP."""

from datetime import UTC, datetime, timedelta

import pytest

from nimbus.security.passwords import PasswordHasher
from nimbus.services.audit import AuditTrail
from nimbus.services.throttle import Throttle
from tests.services.memory import MemoryStorage


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
