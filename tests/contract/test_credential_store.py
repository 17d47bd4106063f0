from datetime import timedelta

import pytest

from nimbus.domain.errors import Conflict, NotFound
from nimbus.storage.base import Storage
from tests.factories import NOW, a_credential

LATER = NOW + timedelta(minutes=5)


def test_a_stored_credential_reads_back_field_for_field(storage: Storage) -> None:
    credential = a_credential(name="Lagerverwaltung ✓")
    storage.credentials.add(credential)
    back = storage.credentials.get(credential.access_key_id)
    assert back == credential
    assert back is not None
    assert back.active


def test_an_unknown_access_key_is_none(storage: Storage) -> None:
    assert storage.credentials.get("NKNOSUCHKEY") is None


def test_an_access_key_id_is_stored_once(storage: Storage) -> None:
    credential = a_credential()
    storage.credentials.add(credential)
    with pytest.raises(Conflict):
        storage.credentials.add(a_credential(access_key_id=credential.access_key_id, name="x"))
    assert storage.credentials.get(credential.access_key_id) == credential


def test_list_is_every_credential_oldest_first(storage: Storage) -> None:
    assert storage.credentials.list() == []
    newest = a_credential(created_at=NOW + timedelta(days=1))
    oldest = a_credential(created_at=NOW - timedelta(days=1))
    middle = a_credential(created_at=NOW, revoked_at=LATER)
    for credential in (newest, oldest, middle):
        storage.credentials.add(credential)
    assert storage.credentials.list() == [oldest, middle, newest]


def test_credentials_made_at_the_same_time_list_by_access_key_id(storage: Storage) -> None:
    made = [a_credential(access_key_id=key) for key in ("NKC", "NKA", "NKB")]
    for credential in made:
        storage.credentials.add(credential)
    assert [c.access_key_id for c in storage.credentials.list()] == ["NKA", "NKB", "NKC"]


def test_revoke_marks_the_credential_revoked(storage: Storage) -> None:
    credential = a_credential()
    storage.credentials.add(credential)
    revoked = storage.credentials.revoke(credential.access_key_id, LATER)
    assert revoked.revoked_at == LATER
    assert not revoked.active
    assert (revoked.name, revoked.sealed_secret, revoked.created_at) == (
        credential.name,
        credential.sealed_secret,
        credential.created_at,
    )
    assert storage.credentials.get(credential.access_key_id) == revoked


def test_a_second_revoke_keeps_the_first_time(storage: Storage) -> None:
    credential = a_credential()
    storage.credentials.add(credential)
    storage.credentials.revoke(credential.access_key_id, LATER)
    again = storage.credentials.revoke(credential.access_key_id, LATER + timedelta(hours=1))
    assert again.revoked_at == LATER
    back = storage.credentials.get(credential.access_key_id)
    assert back is not None
    assert back.revoked_at == LATER


def test_a_credential_stored_revoked_stays_revoked_at_its_time(storage: Storage) -> None:
    credential = a_credential(revoked_at=NOW)
    storage.credentials.add(credential)
    assert storage.credentials.get(credential.access_key_id) == credential
    assert storage.credentials.revoke(credential.access_key_id, LATER) == credential


def test_revoking_a_missing_credential_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFound):
        storage.credentials.revoke("NKNOSUCHKEY", LATER)
    assert storage.credentials.get("NKNOSUCHKEY") is None
