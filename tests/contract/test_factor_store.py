import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from functools import partial

import pytest

from nimbus.domain.errors import Conflict, NotFound
from nimbus.domain.mfa import TotpFactor
from nimbus.domain.users import User
from nimbus.storage.base import Storage
from tests.contract.conftest import stored_user
from tests.factories import NOW, a_totp_factor, a_user

LATER = NOW + timedelta(minutes=1)
STEP = 59_000_000  # about where time steps of 30 s are now
CODES = [f"digest-{n}" for n in range(10)]


def confirmed_factor(storage: Storage, user: User, *, codes: list[str] = CODES) -> TotpFactor:
    factor = a_totp_factor(user)
    storage.factors.begin(factor)
    assert storage.factors.confirm(
        user.id, factor.sealed_secret, step=STEP, recovery_codes=codes, at=LATER
    )
    return replace(factor, confirmed_at=LATER, last_step=STEP, recovery_codes_left=len(codes))


def test_a_begun_factor_reads_back_pending(storage: Storage) -> None:
    user = stored_user(storage)
    assert storage.factors.get(user.id) is None
    factor = a_totp_factor(user)
    storage.factors.begin(factor)
    found = storage.factors.get(factor.user_id)
    assert found == factor
    assert found is not None
    assert not found.confirmed
    assert storage.factors.get(stored_user(storage).id) is None


def test_beginning_again_replaces_a_pending_factor(storage: Storage) -> None:
    user = stored_user(storage)
    first, second = a_totp_factor(user), a_totp_factor(user, created_at=LATER)
    storage.factors.begin(first)
    storage.factors.begin(second)
    assert storage.factors.get(user.id) == second
    # The first enrolment's secret confirms nothing now.
    assert not storage.factors.confirm(
        user.id, first.sealed_secret, step=STEP, recovery_codes=CODES, at=LATER
    )
    assert storage.factors.get(user.id) == second


def test_beginning_over_a_confirmed_factor_is_a_conflict(storage: Storage) -> None:
    user = stored_user(storage)
    confirmed = confirmed_factor(storage, user)
    with pytest.raises(Conflict):
        storage.factors.begin(a_totp_factor(user))
    assert storage.factors.get(user.id) == confirmed


def test_beginning_for_a_missing_user_is_not_found(storage: Storage) -> None:
    nobody = a_user()
    with pytest.raises(NotFound):
        storage.factors.begin(a_totp_factor(nobody))
    assert storage.factors.get(nobody.id) is None


def test_confirming_with_another_sealed_secret_confirms_nothing(storage: Storage) -> None:
    user = stored_user(storage)
    factor = a_totp_factor(user)
    storage.factors.begin(factor)
    assert not storage.factors.confirm(
        user.id, "sealed:other", step=STEP, recovery_codes=CODES, at=LATER
    )
    assert storage.factors.get(user.id) == factor
    assert not storage.factors.confirm(
        stored_user(storage).id, factor.sealed_secret, step=STEP, recovery_codes=CODES, at=LATER
    )


def test_confirming_stores_the_codes_and_the_step_once(storage: Storage) -> None:
    user = stored_user(storage)
    confirmed = confirmed_factor(storage, user)
    found = storage.factors.get(user.id)
    assert found == confirmed
    assert found is not None
    assert found.confirmed
    assert (found.confirmed_at, found.last_step, found.recovery_codes_left) == (
        LATER,
        STEP,
        len(CODES),
    )
    # Confirmed already: a second confirmation (a replayed request) changes nothing.
    assert not storage.factors.confirm(
        user.id, confirmed.sealed_secret, step=STEP + 5, recovery_codes=["x"], at=LATER
    )
    assert storage.factors.get(user.id) == confirmed


def test_use_step_accepts_only_a_later_step(storage: Storage) -> None:
    user = stored_user(storage)
    confirmed_factor(storage, user)
    assert not storage.factors.use_step(user.id, STEP)  # the confirming code, replayed
    assert not storage.factors.use_step(user.id, STEP - 1)
    assert storage.factors.use_step(user.id, STEP + 1)
    assert not storage.factors.use_step(user.id, STEP + 1)
    assert storage.factors.use_step(user.id, STEP + 3)
    assert not storage.factors.use_step(user.id, STEP + 2)
    found = storage.factors.get(user.id)
    assert found is not None
    assert found.last_step == STEP + 3


