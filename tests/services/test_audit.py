"""The audit trail on its own and as the services record it, over the in-memory store: every
event kind with its actor, subject, client, request id and detail; a store that refuses an
event, which fails nothing; and pruning past the retention."""

import logging
from datetime import timedelta
from typing import Any

import pytest

from nimbus import metrics
from nimbus.domain.audit import AuditEvent, AuditKind
from nimbus.domain.errors import InvalidCredentials, RateLimited, Unauthenticated, Unavailable
from nimbus.domain.users import Role
from nimbus.logs import REQUEST_ID
from nimbus.security.secretbox import SecretBox
from nimbus.services.audit import PRUNE_BATCH, AuditTrail
from nimbus.services.auth import AuthService, LoginLimits
from nimbus.services.credentials import SEALING_PURPOSE, CredentialService
from nimbus.services.throttle import Limit
from nimbus.services.users import UserService
from tests.factories import a_principal
from tests.services.conftest import KEY, Clock
from tests.services.memory import MemoryStorage
from tests.support import PASSWORD, CountingSink

RETENTION = timedelta(days=90)


@pytest.fixture
def sink() -> Any:
    counting = CountingSink()
    before = metrics.sink()
    metrics.use(counting)
    yield counting
    metrics.use(before)


@pytest.fixture
def login_limits() -> LoginLimits:
    return LoginLimits(per_client=2, per_account=5, per_address=8)


@pytest.fixture
def signup_limit() -> Limit:
    return Limit("signup:address", 10, 300)


def trail(audit: AuditTrail, **filters: Any) -> list[AuditEvent]:
    """Every event, oldest first (the order they happened in)."""
    return list(reversed(audit.list_all(limit=100, **filters).items))


def test_an_event_carries_the_time_the_request_id_and_the_client(
    audit: AuditTrail, storage: MemoryStorage, clock: Clock
) -> None:
    token = REQUEST_ID.set("req-7")
    try:
        audit.record(AuditKind.LOGOUT, actor="u1", subject="u1", client="10.0.0.1")
    finally:
        REQUEST_ID.reset(token)
    audit.record(AuditKind.USER_CREATED, subject="u2", detail={"role": "user"})
    first, second = trail(audit)
    assert (first.at, first.kind, first.actor, first.subject) == (clock.now, "logout", "u1", "u1")
    assert (first.client, first.request_id, dict(first.detail)) == ("10.0.0.1", "req-7", {})
    assert (second.actor, second.client, second.request_id) == (None, None, None)
    assert dict(second.detail) == {"role": "user"}
    # Kept for the retention, then due for pruning.
    clock.advance(days=RETENTION.days, seconds=-1)
    assert storage.audit.prune(clock.now, limit=10) == 0
    clock.advance(seconds=1)
    assert storage.audit.prune(clock.now, limit=10) == 2


def test_logins_record_each_outcome_and_count_it(
    auth: AuthService, users: UserService, sink: CountingSink
) -> None:
    alice = users.create(username="alice", password=PASSWORD)
    pair = auth.login(name="alice", password=PASSWORD, client="10.0.0.1")
    for name in ("alice", "nobody"):
        with pytest.raises(InvalidCredentials):
            auth.login(name=name, password="wrong", client="10.0.0.2")
    with pytest.raises(InvalidCredentials):
        auth.login(name="alice", password="wrong", client="10.0.0.2")
    with pytest.raises(RateLimited):
        auth.login(name="alice", password=PASSWORD, client="10.0.0.2")
    events = trail(auth._audit)
    assert [e.kind for e in events] == [
        AuditKind.USER_CREATED,
        AuditKind.LOGIN_OK,
        AuditKind.LOGIN_FAILED,
        AuditKind.LOGIN_FAILED,
        AuditKind.LOGIN_FAILED,
        AuditKind.LOGIN_THROTTLED,
    ]
    ok, failed, unknown, _, throttled = events[1:]
    assert (ok.actor, ok.subject, ok.client) == (alice.id, alice.id, "10.0.0.1")
    assert dict(ok.detail) == {"session": pair.access.claims["sid"]}
    assert (failed.actor, failed.subject, failed.client) == (None, alice.id, "10.0.0.2")
    assert (unknown.subject, dict(unknown.detail)) == (None, {})  # never the name typed
    assert (throttled.subject, throttled.client) == (alice.id, "10.0.0.2")
    assert sink.logins == ["ok", "bad_credentials", "bad_credentials", "bad_credentials",
                           "throttled"]  # fmt: skip


