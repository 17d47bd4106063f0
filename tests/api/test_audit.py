"""The audit trail over real HTTP on every backend: what a session leaves in it, who may read it
(GET /admin/audit, GET /users/me/events), its filters and pages, that no secret ever reaches it,
and that a store which refuses an event fails no request."""

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from nimbus import metrics
from nimbus.bootstrap import build
from nimbus.container import Container
from nimbus.domain.audit import AuditEvent
from nimbus.domain.errors import Unavailable
from nimbus.settings import Settings
from nimbus.storage import open_storage
from tests.factories import Account
from tests.loop_guard import guard_the_loop
from tests.support import PASSWORD, CountingSink, live_server

NEW_PASSWORD = "a brand new passphrase"
TYPED_IN_THE_WRONG_FIELD = "Tr0ub4dor&3-xyz"


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [event["kind"] for event in events]


def pages(client: httpx.Client, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every item of a paged list, following its Link headers."""
    seen: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url is not None:
        response = client.get(next_url, headers=headers)
        assert response.status_code == 200, response.text
        seen += response.json()
        link = response.headers.get("link")
        next_url = link.split(";")[0].strip("<>") if link else None
    return seen


def test_the_trail_is_for_administrators_only(
    client: httpx.Client, alice: Account, admin: Account
) -> None:
    anonymous = client.get("/admin/audit")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthorized"
    refused = client.get("/admin/audit", headers=alice.headers)
    assert refused.status_code == 403
    assert refused.json() == {"message": "Administrators only", "code": "admin_only"}
    assert client.get("/admin/audit", headers=admin.headers).status_code == 200
    assert client.get("/users/me/events").status_code == 401


def test_a_session_leaves_its_events_newest_first_with_who_whom_and_request(
    client: httpx.Client, alice: Account, admin: Account
) -> None:
    failed = client.post(
        "/login",
        json={"username": "alice", "password": "not her password"},
        headers={"X-Request-ID": "try-1"},
    )
    assert failed.status_code == 401
    changed = client.patch(
        f"/users/{alice.id}",
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
        headers=alice.headers | {"X-Request-ID": "change-1"},
    )
    assert changed.status_code == 200, changed.text
    promoted = client.patch(f"/users/{alice.id}", json={"role": "admin"}, headers=admin.headers)
    assert promoted.status_code == 200, promoted.text

    trail = client.get("/admin/audit", headers=admin.headers).json()
    ids = [event["id"] for event in trail]
    assert ids == sorted(ids, reverse=True)  # UUIDv7: newest first
    assert {"user.created", "login.ok"} <= {e["kind"] for e in trail if e["subject"] == admin.id}
    hers = [event for event in trail if event["subject"] == alice.id]
    assert kinds(hers) == [
        "role.changed", "password.changed", "login.failed", "login.ok", "user.signup"
    ]  # fmt: skip
    role, password, failure, login, signup = hers
    assert (role["actor"], role["detail"]) == (admin.id, {"role": "admin", "previous": "user"})
    assert (password["actor"], password["request_id"]) == (alice.id, "change-1")
    assert (failure["actor"], failure["request_id"]) == (None, "try-1")
    assert (login["actor"], set(login["detail"])) == (alice.id, {"session"})
    assert (signup["actor"], signup["detail"]) == (alice.id, {"username": "alice"})
    for event in hers:
        assert event["client"] == "127.0.0.1"
        assert event["request_id"]
        assert event["at"]


def test_the_trail_filters_by_subject_and_kind_and_pages_with_them(
    client: httpx.Client, alice: Account, bob: Account, admin: Account
) -> None:
    for who in ("alice", "bob", "alice", "nobody"):
        client.post("/login", json={"username": who, "password": "wrong password"})
    mine = pages(client, f"/admin/audit?subject={alice.id}&limit=1", admin.headers)
    assert kinds(mine) == ["login.failed", "login.failed", "login.ok", "user.signup"]
    assert {event["subject"] for event in mine} == {alice.id}
    failed = pages(client, "/admin/audit?kind=login.failed&limit=2", admin.headers)
    assert [event["subject"] for event in failed] == [None, alice.id, bob.id, alice.id]
    both = client.get(
        "/admin/audit",
        params={"subject": alice.id, "kind": "login.failed", "limit": 1},
        headers=admin.headers,
    )
    assert len(both.json()) == 1
    link = both.headers["link"]
    assert f"subject={alice.id}" in link
    assert "kind=login.failed" in link
    assert "limit=1" in link
    assert len(pages(client, link.split(";")[0].strip("<>"), admin.headers)) == 1

    unknown = client.get("/admin/audit?kind=login.maybe", headers=admin.headers)
    assert unknown.status_code == 422
    bad_cursor = client.get("/admin/audit?cursor=nonsense", headers=admin.headers)
    assert (bad_cursor.status_code, bad_cursor.json()["code"]) == (400, "invalid_input")


def test_each_user_sees_their_own_security_activity(
    client: httpx.Client, alice: Account, bob: Account, admin: Account
) -> None:
    client.post("/login", json={"username": "alice", "password": "wrong password"})
    client.patch(f"/users/{alice.id}", json={"name": "Alice L."}, headers=admin.headers)
    client.patch(f"/users/{bob.id}", json={"name": "Bob"}, headers=bob.headers)
    own = pages(client, "/users/me/events?limit=2", alice.headers)
    assert kinds(own) == ["name.changed", "login.failed", "login.ok", "user.signup"]
    assert {event["subject"] for event in own} == {alice.id}
    assert own[0]["actor"] == admin.id  # an administrator's change shows whose it was
    assert kinds(pages(client, "/users/me/events", bob.headers)) == [
        "name.changed",
        "login.ok",
        "user.signup",
    ]
    client.post("/auth/logout", headers=alice.headers)
    assert client.get("/users/me/events", headers=alice.headers).status_code == 401


def test_no_secret_reaches_the_trail_or_its_answers(
    client: httpx.Client, container: Container, admin: Account
) -> None:
    secrets = [PASSWORD, NEW_PASSWORD, TYPED_IN_THE_WRONG_FIELD]
    created = client.post("/users", json={"username": "carol", "password": PASSWORD})
    assert created.status_code == 201
    first = client.post("/login", json={"username": "carol", "password": PASSWORD}).json()
    second = _refresh(client, first["refresh_token"]).json()
    third = _refresh(client, second["refresh_token"]).json()
    reused = _refresh(client, first["refresh_token"])  # rotated twice since: a stolen copy
    assert reused.status_code == 401
    tokens = [first, second, third]
    tokens.append(client.post("/login", json={"username": "carol", "password": PASSWORD}).json())
    changed = client.patch(
        f"/users/{created.json()['id']}",
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
        headers={"Authorization": f"Bearer {tokens[-1]['access_token']}"},
    )
    assert changed.status_code == 200
    client.post("/login", json={"username": "carol", "password": "wrong password"})
    client.post("/login", json={"username": TYPED_IN_THE_WRONG_FIELD, "password": "carol"})
    secrets += [pair[name] for pair in tokens for name in ("access_token", "refresh_token")]
    secrets += [pair["refresh_token"].split(".")[1] for pair in tokens]
    user = container.storage.users.get(created.json()["id"])
    secrets += [user.password_hash, user.password_hash.split("$")[-1]]

    stored = container.audit.list_all(limit=100).items
    assert {e.kind.value for e in stored} >= {
        "user.signup", "login.ok", "password.changed", "refresh.reuse", "login.failed"
    }  # fmt: skip
    answers = client.get("/admin/audit?limit=100", headers=admin.headers).text
    answers += client.get(
        "/users/me/events", headers={"Authorization": f"Bearer {_log_in(client)}"}
    ).text
    assert "refresh.reuse" in answers
    written = repr([_fields(event) for event in stored]) + answers
    for secret in secrets:
        assert secret not in written


def _refresh(client: httpx.Client, token: str) -> httpx.Response:
    return client.post("/auth/refresh", json={"refresh_token": token})


def _log_in(client: httpx.Client) -> str:
    answer = client.post("/login", json={"username": "carol", "password": NEW_PASSWORD})
    assert answer.status_code == 200
    token: str = answer.json()["access_token"]
    return token


def _fields(event: AuditEvent) -> tuple[object, ...]:
    return (event.kind, event.actor, event.subject, event.client, event.request_id,
            dict(event.detail))  # fmt: skip


# --- an audit store that refuses every event --------------------------------------------------


class RefusingAudit:
    """The store's own audit repository, except that every append fails as an outage does."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.refused = 0

    def append(self, event: AuditEvent, **kwargs: Any) -> None:
        self.refused += 1
        raise Unavailable("storage error: disk I/O error")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture
def refusing(settings: Settings) -> Iterator[tuple[httpx.Client, RefusingAudit, Container]]:
    storage = open_storage(settings.resolved_database_url, timeout=settings.database_timeout)
    storage.create_schema()
    refusing = RefusingAudit(storage.audit)
    storage.audit = refusing
    container = build(settings, storage=guard_the_loop(storage))
    try:
        with live_server(container) as url, httpx.Client(base_url=url, timeout=30) as http:
            yield http, refusing, container
    finally:
        container.close()


@pytest.fixture
def sink() -> Iterator[CountingSink]:
    counting = CountingSink()
    before = metrics.sink()
    metrics.use(counting)
    try:
        yield counting
    finally:
        metrics.use(before)


def test_a_refused_event_fails_no_request_and_is_logged_and_counted(
    refusing: tuple[httpx.Client, RefusingAudit, Container],
    sink: CountingSink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, store, container = refusing
    caplog.set_level(logging.WARNING, logger="nimbus.audit")
    created = client.post("/users", json={"username": "dave", "password": PASSWORD})
    assert created.status_code == 201, created.text
    failed = client.post("/login", json={"username": "dave", "password": "wrong password"})
    assert failed.status_code == 401
    login = client.post("/login", json={"username": "dave", "password": PASSWORD})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    renamed = client.patch(f"/users/{created.json()['id']}", json={"name": "D"}, headers=headers)
    assert renamed.status_code == 200
    assert client.post("/auth/logout", headers=headers).status_code == 204

    lost = ["user.signup", "login.failed", "login.ok", "name.changed", "logout"]
    assert store.refused == sink.audit_failures == len(lost)
    assert sink.logins == ["bad_credentials", "ok"]
    records = [r for r in caplog.records if r.name == "nimbus.audit"]
    assert [r.levelname for r in records] == ["WARNING"] * len(lost)
    assert [r.fields["audit_kind"] for r in records] == lost  # type: ignore[attr-defined]
    assert all(r.fields["cause"] == "storage error: disk I/O error" for r in records)  # type: ignore[attr-defined]
    for record in records:
        assert PASSWORD not in record.getMessage() + repr(record.fields)  # type: ignore[attr-defined]
    assert container.audit.list_all(limit=10).items == []
