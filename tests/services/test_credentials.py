"""CredentialService: issuing service credentials, and which signed requests it believes."""

import pytest

from nimbus.domain.credentials import ServiceCredential
from nimbus.domain.errors import InvalidInput, NotFound, SignatureRejected
from nimbus.security import sigv4
from nimbus.security.secretbox import SecretBox
from nimbus.services.audit import AuditTrail
from nimbus.services.credentials import ACCESS_KEY_PATTERN, SEALING_PURPOSE, CredentialService
from tests.services.conftest import Clock
from tests.services.memory import MemoryCredentialStore, MemoryStorage

REGION = "eu-central-1"
KEY = b"k" * 32


class CountingStore(MemoryCredentialStore):
    """The in-memory credentials, counting the look-ups a signature check makes."""

    reads = 0

    def get(self, access_key_id: str) -> ServiceCredential | None:
        self.reads += 1
        return super().get(access_key_id)


@pytest.fixture
def store(storage: MemoryStorage) -> CountingStore:
    return CountingStore(storage._data)


@pytest.fixture
def credentials(store: CountingStore, clock: Clock, audit: AuditTrail) -> CredentialService:
    return CredentialService(
        store, SecretBox(KEY, purpose=SEALING_PURPOSE), audit=audit, region=REGION, clock=clock
    )


def signed(
    clock: Clock, access_key_id: str, secret: str, *, region: str = REGION
) -> sigv4.SignedRequest:
    """GET /products as a calling service signs it, at the clock's time."""
    timestamp = clock.now.strftime("%Y%m%dT%H%M%SZ")
    headers = [("host", "api.example.com"), ("x-amz-date", timestamp)]
    unsigned = sigv4.SignedRequest("GET", "/products", "limit=5", headers, b"")
    authorization = sigv4.authorization(
        unsigned, access_key_id=access_key_id, secret=secret, region=region,
        service=sigv4.SERVICE, timestamp=timestamp,
    )  # fmt: skip
    return sigv4.SignedRequest(
        "GET", "/products", "limit=5", [*headers, ("authorization", authorization)], b""
    )


@pytest.fixture
def issued(credentials: CredentialService) -> tuple[ServiceCredential, str]:
    return credentials.create("inventory-reader")


def test_a_new_credential_keeps_its_secret_sealed(
    credentials: CredentialService, store: CountingStore, clock: Clock
) -> None:
    credential, secret = credentials.create("billing: nightly job")
    assert ACCESS_KEY_PATTERN.fullmatch(credential.access_key_id)
    assert (credential.name, credential.created_at, credential.active) == (
        "billing: nightly job",
        clock.now,
        True,
    )
    assert len(secret) >= 40
    kept = store.get(credential.access_key_id)
    assert kept == credential
    assert secret not in kept.sealed_secret


@pytest.mark.parametrize("name", ["", " padded", "padded ", "x" * 101, "tab\there", "semi;colon"])
def test_a_name_outside_the_rules_is_refused(credentials: CredentialService, name: str) -> None:
    with pytest.raises(InvalidInput):
        credentials.create(name)
    assert credentials.list() == []


def test_credentials_list_oldest_first_and_revoke_once(
    credentials: CredentialService, clock: Clock
) -> None:
    first, _ = credentials.create("first")
    clock.advance(seconds=1)
    credentials.create("second")
    assert [c.name for c in credentials.list()] == ["first", "second"]
    clock.advance(minutes=1)
    revoked = credentials.revoke(first.access_key_id)
    assert revoked.revoked_at == clock.now
    clock.advance(minutes=1)
    assert credentials.revoke(first.access_key_id).revoked_at == revoked.revoked_at
    with pytest.raises(NotFound):
        credentials.revoke("NIMBAAAAAAAAAAAAAAAA")
    assert [c.active for c in credentials.list()] == [False, True]


def test_a_request_signed_with_an_issued_secret_names_its_caller(
    credentials: CredentialService, issued: tuple[ServiceCredential, str], clock: Clock
) -> None:
    credential, secret = issued
    caller = credentials.authenticate(signed(clock, credential.access_key_id, secret))
    assert (caller.access_key_id, caller.name) == (credential.access_key_id, "inventory-reader")


def test_a_wrong_secret_is_a_mismatch(
    credentials: CredentialService, issued: tuple[ServiceCredential, str], clock: Clock
) -> None:
    credential, secret = issued
    with pytest.raises(SignatureRejected) as rejected:
        credentials.authenticate(signed(clock, credential.access_key_id, secret + "x"))
    assert rejected.value.code == "signature_mismatch"


def test_a_revoked_credential_signs_nothing(
    credentials: CredentialService, issued: tuple[ServiceCredential, str], clock: Clock
) -> None:
    credential, secret = issued
    credentials.revoke(credential.access_key_id)
    with pytest.raises(SignatureRejected) as rejected:
        credentials.authenticate(signed(clock, credential.access_key_id, secret))
    assert rejected.value.code == "access_key_revoked"


@pytest.mark.parametrize(("key_id", "reads"), [("NIMBAAAAAAAAAAAAAAAA", 1), ("AKIAEXAMPLE", 0)])
def test_a_key_not_issued_here_is_refused_and_a_foreign_shape_costs_no_read(
    credentials: CredentialService, store: CountingStore, clock: Clock, key_id: str, reads: int
) -> None:
    with pytest.raises(SignatureRejected) as rejected:
        credentials.authenticate(signed(clock, key_id, "secret"))
    assert rejected.value.code == "invalid_access_key"
    assert store.reads == reads


def test_a_stale_or_misdirected_signature_is_refused_before_any_read(
    credentials: CredentialService,
    issued: tuple[ServiceCredential, str],
    store: CountingStore,
    clock: Clock,
) -> None:
    credential, secret = issued
    with pytest.raises(SignatureRejected) as rejected:
        credentials.authenticate(signed(clock, credential.access_key_id, secret, region="x-1"))
    assert rejected.value.code == "invalid_credential_scope"
    stale = signed(clock, credential.access_key_id, secret)
    clock.advance(minutes=6)
    with pytest.raises(SignatureRejected) as rejected:
        credentials.authenticate(stale)
    assert rejected.value.code == "signature_expired"
    assert store.reads == 0


def test_a_secret_sealed_under_another_key_is_refused_as_unusable(
    store: CountingStore, issued: tuple[ServiceCredential, str], clock: Clock, audit: AuditTrail
) -> None:
    credential, secret = issued
    rekeyed = CredentialService(
        store,
        SecretBox(b"another key", purpose=SEALING_PURPOSE),
        audit=audit,
        region=REGION,
        clock=clock,
    )
    with pytest.raises(SignatureRejected) as rejected:
        rekeyed.authenticate(signed(clock, credential.access_key_id, secret))
    assert rejected.value.code == "invalid_access_key"
    assert "create a new one" in rejected.value.message
