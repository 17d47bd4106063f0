"""The signing keys `nimbus keys rotate` adds, on every backend: stored once by kid, listed
oldest first, removed with the rest of the schema."""

from datetime import timedelta

import pytest

from nimbus.domain.errors import Conflict
from nimbus.storage.base import Storage
from tests.factories import NOW, a_signing_key


def test_no_key_is_stored_at_first(storage: Storage) -> None:
    assert storage.signing_keys.list() == []


def test_a_stored_key_reads_back_field_for_field(storage: Storage) -> None:
    key = a_signing_key(kid="Zm9vYmFyYmF6cXV4", sealed_key="v1." + "A" * 80)
    storage.signing_keys.add(key)
    assert storage.signing_keys.list() == [key]


def test_keys_list_oldest_first_and_at_one_time_by_kid(storage: Storage) -> None:
    newest = a_signing_key(created_at=NOW + timedelta(days=1))
    oldest = a_signing_key(created_at=NOW - timedelta(days=1))
    twins = [a_signing_key(kid=kid) for kid in ("kid-c", "kid-a", "kid-b")]
    for key in (newest, *twins, oldest):
        storage.signing_keys.add(key)
    assert [k.kid for k in storage.signing_keys.list()] == [
        oldest.kid, "kid-a", "kid-b", "kid-c", newest.kid
    ]  # fmt: skip


def test_a_kid_is_stored_once(storage: Storage) -> None:
    key = a_signing_key()
    storage.signing_keys.add(key)
    with pytest.raises(Conflict):
        storage.signing_keys.add(a_signing_key(kid=key.kid, created_at=NOW + timedelta(hours=1)))
    assert storage.signing_keys.list() == [key]


def test_keys_go_with_the_schema(storage: Storage) -> None:
    storage.signing_keys.add(a_signing_key())
    storage.drop_schema()  # `nimbus resources create --cleanup`
    storage.create_schema()
    assert storage.signing_keys.list() == []
