import threading
from typing import Any

import argon2

from nimbus.security.passwords import PasswordHasher


def test_hashes_are_argon2id_at_owasps_minimum() -> None:
    hasher = PasswordHasher(max_concurrent=1)
    params = argon2.extract_parameters(hasher.hash("a password"))
    assert params.type is argon2.Type.ID
    assert params.memory_cost >= 19 * 1024
    assert params.time_cost >= 2
    assert params.parallelism == 1


def test_verify_accepts_the_password_and_nothing_else() -> None:
    hasher = PasswordHasher(max_concurrent=1)
    stored = hasher.hash("a password")
    assert hasher.verify(stored, "a password")
    assert not hasher.verify(stored, "a passwordx")
    assert not hasher.verify("not a hash", "a password")
    assert hasher.hash("a password") != stored  # salted


def test_weaker_hashes_are_flagged_for_rehash() -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    hasher = PasswordHasher(max_concurrent=1)
    assert hasher.needs_rehash(weak)
    assert not hasher.needs_rehash(hasher.hash("pw"))


def test_the_dummy_check_runs_a_real_verification_with_the_same_parameters() -> None:
    # Equal cost by construction, not by timing: the dummy path runs argon2 on a hash made
    # with the very parameters real hashes use.
    hasher = PasswordHasher(max_concurrent=1)
    calls: list[str] = []
    real = hasher._argon2

    class Recording:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def verify(self, stored: str, password: str) -> bool:
            calls.append(stored)
            return real.verify(stored, password)

    hasher._argon2 = Recording()  # type: ignore[assignment]
    hasher.verify_dummy("anything")
    assert len(calls) == 1
    assert argon2.extract_parameters(calls[0]) == argon2.extract_parameters(hasher.hash("x"))


def test_no_more_hashes_run_at_once_than_allowed() -> None:
    hasher = PasswordHasher(max_concurrent=2)
    running = 0
    peak = 0
    lock = threading.Lock()
    real = hasher._argon2

    class Counting:
        def hash(self, password: str) -> str:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            try:
                return real.hash(password)
            finally:
                with lock:
                    running -= 1

    hasher._argon2 = Counting()  # type: ignore[assignment]
    threads = [threading.Thread(target=hasher.hash, args=(f"pw{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 2


def test_hashes_run_on_the_hashers_own_threads_only() -> None:
    """Memory stays bounded by the thread count: the allocator keeps freed argon2 buffers per
    thread, so hashing on every request thread would keep one buffer per request thread."""
    hasher = PasswordHasher(max_concurrent=2)
    threads: set[int] = set()
    real = hasher._argon2

    class Recording:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def verify(self, stored: str, password: str) -> bool:
            threads.add(threading.get_ident())
            return real.verify(stored, password)

    stored = hasher.hash("pw")
    hasher._argon2 = Recording()  # type: ignore[assignment]
    callers = [threading.Thread(target=hasher.verify, args=(stored, "pw")) for _ in range(12)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert 1 <= len(threads) <= 2
    assert not threads & {caller.ident for caller in callers}