def test_a_reused_refresh_token_and_a_logout_are_recorded(
    auth: AuthService, users: UserService, clock: Clock
) -> None:
    alice = users.create(username="alice", password=PASSWORD)
    login = auth.login(name="alice", password=PASSWORD, client=None)
    auth.refresh(login.refresh_token, client="10.0.0.3")
    clock.advance(seconds=11)
    with pytest.raises(Unauthenticated, match="reused"):
        auth.refresh(login.refresh_token, client="10.0.0.4")
    other = auth.login(name="alice", password=PASSWORD, client=None)
    auth.logout(auth.authenticate(other.access.token), "10.0.0.5")
    *_, reuse, _, logout = trail(auth._audit)
    session = login.access.claims["sid"]
    assert (reuse.kind, reuse.actor, reuse.subject, reuse.client) == (
        AuditKind.REFRESH_REUSE, None, alice.id, "10.0.0.4"
    )  # fmt: skip
    assert dict(reuse.detail) == {"session": session}
    assert (logout.kind, logout.actor, logout.subject, logout.client) == (
        AuditKind.LOGOUT, alice.id, alice.id, "10.0.0.5"
    )  # fmt: skip
    assert dict(logout.detail) == {"session": other.access.claims["sid"]}


def test_account_changes_say_who_did_what_to_whom(users: UserService, audit: AuditTrail) -> None:
    alice = users.sign_up(client="10.0.0.1", username="alice", password=PASSWORD)
    root = users.create(username="root", password=PASSWORD, role=Role.ADMIN)
    as_alice, as_root = a_principal(alice), a_principal(root)
    users.update(
        as_alice,
        alice.id,
        email="alice@example.com",
        password="a new password",
        current_password=PASSWORD,
        client="10.0.0.1",
    )
    users.update(as_alice, alice.id, email="alice@example.com", name=None)  # no change at all
    users.update(as_root, alice.id, role=Role.ADMIN, name="Alice", client="10.0.0.9")
    users.delete(as_root, alice.id, "10.0.0.9")
    events = trail(audit, subject=alice.id)
    assert [(e.kind, e.actor, e.client) for e in events] == [
        (AuditKind.SIGNUP, alice.id, "10.0.0.1"),
        (AuditKind.PASSWORD_CHANGED, alice.id, "10.0.0.1"),
        (AuditKind.EMAIL_CHANGED, alice.id, "10.0.0.1"),
        (AuditKind.NAME_CHANGED, root.id, "10.0.0.9"),
        (AuditKind.ROLE_CHANGED, root.id, "10.0.0.9"),
        (AuditKind.USER_DELETED, root.id, "10.0.0.9"),
    ]
    assert dict(events[0].detail) == {"username": "alice"}
    assert dict(events[4].detail) == {"role": "admin", "previous": "user"}
    created = trail(audit, subject=root.id)
    assert [(e.kind, e.actor, dict(e.detail)) for e in created] == [
        (AuditKind.USER_CREATED, None, {"username": "root", "role": "admin"})
    ]


def test_an_oidc_enrolment_is_recorded_once(users: UserService, audit: AuditTrail) -> None:
    subject = "https://idp.example.com|abc123"
    claims = {"sub": "abc123", "preferred_username": "carol"}
    user = users.account_for(subject, claims, client="10.0.0.8")
    assert users.account_for(subject, claims, client="10.0.0.8") == user
    (event,) = trail(audit)
    assert (event.kind, event.actor, event.subject, event.client) == (
        AuditKind.OIDC_ENROLLED, user.id, user.id, "10.0.0.8"
    )  # fmt: skip
    assert dict(event.detail) == {"username": "carol", "issuer": "https://idp.example.com"}


