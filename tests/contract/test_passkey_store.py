import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from nimbus.domain.errors import Conflict, NotFound
from nimbus.domain.passkeys import Passkey
from nimbus.domain.users import User
from nimbus.storage.base import Storage
from tests.contract.conftest import stored_user
from tests.factories import NOW, a_user

LATER = NOW + timedelta(minutes=1)


def a_passkey(user: User, *, created_at: datetime = NOW, **fields: object) -> Passkey:
    passkey = Passkey(
        credential_id=secrets.token_urlsafe(32),
        user_id=user.id,
        public_key=secrets.token_urlsafe(77),
        sign_count=0,
        transports=("internal", "hybrid"),
        name="Laptop",
        created_at=created_at,
        last_used_at=None,
    )
    return replace(passkey, **fields)  # type: ignore[arg-type]


def test_added_passkeys_read_back_by_id_and_by_user(storage: Storage) -> None:
    alice, bob = stored_user(storage), stored_user(storage)
    second = a_passkey(alice, created_at=LATER, name="Phone", transports=())
    first = a_passkey(alice, sign_count=7)
    bobs = a_passkey(bob)
    for passkey in (second, first, bobs):
        storage.passkeys.add(passkey)
    assert storage.passkeys.get(first.credential_id) == first
    assert storage.passkeys.get(second.credential_id) == second
    assert storage.passkeys.get("unknown") is None
    assert storage.passkeys.list_for(alice.id) == [first, second]
    assert storage.passkeys.list_for(bob.id) == [bobs]
    assert storage.passkeys.list_for(a_user().id) == []


def test_a_credential_id_is_registered_once_over_every_account(storage: Storage) -> None:
    alice, bob = stored_user(storage), stored_user(storage)
    passkey = a_passkey(alice)
    storage.passkeys.add(passkey)
    with pytest.raises(Conflict):
        storage.passkeys.add(replace(passkey, user_id=bob.id, name="Stolen"))
    with pytest.raises(Conflict):
        storage.passkeys.add(replace(passkey, name="Again"))
    assert storage.passkeys.get(passkey.credential_id) == passkey
    assert storage.passkeys.list_for(bob.id) == []


def test_adding_for_a_missing_user_is_not_found(storage: Storage) -> None:
    passkey = a_passkey(a_user())
    with pytest.raises(NotFound):
        storage.passkeys.add(passkey)
    assert storage.passkeys.get(passkey.credential_id) is None


def test_record_use_takes_only_a_greater_counter(storage: Storage) -> None:
    user = stored_user(storage)
    passkey = a_passkey(user, sign_count=5)
    storage.passkeys.add(passkey)
    assert storage.passkeys.record_use(passkey.credential_id, 6, LATER)
    assert storage.passkeys.get(passkey.credential_id) == replace(
        passkey, sign_count=6, last_used_at=LATER
    )
    assert not storage.passkeys.record_use(passkey.credential_id, 6, LATER + timedelta(1))
    assert not storage.passkeys.record_use(passkey.credential_id, 2, LATER + timedelta(1))
    assert not storage.passkeys.record_use(passkey.credential_id, 0, LATER + timedelta(1))
    assert storage.passkeys.get(passkey.credential_id) == replace(
        passkey, sign_count=6, last_used_at=LATER
    )
    assert not storage.passkeys.record_use("unknown", 9, LATER)


def test_an_authenticator_without_a_counter_stays_at_0(storage: Storage) -> None:
    user = stored_user(storage)
    passkey = a_passkey(user)
    storage.passkeys.add(passkey)
    assert storage.passkeys.record_use(passkey.credential_id, 0, LATER)
    assert storage.passkeys.record_use(passkey.credential_id, 0, LATER + timedelta(1))
    found = storage.passkeys.get(passkey.credential_id)
    assert found == replace(passkey, last_used_at=LATER + timedelta(1))


def test_two_uses_with_one_counter_have_one_winner(storage: Storage) -> None:
    user = stored_user(storage)
    passkey = a_passkey(user, sign_count=1)
    storage.passkeys.add(passkey)
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda _: storage.passkeys.record_use(passkey.credential_id, 2, LATER), "abcd")
        )
    assert results.count(True) == 1


def test_remove_takes_only_the_owners_passkey(storage: Storage) -> None:
    alice, bob = stored_user(storage), stored_user(storage)
    kept, gone = a_passkey(alice), a_passkey(alice, created_at=LATER)
    storage.passkeys.add(kept)
    storage.passkeys.add(gone)
    assert not storage.passkeys.remove(bob.id, gone.credential_id)
    assert storage.passkeys.get(gone.credential_id) == gone
    assert storage.passkeys.remove(alice.id, gone.credential_id)
    assert not storage.passkeys.remove(alice.id, gone.credential_id)
    assert storage.passkeys.get(gone.credential_id) is None
    assert storage.passkeys.list_for(alice.id) == [kept]


def test_deleting_the_user_removes_its_passkeys(storage: Storage) -> None:
    alice, bob = stored_user(storage), stored_user(storage)
    passkeys = [a_passkey(alice), a_passkey(alice, created_at=LATER)]
    for passkey in passkeys:
        storage.passkeys.add(passkey)
    bobs = a_passkey(bob)
    storage.passkeys.add(bobs)
    storage.users.delete(alice.id)
    for passkey in passkeys:
        assert storage.passkeys.get(passkey.credential_id) is None
    assert storage.passkeys.list_for(alice.id) == []
    assert storage.passkeys.list_for(bob.id) == [bobs]
