import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from nimbus.api.routes import todos as todo_routes
from nimbus.api.schemas.todos import TodoPublic
from nimbus.container import Container
from tests.factories import Account
from tests.support import PASSWORD

Headers = dict[str, str]


def _create(
    client: httpx.Client, headers: Headers, description: str = "Buy milk", **extra: Any
) -> Any:
    response = client.post("/todos", json={"description": description, **extra}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_returns_the_new_todo_with_an_etag(client: httpx.Client, alice: Account) -> None:
    response = client.post(
        "/todos",
        json={"description": "My first Todo", "metadata": {"tag": "x"}},
        headers=alice.headers,
    )
    assert response.status_code == 201
    todo = response.json()
    assert todo["description"] == "My first Todo"
    assert todo["state"] == "unstarted"
    assert todo["metadata"] == {"tag": "x"}
    assert todo["username"] == "alice"
    assert todo["version"] == 1
    assert todo["created_at"] == todo["updated_at"]
    assert response.headers["ETag"] == '"1"'


def test_metadata_is_optional_and_defaults_to_empty(client: httpx.Client, alice: Account) -> None:
    assert _create(client, alice.headers)["metadata"] == {}


def test_get_returns_the_stored_todo(client: httpx.Client, alice: Account) -> None:
    created = _create(client, alice.headers)
    response = client.get(f"/todos/{created['uid']}", headers=alice.headers)
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["ETag"] == '"1"'


def test_todos_are_answered_as_the_documented_schema_says(
    client: httpx.Client, container: Container, alice: Account
) -> None:
    """The routes serialize todos themselves, from the domain objects: every answer is exactly
    TodoPublic's JSON for the stored todo, no field more or less."""
    created = _create(client, alice.headers, metadata={"n": 1, "nested": {"ok": True}})
    owner = container.users.get_by_username("alice")
    stored = container.storage.todos.get(owner.id, created["uid"])
    documented = TodoPublic.model_validate(stored).model_dump(mode="json")
    assert set(documented) == set(TodoPublic.model_fields)
    assert created == documented
    assert client.get(f"/todos/{stored.uid}", headers=alice.headers).json() == documented
    assert client.get("/todos", headers=alice.headers).json() == [documented]
    patched = client.patch(f"/todos/{stored.uid}", json={"state": "started"}, headers=alice.headers)
    changed = container.storage.todos.get(owner.id, stored.uid)
    assert patched.json() == TodoPublic.model_validate(changed).model_dump(mode="json")
    assert "owner" not in patched.json()


def test_metadata_keeps_its_json_types(client: httpx.Client, alice: Account) -> None:
    metadata = {"n": 3, "f": 2.5, "b": True, "none": None, "nested": {"list": [1, "two", {}]},
                "text": "héllo ✓ 日本"}  # fmt: skip
    created = _create(client, alice.headers, metadata=metadata)
    fetched = client.get(f"/todos/{created['uid']}", headers=alice.headers).json()
    assert fetched["metadata"] == metadata
    assert isinstance(fetched["metadata"]["n"], int)
    assert isinstance(fetched["metadata"]["f"], float)


def test_list_is_newest_first_and_only_the_callers(
    client: httpx.Client, alice: Account, bob: Account
) -> None:
    first = _create(client, alice.headers, "first")
    second = _create(client, alice.headers, "second")
    _create(client, bob.headers, "bob's")
    response = client.get("/todos", headers=alice.headers)
    assert response.status_code == 200
    assert [todo["uid"] for todo in response.json()] == [second["uid"], first["uid"]]
    assert "Link" not in response.headers


def test_list_filters_by_state(client: httpx.Client, alice: Account) -> None:
    done = _create(client, alice.headers, "done")
    _create(client, alice.headers, "not yet")
    client.patch(f"/todos/{done['uid']}", json={"state": "completed"}, headers=alice.headers)
    listed = client.get("/todos", params={"state": "completed"}, headers=alice.headers).json()
    assert [todo["uid"] for todo in listed] == [done["uid"]]
    bad = client.get("/todos", params={"state": "finished"}, headers=alice.headers)
    assert bad.status_code == 422


def test_list_pages_follow_the_link_header_to_the_end(client: httpx.Client, alice: Account) -> None:
    made = [_create(client, alice.headers, f"todo {i}")["uid"] for i in range(7)]
    seen: list[str] = []
    url: str | None = "/todos?limit=3"
    pages = 0
    while url is not None:
        response = client.get(url, headers=alice.headers)
        assert response.status_code == 200
        seen += [todo["uid"] for todo in response.json()]
        pages += 1
        link = response.headers.get("Link")
        match = re.fullmatch(r'<([^>]+)>; rel="next"', link) if link else None
        url = match.group(1) if match else None
    assert pages == 3
    assert seen == list(reversed(made))


def test_list_paging_keeps_the_state_filter(client: httpx.Client, alice: Account) -> None:
    for i in range(3):
        uid = _create(client, alice.headers, f"todo {i}")["uid"]
        client.patch(f"/todos/{uid}", json={"state": "started"}, headers=alice.headers)
    _create(client, alice.headers, "unstarted one")
    response = client.get("/todos", params={"limit": 2, "state": "started"}, headers=alice.headers)
    assert "state=started" in response.headers["Link"]


@pytest.mark.store_independent
@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "many"}])
def test_list_rejects_a_limit_out_of_bounds(
    client: httpx.Client, alice: Account, params: dict[str, Any]
) -> None:
    response = client.get("/todos", params=params, headers=alice.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.limit"


@pytest.mark.store_independent
@pytest.mark.parametrize("cursor", ["garbage!", "e30", "eyJ1aWQiOltdfQ"])
def test_list_rejects_a_forged_cursor(client: httpx.Client, alice: Account, cursor: str) -> None:
    response = client.get("/todos", params={"cursor": cursor}, headers=alice.headers)
    assert response.status_code == 400
    assert response.json() == {"message": "Invalid cursor", "code": "invalid_input"}


def test_put_changes_only_the_fields_sent(client: httpx.Client, alice: Account) -> None:
    created = _create(client, alice.headers, metadata={"k": 1})
    response = client.put(
        f"/todos/{created['uid']}", json={"state": "completed"}, headers=alice.headers
    )
    assert response.status_code == 200
    todo = response.json()
    assert todo["state"] == "completed"
    assert todo["description"] == created["description"]
    assert todo["metadata"] == {"k": 1}
    assert todo["version"] == 2
    assert todo["updated_at"] > created["updated_at"]
    assert response.headers["ETag"] == '"2"'


def test_patch_replaces_metadata_and_description(client: httpx.Client, alice: Account) -> None:
    created = _create(client, alice.headers, metadata={"old": True})
    response = client.patch(
        f"/todos/{created['uid']}",
        json={"description": "Buy oat milk", "metadata": {"new": 1}},
        headers=alice.headers,
    )
    assert response.status_code == 200
    assert response.json()["description"] == "Buy oat milk"
    assert response.json()["metadata"] == {"new": 1}
    assert response.json()["state"] == "unstarted"


@pytest.mark.store_independent
@pytest.mark.parametrize(
    "body",
    [{}, {"state": "done"}, {"description": None}, {"description": "  "}, {"owner": "bob"},
     {"metadata": []}, {"state": None}],
)  # fmt: skip
def test_update_rejects_bad_bodies_and_changes_nothing(
    client: httpx.Client, alice: Account, body: dict[str, Any]
) -> None:
    created = _create(client, alice.headers)
    for method in ("PUT", "PATCH"):
        response = client.request(
            method, f"/todos/{created['uid']}", json=body, headers=alice.headers
        )
        assert response.status_code == 422, (method, body)
        assert response.json()["code"] == "validation_error"
    assert client.get(f"/todos/{created['uid']}", headers=alice.headers).json() == created


def test_if_match_with_the_current_version_applies(client: httpx.Client, alice: Account) -> None:
    created = _create(client, alice.headers)
    response = client.patch(
        f"/todos/{created['uid']}",
        json={"state": "started"},
        headers={**alice.headers, "If-Match": '"1"'},
    )
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'


@pytest.mark.parametrize("if_match", ['"1"', 'W/"2"', "2", '"2", "3"'])
def test_if_match_with_anything_but_the_current_version_is_412(
    client: httpx.Client, alice: Account, if_match: str
) -> None:
    created = _create(client, alice.headers)
    client.patch(f"/todos/{created['uid']}", json={"state": "started"}, headers=alice.headers)
    stale = {**alice.headers, "If-Match": if_match}
    put = client.put(f"/todos/{created['uid']}", json={"state": "completed"}, headers=stale)
    delete = client.delete(f"/todos/{created['uid']}", headers=stale)
    assert put.status_code == delete.status_code == 412
    assert put.json()["code"] == "precondition_failed"
    current = client.get(f"/todos/{created['uid']}", headers=alice.headers).json()
    assert (current["state"], current["version"]) == ("started", 2)


def test_if_match_star_needs_the_todo_to_exist(client: httpx.Client, alice: Account) -> None:
    created = _create(client, alice.headers)
    star = {**alice.headers, "If-Match": "*"}
    assert client.patch(
        f"/todos/{created['uid']}", json={"state": "started"}, headers=star
    ).is_success
    assert (
        client.patch("/todos/missing", json={"state": "started"}, headers=star).status_code == 404
    )


def test_delete_removes_the_todo(client: httpx.Client, alice: Account) -> None:
    created = _create(client, alice.headers)
    response = client.delete(
        f"/todos/{created['uid']}", headers={**alice.headers, "If-Match": '"1"'}
    )
    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"/todos/{created['uid']}", headers=alice.headers).status_code == 404
    assert client.delete(f"/todos/{created['uid']}", headers=alice.headers).status_code == 404


