"""Rate limits: fixed windows counted in the store, so every worker and replica shares them.

An attempt is reserved before the work it guards (a password hash, a write) runs, so however
many requests arrive at once, no more than the limit get through; a caller gives back a
reservation that turned out not to count (a successful login is no failure).
"""

import math
from datetime import datetime, timedelta

from nimbus.domain.errors import RateLimited
from nimbus.services.clock import Clock, utc_now
from nimbus.storage.base import RateLimitStore
from nimbus.values import frozen

# The subject for a client whose address is not known (no peer address in the request).
UNKNOWN_ADDRESS = "unknown"


@frozen
class Limit:
    """At most `count` events per `window_seconds` for each subject; `name` keeps one kind of
    event apart from another in the store."""

    name: str
    count: int
    window_seconds: int

    def key(self, subject: str) -> str:
        return f"{self.name}:{subject}"


class Throttle:
    def __init__(self, store: RateLimitStore, clock: Clock = utc_now) -> None:
        self._store = store
        self._clock = clock

    def take(self, *limits: tuple[Limit, str]) -> tuple[str, ...]:
        """Reserve one event under each (limit, subject); their keys, in order. RateLimited,
        with nothing kept, if any of them is full."""
        now = self._clock()
        taken: list[str] = []
        for limit, subject in limits:
            key = limit.key(subject)
            started = self._store.take(key, limit.count, limit.window_seconds, now)
            if started is not None:
                for earlier in taken:
                    self._store.give_back(earlier)
                raise RateLimited(_retry_after(started, limit.window_seconds, now))
            taken.append(key)
        return tuple(taken)

    def give_back(self, key: str) -> None:
        self._store.give_back(key)

    def clear(self, key: str) -> None:
        self._store.clear(key)

    def once(self, name: str, token_id: str, window_seconds: int) -> bool:
        """Spend a single-use token's id: True the first time, False ever after (within the
        window, which must outlast the token). Two requests at the same moment get one True:
        the store counts the use atomically."""
        try:
            self.take((Limit(name, 1, window_seconds), token_id))
        except RateLimited:
            return False
        return True


def _retry_after(started: datetime, window_seconds: int, now: datetime) -> int:
    ends = started + timedelta(seconds=window_seconds)
    return max(1, math.ceil((ends - now).total_seconds()))
