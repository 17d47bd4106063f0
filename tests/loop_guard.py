"""A storage whose calls fail when they would block the event loop.

Every store call a request makes goes through the container's runner (nimbus.calls). One made
on the loop thread outside it (an async route that calls a service directly) would stall every
other request on a network store, and answer correctly in a test. Wrapped in this guard, such a
call raises instead: a store whose reads never wait may read on the loop, nothing may write
there, and a network store may do nothing there. The API tests run their app over it.
"""

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from nimbus.storage.base import Storage

STORES = (
    "users",
    "todos",
    "messages",
    "products",
    "credentials",
    "signing_keys",
    "sessions",
    "factors",
    "rate_limits",
    "audit",
)
READS = frozenset(
    {
        "get",
        "list",
        "find_by_username",
        "find_by_email",
        "find_by_external_subject",
        "other_admin_exists",
        "find_refresh",
        "is_active",
        "list_active",
    }
)


class BlockedTheLoop(AssertionError):
    pass


def _on_the_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Guarded:
    def __init__(self, store: object, name: str, allowed: frozenset[str]) -> None:
        self._store = store
        self._name = name
        self._allowed = allowed

    def __getattr__(self, method: str) -> Any:
        attribute = getattr(self._store, method)
        if method in self._allowed or not callable(attribute):
            return attribute
        return _refusing_on_the_loop(attribute, f"{self._name}.{method}")


def _refusing_on_the_loop(call: Callable[..., Any], name: str) -> Callable[..., Any]:
    @functools.wraps(call)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if _on_the_loop():
            raise BlockedTheLoop(f"{name} ran on the event loop")
        return call(*args, **kwargs)

    return guarded


def guard_the_loop(storage: Storage) -> Storage:
    """`storage`, with each store call refused on the event loop unless it may run there."""
    allowed = READS if storage.inline_reads else frozenset()
    for name in STORES:
        setattr(storage, name, _Guarded(getattr(storage, name), name, allowed))
    storage.ping = _refusing_on_the_loop(storage.ping, "ping")  # type: ignore[method-assign]
    return storage