def test_another_users_todo_is_not_found_and_untouched(
    client: httpx.Client, alice: Account, bob: Account
) -> None:
    created = _create(client, alice.headers)
    uid = created["uid"]
    responses = [
        client.get(f"/todos/{uid}", headers=bob.headers),
        client.put(f"/todos/{uid}", json={"state": "completed"}, headers=bob.headers),
        client.patch(f"/todos/{uid}", json={"description": "mine now"}, headers=bob.headers),
        client.delete(f"/todos/{uid}", headers=bob.headers),
    ]
    for response in responses:
        assert response.status_code == 404
        assert response.json() == {"message": "Todo not found", "code": "not_found"}
    assert client.get(f"/todos/{uid}", headers=alice.headers).json() == created
    assert client.get("/todos", headers=bob.headers).json() == []


def test_a_missing_todo_is_404(client: httpx.Client, alice: Account) -> None:
    response = client.get("/todos/00000000-0000-7000-8000-000000000000", headers=alice.headers)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.store_independent
def test_trailing_slash_answers_like_the_bare_path(client: httpx.Client, alice: Account) -> None:
    created = client.post("/todos/", json={"description": "slash"}, headers=alice.headers)
    assert created.status_code == 201
    listed = client.get("/todos/", headers=alice.headers)
    assert listed.status_code == 200
    assert listed.json() == [created.json()]
    one = client.get(f"/todos/{created.json()['uid']}/", headers=alice.headers)
    assert one.status_code == 200