def test_use_step_refuses_a_pending_or_missing_factor(storage: Storage) -> None:
    user = stored_user(storage)
    storage.factors.begin(a_totp_factor(user))
    assert not storage.factors.use_step(user.id, STEP)
    assert not storage.factors.use_step(stored_user(storage).id, STEP)


def test_a_recovery_code_works_once(storage: Storage) -> None:
    user = stored_user(storage)
    confirmed_factor(storage, user)
    assert storage.factors.use_recovery_code(user.id, CODES[3])
    assert not storage.factors.use_recovery_code(user.id, CODES[3])
    assert not storage.factors.use_recovery_code(user.id, "digest-unknown")
    assert storage.factors.use_recovery_code(user.id, CODES[0])
    found = storage.factors.get(user.id)
    assert found is not None
    assert found.recovery_codes_left == len(CODES) - 2


def test_recovery_codes_are_each_users_own(storage: Storage) -> None:
    alice, bob = stored_user(storage), stored_user(storage)
    confirmed_factor(storage, alice)
    confirmed_factor(storage, bob, codes=["bob-1"])
    assert not storage.factors.use_recovery_code(bob.id, CODES[0])
    assert not storage.factors.use_recovery_code(alice.id, "bob-1")
    assert storage.factors.use_recovery_code(bob.id, "bob-1")
    assert storage.factors.use_recovery_code(alice.id, CODES[0])


def test_a_factor_confirmed_without_codes_has_none(storage: Storage) -> None:
    user = stored_user(storage)
    confirmed = confirmed_factor(storage, user, codes=[])
    assert storage.factors.get(user.id) == confirmed
    assert not storage.factors.use_recovery_code(user.id, CODES[0])


def _at_once(calls: list[Callable[[], bool]]) -> list[bool]:
    """The calls from as many threads, released together."""
    barrier = threading.Barrier(len(calls), timeout=30)

    def run(call: Callable[[], bool]) -> bool:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_two_requests_with_one_recovery_code_have_one_winner(storage: Storage) -> None:
    user = stored_user(storage)
    confirmed_factor(storage, user)
    for digest in CODES[:4]:  # a few rounds, so a lucky interleaving does not pass alone
        spend = partial(storage.factors.use_recovery_code, user.id, digest)
        assert sorted(_at_once([spend, spend])) == [False, True], digest
    found = storage.factors.get(user.id)
    assert found is not None
    assert found.recovery_codes_left == len(CODES) - 4


def test_two_requests_with_one_code_of_a_step_have_one_winner(storage: Storage) -> None:
    user = stored_user(storage)
    confirmed_factor(storage, user)
    for step in range(STEP + 1, STEP + 4):
        use = partial(storage.factors.use_step, user.id, step)
        assert sorted(_at_once([use, use])) == [False, True], step


def test_remove_takes_the_factor_and_its_codes(storage: Storage) -> None:
    user = stored_user(storage)
    confirmed_factor(storage, user)
    assert storage.factors.remove(user.id)
    assert storage.factors.get(user.id) is None
    assert not storage.factors.remove(user.id)
    assert not storage.factors.use_recovery_code(user.id, CODES[0])
    assert not storage.factors.use_step(user.id, STEP + 1)
    # Enrolling again starts without the old codes.
    factor = a_totp_factor(user)
    storage.factors.begin(factor)
    assert storage.factors.get(user.id) == factor
    assert storage.factors.confirm(
        user.id, factor.sealed_secret, step=STEP, recovery_codes=["new"], at=LATER
    )
    assert not storage.factors.use_recovery_code(user.id, CODES[0])
    assert storage.factors.use_recovery_code(user.id, "new")


def test_remove_of_a_pending_factor(storage: Storage) -> None:
    user = stored_user(storage)
    storage.factors.begin(a_totp_factor(user))
    assert storage.factors.remove(user.id)
    assert storage.factors.get(user.id) is None
    assert not storage.factors.remove(stored_user(storage).id)


def test_deleting_the_user_removes_its_factor(storage: Storage) -> None:
    user, other = stored_user(storage), stored_user(storage)
    confirmed_factor(storage, user)
    kept = confirmed_factor(storage, other)
    storage.users.delete(user.id)
    assert storage.factors.get(user.id) is None
    assert not storage.factors.use_recovery_code(user.id, CODES[0])
    assert storage.factors.get(other.id) == kept
