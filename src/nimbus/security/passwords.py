"""Password hashing: argon2id, with a bound on how many hashes run at once.

Each argon2 computation holds `memory_kib` of RAM for tens of milliseconds, so the number
running together is capped: a burst of logins queues instead of exhausting memory. They run
on a few threads of their own, not on whichever request thread asks: the C allocator keeps a
freed buffer in the arena of the thread that used it, so 32 request threads taking turns
would each keep 19 MiB (measured: 360 MiB after 32 concurrent logins, 94 MiB this way).

And the buffers are mapped for each hash and unmapped after it, never kept in the heap: glibc
raises its mmap threshold to the size of the first large block freed, so from the second hash
on, each 19 MiB buffer came from the heap, which other allocations then split, and the heap
grew for as long as the process served (a mixed soak: about 2 MiB a minute, without end).
Fresh pages cost each hash about 4 ms more (17 ms to 21 ms, measured side by side).
"""

import functools
import secrets
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from nimbus import metrics

T = TypeVar("T")

# OWASP's minimum for argon2id: m=19 MiB, t=2, p=1.
DEFAULT_MEMORY_KIB = 19 * 1024
DEFAULT_TIME_COST = 2
DEFAULT_PARALLELISM = 1


class PasswordHasher:
    def __init__(
        self,
        *,
        max_concurrent: int,
        memory_kib: int = DEFAULT_MEMORY_KIB,
        time_cost: int = DEFAULT_TIME_COST,
        parallelism: int = DEFAULT_PARALLELISM,
    ) -> None:
        self._argon2 = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        # Threads start on first use, so this costs nothing at start-up (a Lambda cold start).
        self._workers = ThreadPoolExecutor(
            max_concurrent, thread_name_prefix="argon2", initializer=_map_large_buffers
        )
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()

    def hash(self, password: str) -> str:
        return self._run(self._argon2.hash, password)

    def verify(self, password_hash: str, password: str) -> bool:
        return self._run(self._verify, password_hash, password)

    def _run(self, work: Callable[..., T], *args: str) -> T:
        """`work(*args)` on a hashing thread, counting how long it waited for one."""
        submitted = time.perf_counter()

        def timed() -> T:
            metrics.hash_wait(time.perf_counter() - submitted)
            return work(*args)

        return self._workers.submit(timed).result()

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_dummy(self, password: str) -> None:
        """Spend what a real verification costs, so unknown users cannot be told apart."""
        self.verify(self._dummy(), password)

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def _dummy(self) -> str:
        # Made on first use rather than at start-up: start-up time is Lambda cold start.
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = self.hash(secrets.token_urlsafe(16))
            return self._dummy_hash


# Below argon2's smallest buffer (OWASP's 19 MiB), above what a request allocates at once.
MMAP_THRESHOLD = 4 * 1024 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's malloc.h


@functools.cache
def _map_large_buffers() -> None:
    """Fix glibc's mmap threshold (which also stops it moving), once per process."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes  # here: only a process that hashes needs it

    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