@pytest.mark.store_independent
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.description"),
        ({"description": ""}, "body.description"),
        ({"description": "x" * 1001}, "body.description"),
        ({"description": 5}, "body.description"),
        ({"description": "ok", "metadata": "text"}, "body.metadata"),
        ({"description": "ok", "metadata": {"a": "x" * 17000}}, "body.metadata"),
        ({"description": "ok", "state": "completed"}, "body.state"),
    ],
)
def test_create_rejects_bad_bodies_with_field_errors(
    client: httpx.Client, alice: Account, body: dict[str, Any], field: str
) -> None:
    response = client.post("/todos", json=body, headers=alice.headers)
    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]
    assert client.get("/todos", headers=alice.headers).json() == []


@pytest.mark.store_independent
def test_create_rejects_deeply_nested_metadata(client: httpx.Client, alice: Account) -> None:
    nested: dict[str, Any] = {}
    for _ in range(20):
        nested = {"k": nested}
    response = client.post(
        "/todos", json={"description": "d", "metadata": nested}, headers=alice.headers
    )
    assert response.status_code == 422
    assert "nests deeper" in response.json()["errors"][0]["message"]


@pytest.mark.store_independent
def test_json_nested_past_the_parsers_limit_is_a_client_error(
    client: httpx.Client, alice: Account
) -> None:
    body = '{"description": "d", "metadata": ' + '{"k": ' * 100_000 + "1" + "}" * 100_001
    response = client.post(
        "/todos", content=body, headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert response.json()["code"] in {"bad_request", "validation_error"}


@pytest.mark.store_independent
def test_malformed_json_is_422(client: httpx.Client, alice: Account) -> None:
    response = client.post(
        "/todos",
        content=b'{"description": ',
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


@pytest.mark.store_independent
def test_a_body_over_the_limit_is_413(client: httpx.Client, alice: Account) -> None:
    body = {"description": "big", "metadata": {"blob": "x" * (1024 * 1024)}}
    response = client.post("/todos", json=body, headers=alice.headers)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert client.get("/todos", headers=alice.headers).json() == []


@pytest.mark.store_independent
def test_a_streamed_body_over_the_limit_is_413(client: httpx.Client, alice: Account) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"description": "big", "metadata": {"blob": "'
        for _ in range(80):
            yield b"x" * 16384
        yield b'"}}'

    response = client.post(
        "/todos", content=chunks(), headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert client.get("/todos", headers=alice.headers).json() == []


@pytest.mark.parametrize(
    "body",
    [
        {"description": "nul \x00 inside"},
        {"description": "ok", "metadata": {"k": "nul \x00"}},
        {"description": "ok", "metadata": {"nul \x00 key": 1}},
        {"description": "ok", "metadata": {"deep": [{"k": ["\x00"]}]}},
    ],
)
def test_nul_characters_are_refused_on_every_backend(
    client: httpx.Client, alice: Account, body: dict[str, Any]
) -> None:
    """PostgreSQL cannot store NUL in text or jsonb; every backend refuses it alike."""
    response = client.post("/todos", json=body, headers=alice.headers)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert client.get("/todos", headers=alice.headers).json() == []


def test_a_backslash_u0000_written_out_is_plain_text(client: httpx.Client, alice: Account) -> None:
    text = "C:\\u0000\\path"
    todo = _create(client, alice.headers, text, metadata={"path": text})
    assert todo["description"] == text
    assert todo["metadata"] == {"path": text}


@pytest.mark.parametrize("ended", ["logout", "session ended from another"])
def test_every_todo_route_refuses_a_token_whose_session_ended_and_changes_nothing(
    client: httpx.Client, alice: Account, ended: str
) -> None:
    login = client.post("/login", json={"username": "alice", "password": PASSWORD}).json()
    headers = {"Authorization": f"Bearer {login['access_token']}"}
    kept = _create(client, headers, "kept")
    if ended == "logout":
        assert client.post("/auth/logout", headers=headers).status_code == 204
    else:
        sessions = client.get("/users/me/sessions", headers=alice.headers).json()
        other = next(session["id"] for session in sessions if not session["current"])
        assert client.delete(f"/users/me/sessions/{other}", headers=alice.headers).is_success
    asked = set()
    for route in todo_routes.router.routes:
        assert isinstance(route, APIRoute)
        for method in route.methods or ():
            asked.add((method, route.path))
            for uid, version in ((kept["uid"], "1"), (kept["uid"], "9"), ("no-such-todo", "1")):
                response = client.request(
                    method,
                    route.path.replace("{uid}", uid),
                    json={"description": "changed"} if method in {"POST", "PUT", "PATCH"} else None,
                    headers=headers | {"If-Match": f'"{version}"'},
                )
                assert response.status_code == 401, (method, route.path, response.text)
                assert response.json()["code"] == "unauthorized"
    assert len(asked) == 6
    listed = client.get("/todos", headers=alice.headers).json()
    assert [(todo["uid"], todo["description"], todo["version"]) for todo in listed] == [
        (kept["uid"], "kept", 1)
    ]
