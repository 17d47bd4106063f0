"""The sessions a person can see and end: GET and DELETE /users/me/sessions, on every backend."""

from typing import Any

import httpx

from nimbus.container import Container
from nimbus.domain.audit import AuditKind
from tests.factories import Account
from tests.support import PASSWORD


def _login(client: httpx.Client, username: str, agent: str) -> dict[str, Any]:
    response = client.post(
        "/login",
        json={"username": username, "password": PASSWORD},
        headers={"User-Agent": agent},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def test_a_person_sees_their_sessions_with_the_current_one_marked(
    client: httpx.Client, alice: Account, bob: Account
) -> None:
    laptop = _login(client, "alice", "Firefox on a laptop")
    phone = _login(client, "alice", "Safari on a phone")
    # A refresh is a use: the laptop's session becomes the most recently used.
    refreshed = client.post("/auth/refresh", json={"refresh_token": laptop["refresh_token"]})
    assert refreshed.status_code == 200
    response = client.get("/users/me/sessions", headers=_bearer(phone))
    assert response.status_code == 200
    sessions = response.json()
    agents = [session["user_agent"] for session in sessions]
    assert agents[:2] == ["Firefox on a laptop", "Safari on a phone"]
    assert len(sessions) == 3  # and the fixture's own login
    assert [s["current"] for s in sessions] == [False, True, False]
    assert {s["address"] for s in sessions} == {"127.0.0.1"}
    laptop_session = sessions[0]
    assert laptop_session["last_used_at"] > laptop_session["created_at"]
    assert sessions[1]["last_used_at"] == sessions[1]["created_at"]
    # Bob's list holds only bob's.
    assert len(client.get("/users/me/sessions", headers=bob.headers).json()) == 1


def test_ending_a_session_ends_its_tokens_and_no_one_elses(
    client: httpx.Client, alice: Account, bob: Account, container: Container
) -> None:
    laptop = _login(client, "alice", "laptop")
    phone = _login(client, "alice", "phone")
    sessions = client.get("/users/me/sessions", headers=_bearer(phone)).json()
    laptop_id = next(s["id"] for s in sessions if s["user_agent"] == "laptop")
    # Bob cannot end alice's session, and an unknown id is the same answer.
    for headers, session_id in ((bob.headers, laptop_id), (_bearer(phone), "no-such-session")):
        refused = client.delete(f"/users/me/sessions/{session_id}", headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (404, "not_found")
    assert client.get("/users/me", headers=_bearer(laptop)).status_code == 200

    ended = client.delete(f"/users/me/sessions/{laptop_id}", headers=_bearer(phone))
    assert ended.status_code == 204
    assert client.get("/users/me", headers=_bearer(laptop)).status_code == 401
    assert (
        client.post("/auth/refresh", json={"refresh_token": laptop["refresh_token"]}).status_code
        == 401
    )
    assert client.get("/users/me", headers=_bearer(phone)).status_code == 200
    left = [
        s["user_agent"] for s in client.get("/users/me/sessions", headers=_bearer(phone)).json()
    ]
    assert "laptop" not in left
    events = container.audit.list_all(limit=10, cursor=None, kind=AuditKind.SESSION_ENDED).items
    assert [(e.actor, e.detail.get("session")) for e in events] == [(alice.id, laptop_id)]


def test_logging_out_everywhere_else_keeps_only_this_session(
    client: httpx.Client, alice: Account
) -> None:
    laptop = _login(client, "alice", "laptop")
    phone = _login(client, "alice", "phone")
    assert client.delete("/users/me/sessions", headers=_bearer(phone)).status_code == 204
    assert client.get("/users/me", headers=_bearer(laptop)).status_code == 401
    assert client.get("/users/me", headers=alice.headers).status_code == 401
    assert (
        client.post("/auth/refresh", json={"refresh_token": phone["refresh_token"]}).status_code
        == 200
    )
    sessions = client.get("/users/me/sessions", headers=_bearer(phone)).json()
    assert [(s["user_agent"], s["current"]) for s in sessions] == [("phone", True)]


def test_ending_the_current_session_is_a_logout(client: httpx.Client, alice: Account) -> None:
    phone = _login(client, "alice", "phone")
    (current,) = [
        s for s in client.get("/users/me/sessions", headers=_bearer(phone)).json() if s["current"]
    ]
    assert (
        client.delete(f"/users/me/sessions/{current['id']}", headers=_bearer(phone)).status_code
        == 204
    )
    assert client.get("/users/me", headers=_bearer(phone)).status_code == 401


def test_a_long_user_agent_is_cut_to_its_bound(client: httpx.Client, alice: Account) -> None:
    long = _login(client, "alice", "x" * 5000)
    sessions = client.get("/users/me/sessions", headers=_bearer(long)).json()
    assert max(len(s["user_agent"] or "") for s in sessions) == 256