def test_credentials_issued_and_revoked_are_recorded_without_their_secret(
    storage: MemoryStorage, audit: AuditTrail, clock: Clock
) -> None:
    service = CredentialService(
        storage.credentials,
        SecretBox(KEY, purpose=SEALING_PURPOSE),
        audit=audit,
        region="us-east-1",
        clock=clock,
    )
    credential, secret = service.create("reporting")
    service.revoke(credential.access_key_id)
    events = trail(audit)
    assert [(e.kind, e.actor, e.subject, dict(e.detail)) for e in events] == [
        (AuditKind.CREDENTIAL_CREATED, None, credential.access_key_id, {"name": "reporting"}),
        (AuditKind.CREDENTIAL_REVOKED, None, credential.access_key_id, {"name": "reporting"}),
    ]
    assert secret not in repr(events)
    assert credential.sealed_secret not in repr(events)


class Refusing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def append(self, event: AuditEvent, *, expires_at: Any) -> None:
        raise self.error

    def prune(self, now: Any, *, limit: int) -> int:
        raise self.error


@pytest.mark.parametrize("error", [Unavailable("storage error: disk full"), KeyError("bug")])
def test_a_refused_event_is_logged_and_counted_never_raised(
    error: Exception, sink: CountingSink, caplog: pytest.LogCaptureFixture, clock: Clock
) -> None:
    audit = AuditTrail(Refusing(error), retention=RETENTION, clock=clock)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="nimbus.audit"):
        audit.record(AuditKind.PASSWORD_CHANGED, actor="u1", subject="u1")
    assert sink.audit_failures == 1
    (record,) = caplog.records
    assert (record.name, record.levelname) == ("nimbus.audit", "WARNING")
    assert record.getMessage() == "audit event lost: password.changed"
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["audit_kind"] == "password.changed"
    # A store's error is one line; anything else (a bug) comes with its traceback.
    assert (record.exc_info is None) == isinstance(error, Unavailable)


class CountingPrunes:
    def __init__(self, storage: MemoryStorage, removing: list[int]) -> None:
        self._store = storage.audit
        self.removing = removing
        self.prunes = 0

    def append(self, event: AuditEvent, *, expires_at: Any) -> None:
        self._store.append(event, expires_at=expires_at)

    def prune(self, now: Any, *, limit: int) -> int:
        self.prunes += 1
        return self.removing.pop(0) if self.removing else 0


def test_pruning_runs_at_the_first_event_then_once_an_interval_or_while_batches_are_full(
    storage: MemoryStorage, clock: Clock
) -> None:
    store = CountingPrunes(storage, [PRUNE_BATCH, 3])
    audit = AuditTrail(store, retention=RETENTION, clock=clock, prune_every=timedelta(hours=1))  # type: ignore[arg-type]
    audit.record(AuditKind.LOGOUT)  # at start: a full batch went, so more are due
    audit.record(AuditKind.LOGOUT)  # the rest
    audit.record(AuditKind.LOGOUT)
    assert store.prunes == 2
    clock.advance(minutes=59)
    audit.record(AuditKind.LOGOUT)
    assert store.prunes == 2
    clock.advance(minutes=1)
    audit.record(AuditKind.LOGOUT)
    assert store.prunes == 3


def test_a_failed_prune_fails_nothing(
    storage: MemoryStorage, clock: Clock, caplog: pytest.LogCaptureFixture, sink: CountingSink
) -> None:
    class FailingPrune(CountingPrunes):
        def prune(self, now: Any, *, limit: int) -> int:
            raise Unavailable("storage error: locked")

    audit = AuditTrail(FailingPrune(storage, []), retention=RETENTION, clock=clock)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="nimbus.audit"):
        audit.record(AuditKind.LOGOUT)
    assert [r.getMessage() for r in caplog.records] == ["audit prune failed: retention"]
    assert sink.audit_failures == 0  # the event itself was kept
    assert len(trail(AuditTrail(storage.audit, retention=RETENTION))) == 1
