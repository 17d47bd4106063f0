"""Which service methods only read the store (nimbus.calls runs them on the event loop when
the store's reads never wait)."""

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

_READ_ONLY = "_nimbus_read_only"


def read_only(method: F) -> F:
    """Mark a method that only reads the store: no write, no lock, no password hash."""
    setattr(method, _READ_ONLY, True)
    return method


def is_read_only(call: Callable[..., object]) -> bool:
    return getattr(call, _READ_ONLY, False) is True  # a bound method reads its function's
